"""Service settings, read once from the environment."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Values people paste from examples; a shared secret must never be one of these.
PLACEHOLDER_TOKENS = frozenset(
    {"changeme", "change-me", "change_me", "secret", "token", "password", "test", "default", "example"}
)
MIN_TOKEN_LENGTH = 16


class Settings(BaseSettings):
    """Every knob of the model service; each field reads ``MODEL_<NAME>`` from the environment."""

    model_config = SettingsConfigDict(env_prefix="MODEL_", extra="ignore", protected_namespaces=())

    path: str | None = Field(default=None, description="Local model folder or hub id; unset = demo model")
    name: str | None = Field(default=None, description="Served model id; default the folder name")
    host: str = "127.0.0.1"
    port: int = 8000
    device: Literal["auto", "cpu", "cuda"] = "auto"
    dtype: Literal["auto", "float32", "float16", "bfloat16"] = "auto"
    trust_remote_code: bool = False
    engine: Literal["auto", "continuous", "generate"] = "auto"
    max_model_len: int | None = Field(default=None, gt=0)
    max_queued_requests: int = Field(default=64, ge=1)
    max_choices: int = Field(default=16, ge=1, description="The largest n (choices per request) accepted")
    max_batch_tokens: int = Field(default=2048, ge=16)
    max_batch_requests: int = Field(default=16, ge=1)
    prefix_cache: bool = Field(
        default=True,
        description="Reuse the KV cache of a prompt prefix computed before (multi-turn chat, a shared system "
        "prompt); takes effect where the engine supports it (continuous batching, full-attention models)",
    )
    attention: Literal["auto", "varlen", "library"] = Field(
        default="auto",
        description="Attention of the continuous batching engine: varlen (each request attends to its own "
        "keys only), library (transformers' own choice), or auto (varlen unless transformers picked a flash "
        "attention; models with sliding windows, sinks or soft caps always keep the library's)",
    )
    default_max_tokens: int = Field(default=512, ge=1)
    service_token: str = ""
    service_dev_mode: bool = False
    log_level: str = "INFO"
    log_prompts: bool = False
    ping_interval_s: float = Field(default=10.0, gt=0, le=10.0)
    shutdown_timeout_s: float = Field(default=30.0, ge=0)
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    retry_after_s: int = Field(default=1, ge=1)

    @model_validator(mode="after")
    def _refuse_weak_token(self) -> Settings:
        token = self.service_token
        if self.service_dev_mode:
            return self
        if not token:
            raise ValueError(
                "MODEL_SERVICE_TOKEN is empty: set a random secret of at least "
                f"{MIN_TOKEN_LENGTH} characters, or MODEL_SERVICE_DEV_MODE=true for local development"
            )
        if token.strip().lower() in PLACEHOLDER_TOKENS or len(token) < MIN_TOKEN_LENGTH:
            raise ValueError(
                "MODEL_SERVICE_TOKEN looks like a placeholder or is shorter than "
                f"{MIN_TOKEN_LENGTH} characters: use a random secret"
            )
        return self

    @property
    def auth_enabled(self) -> bool:
        """False only in dev mode with no token configured."""
        return bool(self.service_token)
