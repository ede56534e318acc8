"""The API's documentation: Swagger UI and ReDoc served offline, error statuses, the API key, /ws.

Swagger UI's and ReDoc's scripts come from the ``fastapi-offline`` package and are served by the
app itself, so ``/docs`` and ``/redoc`` work without a network. The spec is FastAPI's, completed
here with what FastAPI cannot see:

* the model of each route's success answer (:data:`coincast.api.schemas.RESPONSES`) with examples;
* every status a route can answer besides success, from :data:`ERRORS`, each with the real error
  body (:class:`ErrorBody`) and an example; a unit test fails for a route missing from the tables;
* the API key as a security scheme (``X-API-Key``), so Swagger's *Authorize* button works;
* the WebSocket protocol of ``/ws`` (channels, messages, errors) in the description.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import fastapi_offline
from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.security import APIKeyHeader
from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import models_json_schema

from coincast.api.schemas import RESPONSES
from coincast.domain import InvalidRequest

DOCS_ASSETS = Path(fastapi_offline.__file__).parent / "static"
ASSET_TYPES = {"swagger-ui-bundle.js": "text/javascript", "swagger-ui.css": "text/css",
               "redoc.standalone.js": "text/javascript", "favicon.png": "image/png"}

#: The header scheme; ``auto_error=False`` so a missing key reaches the route's own 401 body.
API_KEY_HEADER = APIKeyHeader(
    name="X-API-Key", scheme_name="ApiKey", auto_error=False,
    description="The API key of the server (api.api_key; in embedded mode generated into data/api_key).",
)


class UnknownAsset(InvalidRequest):
    status_code = 404
    code = "not_found"


class ErrorBody(BaseModel):
    """What every error answer looks like."""

    model_config = ConfigDict(json_schema_extra={
        "examples": [{"error": "unknown_symbol", "detail": "unknown symbol 'PEPEUSDT'; configured: BTCUSDT, ETHUSDT"}]
    })
    error: str = Field(description="a stable code to branch on", examples=["unknown_symbol"])
    detail: str = Field(description="what was wrong and what is accepted, for people")


#: Status -> (meaning, example body) for the error answers.
STATUSES: dict[int, tuple[str, dict[str, str]]] = {
    401: ("no X-API-Key header", {"error": "unauthorized", "detail": "missing X-API-Key header; this endpoint "
                                                                       "needs the configured API key"}),
    403: ("wrong API key, or none configured on the server",
          {"error": "forbidden", "detail": "invalid API key in X-API-Key"}),
    404: ("an unknown symbol, model, job or file",
          {"error": "unknown_symbol", "detail": "unknown symbol 'PEPEUSDT'; configured: BTCUSDT, ETHUSDT"}),
    400: ("a body that cannot be read", {"error": "bad_request", "detail": "There was an error parsing the body"}),
    409: ("the data needed is not there yet, or no model can answer (none is live, it expired, or it failed to "
          "load)", {"error": "model_unavailable",
                    "detail": "no model is live for BTCUSDT 1h; train one and promote it"}),
    422: ("a bad parameter or body: interval, time, range, JSON field",
          {"error": "invalid_interval", "detail": "unknown interval '7m'; expected one of 1s, 1m, 3m, 5m, 15m, 30m, "
                                                  "1h, 4h, 1d"}),
    413: ("a body larger than api.max_body_bytes",
          {"error": "payload_too_large", "detail": "request body larger than 262144 bytes"}),
    429: ("too many requests from this client (api.rate_limit_per_minute, stricter for POST and the assistant); "
          "see Retry-After", {"error": "rate_limited",
                              "detail": "too many requests from this client (1200 per minute here); retry in 12 s"}),
}

_Q = frozenset({422, 429})  # any route with parameters or a body
_SYM = _Q | {404}  # ... that also names a symbol, model, job or file
_KEY = {401, 403}
_BODY = frozenset({400, 413})  # a route that reads a body

#: (method, path) -> the error statuses the route can answer.
ERRORS: dict[tuple[str, str], frozenset[int]] = {
    ("GET", "/health"): frozenset(),
    ("GET", "/metrics"): frozenset(),
    ("GET", "/api/v1/symbols"): frozenset({429}),
    ("GET", "/api/v1/candles/{symbol}"): _SYM,
    ("GET", "/api/v1/indicators/{symbol}"): _SYM,
    ("GET", "/api/v1/tickers"): frozenset({429}),
    ("GET", "/api/crypto/{symbol}"): _SYM,
    ("GET", "/api/crypto/history/{symbol}"): _SYM,
    ("GET", "/api/v1/predictions/{symbol}"): _SYM,  # no live model: 200 with serving false and the reason
    ("GET", "/api/crypto/predictions/{symbol}"): _SYM,
    ("POST", "/api/v1/predict"): _SYM | _BODY | {409},
    ("POST", "/api/v1/train"): _SYM | _KEY | _BODY,
    ("GET", "/api/v1/train"): frozenset({429}),
    ("GET", "/api/v1/train/{job_id}"): _SYM,
    ("GET", "/api/v1/model-families"): frozenset({429}),
    ("GET", "/api/v1/models"): _SYM,
    ("GET", "/api/v1/models/{model_id}"): _SYM,
    ("POST", "/api/v1/models/{model_id}/promote"): _SYM | _KEY | {409},
    ("GET", "/api/v1/analytics"): _SYM | {409},
    ("GET", "/api/v1/analytics.csv"): _SYM | {409},
    ("GET", "/api/v1/backtest/files"): frozenset({429}),
    ("POST", "/api/v1/backtest"): _SYM | _BODY | {409},
    ("POST", "/api/v1/assistant/ask"): _Q | _BODY,
    ("POST", "/api/chatbot/ask"): _Q | _BODY,
}

#: The WebSocket protocol, shared with the README.
WS_PROTOCOL = "\n" + (Path(__file__).parent / "ws_protocol.md").read_text()

ERRORS_DOC = """
### Errors

Every error answer is `{"error": code, "detail": message}` with the status below; each route lists the
ones it can answer. 400 a body that cannot be read · 401 no `X-API-Key` header · 403 wrong key, or none
configured on the server · 404 unknown symbol, model, job, file or route · 405 wrong method (see `Allow`)
· 409 the data needed is not there yet, or no model can answer · 413 body too large · 422 bad parameter
or body · 429 too many requests (see `Retry-After`) · 500 a bug (no details; the server log has them).
Training and promotion need the API key: use **Authorize** above.
"""


def install_docs(app: FastAPI, docs_url: str = "/docs", redoc_url: str = "/redoc") -> None:
    """Serve Swagger UI, ReDoc and their assets from the app and complete its OpenAPI spec.

    ``app`` must be built with ``docs_url=None, redoc_url=None`` (no CDN pages).
    """
    assets = "/static/docs"

    @app.get(f"{assets}/{{name}}", include_in_schema=False)
    async def docs_asset(name: str) -> FileResponse:
        if name not in ASSET_TYPES:
            raise UnknownAsset(f"no documentation asset {name!r}; there are {', '.join(ASSET_TYPES)}")
        return FileResponse(DOCS_ASSETS / name, media_type=ASSET_TYPES[name],
                            headers={"Cache-Control": "public, max-age=86400"})

    @app.get(docs_url, include_in_schema=False)
    async def swagger() -> HTMLResponse:
        return _local_only(get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json", title=f"{app.title} API",
            swagger_js_url=f"{assets}/swagger-ui-bundle.js", swagger_css_url=f"{assets}/swagger-ui.css",
            swagger_favicon_url=f"{assets}/favicon.png",
            swagger_ui_parameters={"persistAuthorization": True, "displayRequestDuration": True},
        ))

    @app.get(redoc_url, include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return _local_only(get_redoc_html(
            openapi_url=app.openapi_url or "/openapi.json", title=f"{app.title} API",
            redoc_js_url=f"{assets}/redoc.standalone.js", redoc_favicon_url=f"{assets}/favicon.png",
            with_google_fonts=False))

    app.openapi = _openapi(app)  # type: ignore[method-assign]


#: The documentation pages load nothing from other hosts (ReDoc's footer links a logo on a CDN).
LOCAL_ONLY = ("default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
              "img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; connect-src 'self'")


def _local_only(page: HTMLResponse) -> HTMLResponse:
    page.headers["Content-Security-Policy"] = LOCAL_ONLY
    return page


def _openapi(app: FastAPI) -> Callable[[], dict[str, Any]]:
    def build() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        spec = get_openapi(title=app.title, version=app.version, description=(app.description or "") + ERRORS_DOC
                           + WS_PROTOCOL, routes=app.routes)
        schemas = spec.setdefault("components", {}).setdefault("schemas", {})
        schemas["ErrorBody"] = ErrorBody.model_json_schema()
        for name in ("HTTPValidationError", "ValidationError"):
            schemas.pop(name, None)
        models = sorted({m for m in RESPONSES.values() if m is not None}, key=lambda m: m.__name__)
        _, defs = models_json_schema([(m, "serialization") for m in models],
                                     ref_template="#/components/schemas/{model}")
        schemas.update(defs.get("$defs", {}))
        for path, ops in spec.get("paths", {}).items():
            for method, op in ops.items():
                key = (method.upper(), path)
                document_errors(op, ERRORS.get(key, frozenset({422, 429})))
                if (model := RESPONSES.get(key)) is not None:
                    ok = next(c for c in op["responses"] if c.startswith("2"))
                    op["responses"][ok]["content"] = {
                        "application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}}
        app.openapi_schema = spec
        return spec

    return build


def document_errors(op: dict[str, Any], statuses: frozenset[int]) -> None:
    """Replace FastAPI's 422 (not our body) with ``statuses``, each with :class:`ErrorBody`."""
    responses = op.setdefault("responses", {})
    responses.pop("422", None)
    for status in sorted(statuses):
        meaning, example = STATUSES[status]
        responses[str(status)] = {
            "description": meaning[:1].upper() + meaning[1:],
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"},
                                             "example": example}},
        }
