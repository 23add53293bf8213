"""One-line structured logs that carry the request id, written off the event loop."""

from __future__ import annotations

import atexit
import contextvars
import logging
import queue
from logging.handlers import QueueHandler, QueueListener

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")

_listener: QueueListener | None = None


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id_var.get()
        return True


def configure_logging(level: str = "INFO") -> None:
    """Route the app's and uvicorn's loggers through one key=value formatter.

    Records go through a queue to a writer thread. Writing to stderr is a system call that
    releases the GIL, and the engine thread then holds the event loop up for milliseconds before
    the loop gets it back: once per access-log line, that is once per request.
    """
    global _listener
    stream = logging.StreamHandler()
    stream.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(name)s request_id=%(request_id)s %(message)s")
    )
    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    handler = QueueHandler(records)
    handler.addFilter(_RequestIdFilter())  # the request id is read where the record is made
    _install(handler, level)
    _listener = QueueListener(records, stream)
    _listener.start()
    atexit.register(write_logs_directly)
    # uvicorn's own access log would duplicate ours, without the request id.
    logging.getLogger("uvicorn.access").disabled = True
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers = []
        logging.getLogger(name).propagate = True


def write_logs_directly() -> None:
    """Write out every queued record, then log synchronously from now on (for the last moments of
    the process: uvicorn ends a signalled shutdown by re-raising the signal, which skips atexit)."""
    global _listener
    listener, _listener = _listener, None
    if listener is None:
        return
    stream = listener.handlers[0]  # the writer thread's handler, from now on called directly
    stream.addFilter(_RequestIdFilter())
    _install(stream, logging.getLogger().level)
    listener.stop()  # processes what is already queued, then joins the writer thread


def _install(handler: logging.Handler, level: str | int) -> None:
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)
