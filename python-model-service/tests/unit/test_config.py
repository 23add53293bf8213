import pytest
from pydantic import ValidationError

from app.core.config import Settings


@pytest.mark.parametrize("token", ["", "changeme", "secret", "token", "CHANGEME", "short-but-real"])
def test_refuses_empty_or_placeholder_tokens(token: str) -> None:
    with pytest.raises(ValidationError, match="MODEL_SERVICE_TOKEN"):
        Settings(service_token=token)


def test_accepts_a_long_random_token() -> None:
    s = Settings(service_token="a8f3k2m9q7w1e5r4t6y")
    assert s.auth_enabled


def test_dev_mode_allows_an_empty_token_and_disables_auth() -> None:
    s = Settings(service_token="", service_dev_mode=True)
    assert not s.auth_enabled


def test_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODEL_SERVICE_TOKEN", "x" * 20)
    monkeypatch.setenv("MODEL_PORT", "9123")
    monkeypatch.setenv("MODEL_MAX_QUEUED_REQUESTS", "7")
    monkeypatch.setenv("MODEL_PATH", "/models/qwen")
    s = Settings()
    assert (s.port, s.max_queued_requests, s.path) == (9123, 7, "/models/qwen")


def test_ping_interval_is_at_most_ten_seconds() -> None:
    with pytest.raises(ValidationError):
        Settings(service_token="x" * 20, ping_interval_s=30)


def test_attention_is_auto_by_default_and_refuses_unknown_values(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings(service_token="x" * 20).attention == "auto"
    monkeypatch.setenv("MODEL_ATTENTION", "library")
    assert Settings(service_token="x" * 20).attention == "library"
    with pytest.raises(ValidationError, match="attention"):
        Settings(service_token="x" * 20, attention="flash")  # type: ignore[arg-type]
