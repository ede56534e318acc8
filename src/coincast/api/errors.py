"""One error body everywhere: ``{"error": code, "detail": message}``, for every status the API answers.

``install_error_handlers(app)`` maps :class:`~coincast.domain.InvalidRequest` subclasses, request
validation, Starlette's own HTTP errors (400, 404, 405, 413, ...) and anything unexpected (500) to
that body. A 500 says nothing about the exception to the caller: the server log has the traceback.
The spec documents the body and each route's statuses (:mod:`coincast.api.docs`).
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import compile_path

from coincast.domain import InvalidRequest

#: short codes for the statuses Starlette and the middleware raise themselves
STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "rate_limited",
    500: "internal_error",
    503: "unavailable",
}
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
MAX_DETAIL = 500  # characters of a validation message echoed back (inputs can be megabytes)


def error_response(status: int, code: str, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": code, "detail": detail}, status_code=status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers that give every error the ``{"error", "detail"}`` body."""

    @app.exception_handler(InvalidRequest)
    async def _invalid(_: Request, exc: InvalidRequest) -> JSONResponse:
        return error_response(exc.status_code, exc.code, str(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(422, "invalid_request", validation_detail(exc.errors()))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = STATUS_CODES.get(exc.status_code, "error")
        detail = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
        headers = dict(exc.headers or {})
        if exc.status_code == 405 and (allowed := allowed_methods(request)):
            # Starlette names only the first matching route's methods; a path may have several routes
            headers["Allow"] = ", ".join(allowed)
            detail = f"method {request.method} not allowed on {request.url.path[:200]}; allowed: {', '.join(allowed)}"
        return error_response(exc.status_code, code, detail[:MAX_DETAIL], headers)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, __: Exception) -> JSONResponse:
        # Starlette re-raises after sending this, so the server logs the traceback once.
        return error_response(500, "internal_error", "internal server error; the server log has the details")


def validation_detail(errors: Any) -> str:
    """``loc: message`` pairs, without the offending input (which may be huge or secret)."""
    parts = []
    for e in errors:
        loc = ".".join(str(p) for p in e.get("loc", ()))
        parts.append(f"{loc}: {e.get('msg', 'invalid')}"[:200])
    return "; ".join(parts)[:MAX_DETAIL] or "invalid request"


def allowed_methods(request: Request) -> list[str]:
    """Every method the OpenAPI spec documents at the request's path (empty for undocumented paths)."""
    app = request.app
    table: list[tuple[re.Pattern[str], list[str]]] | None = getattr(app.state, "method_table", None)
    if table is None:
        table = [
            (compile_path(template)[0], [m.upper() for m in ops if m.upper() in HTTP_METHODS])
            for template, ops in app.openapi().get("paths", {}).items()
        ]
        app.state.method_table = table
    return sorted({m for regex, methods in table if regex.match(request.url.path) for m in methods})
