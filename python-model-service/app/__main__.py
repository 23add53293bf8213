"""``python -m app``: serve the model on MODEL_HOST:MODEL_PORT."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import socket
import sys
from collections.abc import Iterator
from types import FrameType
from typing import Any

import uvicorn
from pydantic import ValidationError

from app.core.config import Settings
from app.core.logging import configure_logging, write_logs_directly

log = logging.getLogger("app")


class DrainingServer(uvicorn.Server):
    """On SIGTERM/SIGINT, stop admission (/ready turns 503), then let uvicorn drain in-flight streams."""

    def __init__(self, config: uvicorn.Config, app: object, drain_s: float) -> None:
        super().__init__(config)
        self._app = app
        self._drain_s = drain_s

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """uvicorn's, plus: queued log lines are written before uvicorn re-raises a caught signal."""
        with super().capture_signals():
            try:
                yield
            finally:
                write_logs_directly()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """uvicorn's drain, plus: streams still running at the deadline end cleanly as ``cancelled``."""
        deadline = asyncio.create_task(self._abort_after(self._drain_s))
        try:
            await super().shutdown(sockets)
        finally:
            deadline.cancel()

    async def _abort_after(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
        service = getattr(getattr(self._app, "state", None), "service", None)
        if service is not None:
            log.info("event=drain_deadline aborted=%d", service.abort_all())

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        state = getattr(self._app, "state", None)
        service = getattr(state, "service", None)
        if service is not None:
            service.draining = True
        if state is not None:
            state.ready = False
        log.info("event=draining signal=%s", sig)
        super().handle_exit(sig, frame)


def _setting_error(error: Any) -> str:
    """``MODEL_PORT: Input should be a valid integer``: the variable, then what is wrong with it (never
    its value, which may be a secret)."""
    fields = [str(part) for part in error.get("loc", ()) if part != ""]
    message = str(error.get("msg", error))
    return f"MODEL_{fields[0].upper()}: {message}" if fields else message


def main() -> int:
    """Validate settings, then run uvicorn until a signal stops it."""
    try:
        settings = Settings()
    except ValidationError as exc:
        messages = "; ".join(_setting_error(e) for e in exc.errors())
        print(f"model service: invalid configuration: {messages}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level)
    from app.engine.loader import ModelLoadError
    from app.main import build_app, resolve_model_path

    try:
        resolve_model_path(settings)
    except ModelLoadError as exc:
        print(f"model service: {exc}", file=sys.stderr)
        return 2
    app = build_app(settings)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        # a little longer than our own deadline, so aborted streams can still send their last events
        timeout_graceful_shutdown=math.ceil(settings.shutdown_timeout_s) + 5,
        lifespan="on",
    )
    server = DrainingServer(config, app, settings.shutdown_timeout_s)
    server.run()
    return 0 if server.started else 1


if __name__ == "__main__":
    raise SystemExit(main())
