"""The error shape of API.md, and the translation of gRPC statuses into HTTP codes."""

from __future__ import annotations

from typing import NoReturn, cast

import grpc
from flask import Flask, Response, jsonify
from servicekit.grpc_server import ERROR_CODE_KEY, RETRY_AFTER_KEY
from servicekit.logs import get_logger
from werkzeug.exceptions import HTTPException

log = get_logger(__name__)

_HTTP = {
    grpc.StatusCode.INVALID_ARGUMENT: (422, "invalid"),
    grpc.StatusCode.NOT_FOUND: (404, "not_found"),
    grpc.StatusCode.PERMISSION_DENIED: (403, "forbidden"),
    grpc.StatusCode.UNAUTHENTICATED: (401, "unauthenticated"),
    grpc.StatusCode.ALREADY_EXISTS: (409, "conflict"),
    grpc.StatusCode.ABORTED: (409, "conflict"),
    grpc.StatusCode.FAILED_PRECONDITION: (422, "failed_precondition"),
    grpc.StatusCode.RESOURCE_EXHAUSTED: (429, "throttled"),
    grpc.StatusCode.UNAVAILABLE: (503, "service_unavailable"),
    grpc.StatusCode.DEADLINE_EXCEEDED: (503, "service_unavailable"),
}
_NAMES = {400: "malformed", 401: "unauthenticated", 403: "forbidden", 404: "not_found",
          405: "method_not_allowed", 409: "conflict", 413: "too_large", 415: "unsupported_media_type",
          422: "invalid", 429: "throttled"}


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.retry_after = status, code, message, retry_after


def error_response(status: int, code: str, message: str, retry_after: int | None = None) -> Response:
    response = jsonify({"error": {"code": code, "message": message}})
    response.status_code = status
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    return response


def fail(status: int, code: str, message: str) -> NoReturn:
    raise ApiError(status, code, message)


def from_rpc(error: grpc.RpcError) -> ApiError:
    """Translate a failed call; the callee's message is already safe to show."""
    code = error.code() if isinstance(error, grpc.Call) else grpc.StatusCode.UNKNOWN
    status, default = _HTTP.get(code, (502, "upstream_error"))
    machine = default
    retry_after: int | None = None
    trailing = error.trailing_metadata() if isinstance(error, grpc.Call) else None
    for key, value in trailing or ():
        if key == ERROR_CODE_KEY and isinstance(value, str):
            machine = value
        elif key == RETRY_AFTER_KEY and isinstance(value, str) and value.isdigit():
            retry_after = int(value)
    if status >= 500:
        log.warning("upstream failure", grpc_status=code.name if code else "")
        message = ("a service is temporarily unavailable; try again shortly" if status == 503
                   else "a service failed to answer")
        return ApiError(status, machine if status != 502 else "upstream_error", message,
                        retry_after=1 if status == 503 else None)
    details = error.details() if isinstance(error, grpc.Call) else ""
    return ApiError(status, machine, details or machine, retry_after=retry_after)


def register(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError) -> Response:
        return error_response(exc.status, exc.code, exc.message, exc.retry_after)

    @app.errorhandler(grpc.RpcError)
    def _rpc_error(exc: grpc.RpcError) -> Response:
        err = from_rpc(exc)
        return error_response(err.status, err.code, err.message, err.retry_after)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response:
        if exc.response is not None and exc.response.is_json:
            return cast(Response, exc.response)  # already in our shape (spectree hook)
        status = exc.code or 500
        return error_response(status, _NAMES.get(status, "error"), exc.description or exc.name)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        log.exception("unhandled gateway error")
        return error_response(500, "internal", "internal error")
