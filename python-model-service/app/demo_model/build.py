"""Builds the bundled demo model: a tiny Qwen2 trained on the bundled bilingual corpus.

No model hub is reachable on build machines, so the default model is made here, deterministically,
and saved with ``save_pretrained`` so that it loads through the same code path as any real model.
The result is cached under a folder keyed by a fingerprint of the corpus, this recipe and the
library versions; a second build with the same inputs reuses it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
import os
import shutil
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
CORPUS = HERE / "corpus.jsonl"
SERVICE_ROOT = HERE.parent.parent
DEFAULT_DIR = SERVICE_ROOT / ".cache" / "demo-model"
FINGERPRINT_FILE = "demo-model-fingerprint.txt"

SEED = 1234
THREADS = 2
VOCAB_SIZE = 3000
STEPS = 260
BATCH = 32
LR = 3e-3
WARMUP = 30
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]

# ChatML, as Qwen2 uses; written with explicit '\n' so the rendered prompt never depends on
# how the template file is indented. With ``tools`` it renders them, the assistant's earlier calls
# and the tools' results in the Hermes format Qwen2.5 uses (``<tools>``, ``<tool_call>``,
# ``<tool_response>``), so that tool calling goes through the same code path as with a real model.
# Messages without tools render exactly as plain ChatML (the model was trained on those).
TOOLS_PREAMBLE = (
    "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
    "You are provided with function signatures within <tools></tools> XML tags:\n<tools>"
)
TOOLS_INSTRUCTIONS = (
    "\n</tools>\n\nFor each function call, return a json object with function name and arguments "
    "within <tool_call></tool_call> XML tags:\n<tool_call>\n"
    '{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call>'
)
CHAT_TEMPLATE = (
    "{%- if tools -%}"
    "{{ '<|im_start|>system\\n' }}"
    "{%- if messages[0]['role'] == 'system' -%}{{ messages[0]['content'] + '\\n\\n' }}{%- endif -%}"
    "{{ '" + TOOLS_PREAMBLE + "' }}"
    "{%- for tool in tools -%}{{ '\\n' }}{{ tool | tojson }}{%- endfor -%}"
    "{{ '" + TOOLS_INSTRUCTIONS + "<|im_end|>\\n' }}"
    "{%- endif -%}"
    "{%- for message in messages -%}"
    "{%- if tools and loop.first and message['role'] == 'system' -%}"
    "{%- elif message['role'] == 'assistant' and message['tool_calls'] -%}"
    "{{ '<|im_start|>assistant' }}"
    "{%- if message['content'] -%}{{ '\\n' + message['content'] }}{%- endif -%}"
    "{%- for call in message['tool_calls'] -%}"
    "{%- set call = call['function'] if call['function'] is defined else call -%}"
    "{{ '\\n<tool_call>\\n{\"name\": \"' + call['name'] + '\", \"arguments\": ' }}"
    "{{ call['arguments'] | tojson }}{{ '}\\n</tool_call>' }}"
    "{%- endfor -%}"
    "{{ '<|im_end|>\\n' }}"
    "{%- elif message['role'] == 'tool' -%}"
    "{%- if loop.first or loop.previtem['role'] != 'tool' -%}{{ '<|im_start|>user' }}{%- endif -%}"
    "{{ '\\n<tool_response>\\n' + message['content'] + '\\n</tool_response>' }}"
    "{%- if loop.last or loop.nextitem['role'] != 'tool' -%}{{ '<|im_end|>\\n' }}{%- endif -%}"
    "{%- else -%}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<|im_start|>assistant\\n' }}{%- endif -%}"
)

log = logging.getLogger("demo_model")


def default_model_dir() -> Path:
    """Where the demo model lives: ``DEMO_MODEL_DIR`` or the service's own cache folder."""
    env = os.environ.get("DEMO_MODEL_DIR")
    return Path(env).expanduser().resolve() if env else DEFAULT_DIR


def fingerprint() -> str:
    """Hash of everything the built model depends on: corpus, recipe and library versions."""
    h = hashlib.sha256()
    h.update(CORPUS.read_bytes())
    h.update(Path(__file__).read_bytes())
    for dist in ("torch", "transformers", "tokenizers", "safetensors"):
        h.update(f"{dist}=={metadata.version(dist)}".encode())
    return h.hexdigest()[:16]


def is_current(path: Path) -> bool:
    """True when ``path`` holds a complete demo model built from the current inputs."""
    marker = path / FINGERPRINT_FILE
    return marker.is_file() and marker.read_text().strip() == fingerprint()


def load_corpus() -> list[list[dict[str, str]]]:
    """The bundled dialogues, each a list of chat messages."""
    dialogues = []
    with CORPUS.open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                dialogues.append(json.loads(line)["messages"])
    return dialogues


def render_turn(message: dict[str, str]) -> str:
    return f"<|im_start|>{message['role']}\n{message['content']}<|im_end|>\n"


def train_tokenizer(dialogues: list[list[dict[str, str]]]) -> Any:
    """A byte-level BPE tokenizer (GPT-2/Qwen style) trained on the corpus, with a chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        min_frequency=2,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    texts = [render_turn(m) for d in dialogues for m in d]
    tok.train_from_iterator(texts, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token=None,
        model_max_length=4096,
        clean_up_tokenization_spaces=False,
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def encode_dialogue(tokenizer: Any, messages: list[dict[str, str]]) -> tuple[list[int], list[int]]:
    """Token ids of a whole dialogue and labels that train only the assistant replies."""
    ids: list[int] = []
    labels: list[int] = []
    for m in messages:
        if m["role"] == "assistant":
            head = tokenizer.encode("<|im_start|>assistant\n", add_special_tokens=False)
            body = tokenizer.encode(m["content"] + "<|im_end|>", add_special_tokens=False)
            tail = tokenizer.encode("\n", add_special_tokens=False)
            ids += head + body + tail
            labels += [-100] * len(head) + body + [-100] * len(tail)
        else:
            part = tokenizer.encode(render_turn(m), add_special_tokens=False)
            ids += part
            labels += [-100] * len(part)
    rendered = tokenizer.apply_chat_template(messages, tokenize=False)
    # Inference tokenizes the rendered prompt in one go; training must see the same ids.
    if tokenizer.encode(rendered, add_special_tokens=False) != ids:
        raise RuntimeError("segment-wise and whole-prompt tokenization disagree")
    return ids, labels


def train_model(tokenizer: Any, dialogues: list[list[dict[str, str]]]) -> Any:
    """Trains a tiny Qwen2 to memorise the corpus replies; deterministic for a fixed thread count."""
    import torch
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(SEED)
    torch.set_num_threads(THREADS)
    torch.use_deterministic_algorithms(True)
    pad_id = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    eos_id = tokenizer.convert_tokens_to_ids("<|im_end|>")
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=256,
        intermediate_size=704,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        rope_theta=10000.0,
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=eos_id,
        pad_token_id=pad_id,
    )
    model = Qwen2ForCausalLM(config)
    encoded = [encode_dialogue(tokenizer, d) for d in dialogues]
    width = max(len(ids) for ids, _ in encoded)
    input_ids = torch.full((len(encoded), width), pad_id, dtype=torch.long)
    labels = torch.full((len(encoded), width), -100, dtype=torch.long)
    attention = torch.zeros((len(encoded), width), dtype=torch.long)
    for i, (ids, lab) in enumerate(encoded):
        input_ids[i, : len(ids)] = torch.tensor(ids)
        labels[i, : len(lab)] = torch.tensor(lab)
        attention[i, : len(ids)] = 1

    optimizer = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=0.0)

    def lr_at(step: int) -> float:
        if step < WARMUP:
            return (step + 1) / WARMUP
        progress = (step - WARMUP) / max(1, STEPS - WARMUP)
        return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_at)
    generator = torch.Generator().manual_seed(SEED)
    model.train()
    order = torch.randperm(len(encoded), generator=generator)
    cursor = 0
    for step in range(STEPS):
        if cursor + BATCH > len(order):
            order = torch.randperm(len(encoded), generator=generator)
            cursor = 0
        idx = order[cursor : cursor + BATCH]
        cursor += BATCH
        used = int(attention[idx].sum(dim=1).max())
        out = model(
            input_ids=input_ids[idx, :used],
            attention_mask=attention[idx, :used],
            labels=labels[idx, :used],
        )
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        if step % 50 == 0 or step == STEPS - 1:
            log.info("step %d loss %.4f", step, out.loss.item())
    model.eval()
    model.generation_config = GenerationConfig(
        do_sample=True,
        temperature=0.7,
        top_p=0.8,
        max_new_tokens=256,
        eos_token_id=eos_id,
        pad_token_id=pad_id,
    )
    return model


def build(path: Path, force: bool = False) -> Path:
    """Builds the demo model into ``path`` unless an up-to-date one is already there."""
    if not force and is_current(path):
        log.info("demo model is up to date at %s", path)
        return path
    started = time.monotonic()
    dialogues = load_corpus()
    tokenizer = train_tokenizer(dialogues)
    model = train_model(tokenizer, dialogues)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Build next to the target and swap it in, so a crash never leaves a half-written model.
    staging = Path(tempfile.mkdtemp(prefix=".demo-model-", dir=path.parent))
    try:
        model.save_pretrained(staging, safe_serialization=True)
        tokenizer.save_pretrained(staging)
        (staging / FINGERPRINT_FILE).write_text(fingerprint() + "\n")
        if path.exists():
            shutil.rmtree(path)
        staging.rename(path)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    log.info("built demo model at %s in %.1f s", path, time.monotonic() - started)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="target folder")
    parser.add_argument("--force", action="store_true", help="rebuild even when up to date")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)
    path = build((args.out or default_model_dir()).resolve(), force=args.force)
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
