"""Loads a model and its tokenizer once and picks the engine that can serve it."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

from app.engine.attention import AttentionChoice
from app.engine.base import Engine

log = logging.getLogger("app.engine")
# transformers complains (at ERROR level) it cannot size a CPU KV cache without psutil; we size it ourselves.
logging.getLogger("ContinuousBatchingLogger").addFilter(lambda record: "psutil" not in record.getMessage())


class ModelLoadError(RuntimeError):
    """The model could not be loaded; the message says what to do."""


def resolve_device(device: str) -> torch.device:
    """``auto`` means the GPU when there is one."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ModelLoadError("MODEL_DEVICE=cuda but no CUDA device is available")
    return torch.device(device)


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    """``auto`` means half precision on GPU (bfloat16 where supported) and float32 on CPU."""
    if dtype != "auto":
        return {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[dtype]
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


def served_model_name(path: str, name: str | None = None) -> str:
    """The one name the service answers to: ``name`` (MODEL_NAME) when given, else ``demo-model``
    for the bundled demo model wherever it was built, else the folder name or the hub id."""
    from app.demo_model.build import FINGERPRINT_FILE

    if name:
        return name
    folder = Path(path).expanduser()
    if (folder / FINGERPRINT_FILE).is_file():
        return "demo-model"
    return folder.resolve().name if folder.is_dir() else path


def _needs_generate_engine(config: Any, trust_remote_code: bool) -> bool:
    # Custom modeling code is written for plain generate and rarely knows paged attention.
    auto_map = getattr(config, "auto_map", None) or {}
    return trust_remote_code and "AutoModelForCausalLM" in auto_map


def load_engine(
    path: str,
    *,
    model_id: str | None = None,
    device: str = "auto",
    dtype: str = "auto",
    trust_remote_code: bool = False,
    engine: str = "auto",
    max_model_len: int | None = None,
    max_batch_tokens: int = 2048,
    max_batch_requests: int = 16,
    prefix_cache: bool = True,
    attention: AttentionChoice = "auto",
) -> Engine:
    """Load ``path`` (local folder or hub id) and wrap it in the continuous or generate engine."""
    from app.engine.continuous import ContinuousBatchingEngine
    from app.engine.generate import GenerateEngine

    is_local = Path(path).expanduser().is_dir()
    where = str(Path(path).expanduser()) if is_local else path
    torch_device = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, torch_device)
    if torch_device.type == "cpu" and not os.environ.get("OMP_NUM_THREADS"):
        torch.set_num_threads(max(1, min(torch.get_num_threads(), os.cpu_count() or 1)))
    try:
        config = AutoConfig.from_pretrained(where, trust_remote_code=trust_remote_code)
        tokenizer = AutoTokenizer.from_pretrained(where, trust_remote_code=trust_remote_code)
        model = AutoModelForCausalLM.from_pretrained(
            where, dtype=torch_dtype, trust_remote_code=trust_remote_code
        )
        model = model.to(torch_device)  # type: ignore[arg-type]
    except (OSError, ValueError) as exc:
        if is_local:
            raise ModelLoadError(f"could not load the model folder {where}: {exc}") from exc
        raise ModelLoadError(
            f"MODEL_PATH={path!r} is not a local folder and could not be fetched from the model hub "
            f"(no hub access from this machine?): {exc}. Download it elsewhere and point MODEL_PATH at it."
        ) from exc
    model.eval()
    limits = [getattr(config, "max_position_embeddings", None), getattr(tokenizer, "model_max_length", None)]
    natural = min((int(v) for v in limits if isinstance(v, int) and 0 < v < 10**8), default=4096)
    context = min(max_model_len, natural) if max_model_len else natural
    served = model_id or served_model_name(path)

    choice = engine
    if choice == "auto":
        choice = "generate" if _needs_generate_engine(config, trust_remote_code) else "continuous"
    if choice == "continuous":
        try:
            return ContinuousBatchingEngine(
                model,
                tokenizer,
                served,
                context,
                max_batch_tokens=max(max_batch_tokens, 16),
                max_batch_requests=max_batch_requests,
                prefix_cache=prefix_cache,
                attention=attention,
            )
        except Exception as exc:
            if engine == "continuous":
                raise ModelLoadError(f"continuous batching cannot serve this model: {exc}") from exc
            log.warning("event=engine_fallback reason=%r", str(exc))
    return GenerateEngine(model, tokenizer, served, context)
