"""HTTP errors as JSON ``{"error": {"code", "message"}}``: the one place that maps errors to status codes."""

from __future__ import annotations

import logging

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException

from hubseg.errors import HubsegError

log = logging.getLogger("hubseg_server")

# hubseg.errors codes -> HTTP status
HUBSEG_CODE_STATUS = {
    "invalid_request": 400,
    "invalid_input": 422,
    "unsupported_format": 415,
    "missing_pixel_size": 422,
    "not_found": 404,
    "conflict": 409,
    "dependency_missing": 501,
    "cancelled": 409,
}

# werkzeug status -> our stable code
HTTP_STATUS_CODE = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden_path",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_input",
    500: "internal_error",
    501: "dependency_missing",
    503: "unavailable",
}


class ApiError(Exception):
    """An error with its HTTP status, stable code, human message and (optionally) the offending field."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None, headers=None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.headers = headers or {}


def bad_request(message: str, field: str | None = None) -> ApiError:
    return ApiError(400, "bad_request", message, field)


def invalid(message: str, field: str | None = None) -> ApiError:
    return ApiError(422, "invalid_input", message, field)


def not_found(message: str) -> ApiError:
    return ApiError(404, "not_found", message)


def conflict(message: str) -> ApiError:
    return ApiError(409, "conflict", message)


def from_hubseg(error: HubsegError, field: str | None = None) -> ApiError:
    code = getattr(error, "code", "invalid_request")
    return ApiError(HUBSEG_CODE_STATUS.get(code, 400), code, str(error) or code, field)


def error_response(status: int, code: str, message: str, field: str | None = None, headers=None):
    body = {"code": code, "message": message}
    if field:
        body["field"] = field
    response = jsonify({"error": body})
    response.status_code = status
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def install_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(error: ApiError):
        return error_response(error.status, error.code, error.message, error.field, error.headers)

    @app.errorhandler(HubsegError)
    def _hubseg_error(error: HubsegError):
        api = from_hubseg(error)
        return error_response(api.status, api.code, api.message)

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException):
        status = error.code or 500
        code = HTTP_STATUS_CODE.get(status, "bad_request" if status < 500 else "internal_error")
        messages = {
            404: "no such endpoint; the API is described at GET /v1/openapi.json",
            413: f"request body too large (limit {app.config.get('MAX_CONTENT_LENGTH')} bytes); "
            "send a smaller region or raise the server's limit",
        }
        message = messages.get(status) or (error.description or error.name)
        headers = {}
        if status == 405:
            allowed = getattr(error, "valid_methods", None) or []
            message = f"method not allowed here; allowed: {', '.join(sorted(allowed))}"
            if allowed:
                headers["Allow"] = ", ".join(sorted(allowed))
        return error_response(status, code, message, headers=headers)

    @app.errorhandler(Exception)
    def _unexpected(error: Exception):
        log.exception("unexpected error while handling a request")
        return error_response(500, "internal_error", "unexpected server error; see the server log for details")
