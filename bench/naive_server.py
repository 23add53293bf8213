"""The lesson's way to serve a model, as a baseline: one ``generate`` call per request.

It speaks just enough of the OpenAI chat-completions API (streaming) for the benchmark's load
generator. Requests run in FastAPI's thread pool, each with its own ``generate``: no batching.
Run: ``python naive_server.py MODEL_DIR PORT``.
"""

from __future__ import annotations

import json
import sys
import threading
import time
import uuid
from collections.abc import Iterator

import torch
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from transformers import AutoModelForCausalLM, AutoTokenizer, TextIteratorStreamer


def build(model_dir: str) -> FastAPI:
    """The naive server's app for the model in ``model_dir``."""
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    app = FastAPI()

    @app.get("/ready")
    def ready() -> dict[str, str]:
        return {"status": "ready"}

    @app.post("/v1/chat/completions", response_model=None)
    async def chat(request: Request) -> StreamingResponse | JSONResponse:
        body = await request.json()
        inputs = tokenizer.apply_chat_template(
            body["messages"], add_generation_prompt=True, return_tensors="pt", return_dict=True
        )
        max_tokens = int(body.get("max_tokens") or 64)
        streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
        kwargs = dict(**inputs, max_new_tokens=max_tokens, do_sample=False, streamer=streamer)
        if body.get("ignore_eos"):
            kwargs["min_new_tokens"] = max_tokens

        generated: list[int] = []

        def run() -> None:
            with torch.inference_mode():
                out = model.generate(**kwargs)
            generated.append(int(out.shape[1] - inputs["input_ids"].shape[1]))

        worker = threading.Thread(target=run, daemon=True)
        worker.start()
        rid = f"chatcmpl-{uuid.uuid4().hex}"

        def events() -> Iterator[str]:
            for text in streamer:
                if text:
                    chunk = {
                        "id": rid,
                        "object": "chat.completion.chunk",
                        "created": int(time.time()),
                        "model": body.get("model", "naive"),
                        "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}],
                    }
                    yield f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n"
            worker.join()
            usage = {
                "id": rid,
                "object": "chat.completion.chunk",
                "choices": [],
                "usage": {"completion_tokens": generated[0] if generated else 0},
            }
            yield f"data: {json.dumps(usage)}\n\n"
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    return app


if __name__ == "__main__":
    uvicorn.run(build(sys.argv[1]), host="127.0.0.1", port=int(sys.argv[2]), log_level="warning")
