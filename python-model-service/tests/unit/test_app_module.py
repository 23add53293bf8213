import pytest
from fastapi import FastAPI

import app.main


def test_module_level_app_is_built_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODEL_SERVICE_TOKEN", "k" * 24)
    monkeypatch.setenv("MODEL_MAX_QUEUED_REQUESTS", "5")
    built = app.main.app
    assert isinstance(built, FastAPI)
    assert built.state.settings.max_queued_requests == 5


def test_importing_needs_no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MODEL_SERVICE_TOKEN", raising=False)
    assert callable(app.main.build_app)
    with pytest.raises(ValueError, match="MODEL_SERVICE_TOKEN"):
        _ = app.main.app


def test_served_model_name(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from app.core.config import Settings
    from app.demo_model.build import FINGERPRINT_FILE
    from app.engine.loader import served_model_name

    settings = Settings(service_token="k" * 24)
    demo = tmp_path / "dm-elsewhere"
    demo.mkdir()
    (demo / FINGERPRINT_FILE).write_text("x")
    plain = tmp_path / "qwen2.5-0.5b"
    plain.mkdir()
    assert served_model_name(str(demo), settings.name) == "demo-model"
    assert served_model_name(str(plain), settings.name) == "qwen2.5-0.5b"
    assert served_model_name("Qwen/Qwen2.5-7B-Instruct", settings.name) == "Qwen/Qwen2.5-7B-Instruct"
    named = Settings(service_token="k" * 24, name="prod-chat")
    assert served_model_name(str(demo), named.name) == "prod-chat"
