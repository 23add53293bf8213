from types import SimpleNamespace

import pytest
import torch

from app.engine.loader import (
    ModelLoadError,
    _needs_generate_engine,
    resolve_device,
    resolve_dtype,
    served_model_name,
)


def test_cpu_is_float32_and_explicit_dtypes_win() -> None:
    cpu = torch.device("cpu")
    assert resolve_dtype("auto", cpu) == torch.float32
    assert resolve_dtype("bfloat16", cpu) == torch.bfloat16
    assert resolve_dtype("float16", torch.device("cuda")) == torch.float16


def test_auto_dtype_on_gpu_is_half_precision(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert resolve_dtype("auto", torch.device("cuda")) == torch.float16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert resolve_dtype("auto", torch.device("cuda")) == torch.bfloat16


def test_cuda_without_a_gpu_fails_clearly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ModelLoadError, match="no CUDA device"):
        resolve_device("cuda")
    assert resolve_device("auto").type == "cpu"


def test_remote_code_models_get_the_generate_engine() -> None:
    chatglm = SimpleNamespace(
        auto_map={"AutoModelForCausalLM": "modeling_chatglm.ChatGLMForConditionalGeneration"}
    )
    assert _needs_generate_engine(chatglm, trust_remote_code=True)
    assert not _needs_generate_engine(chatglm, trust_remote_code=False)
    assert not _needs_generate_engine(SimpleNamespace(), trust_remote_code=True)


def test_model_id_is_the_folder_name_or_the_hub_id(tmp_path) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "demo-model"
    folder.mkdir()
    assert served_model_name(str(folder)) == "demo-model"
    assert served_model_name("Qwen/Qwen2.5-0.5B-Instruct") == "Qwen/Qwen2.5-0.5B-Instruct"
