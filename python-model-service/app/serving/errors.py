"""Errors that map to the shared error envelope."""

from __future__ import annotations


class ApiError(Exception):
    """An error with an HTTP status, rendered as ``{"error": {...}}``."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.headers = headers or {}

    def body(self) -> dict[str, object]:
        """The JSON envelope."""
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


def invalid(message: str, param: str | None = None, code: str = "invalid_value") -> ApiError:
    """A 400 invalid_request_error."""
    return ApiError(400, message, param=param, code=code)


def overloaded(message: str, retry_after: int) -> ApiError:
    """A 503 with Retry-After."""
    return ApiError(
        503, message, type="overloaded_error", code="overloaded", headers={"Retry-After": str(retry_after)}
    )


def engine_failed() -> ApiError:
    """The engine failed a generation: a 500 before a reply started, an error event inside one."""
    return ApiError(500, "generation failed", type="server_error", code="engine_error")
