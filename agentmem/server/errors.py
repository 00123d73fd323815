"""Every error the server answers is JSON: ``{"error": {"code": "<stable_snake_code>", "message": "..."}}``
(a validation error adds ``"details"``: FastAPI's list of what failed where). Clients branch on ``code``;
the message is for people and may change.

========  ============================  ===========================================================
status    code                          when
========  ============================  ===========================================================
400       bad_request                   ConfigurationError raised by a request (e.g. an unknown layer)
400       host_not_allowed              open mode: the Host is not a name the server answers to
401       unauthorized                  no key, a malformed, unknown or revoked key
                                        (with ``WWW-Authenticate: Bearer``)
403       cross_origin                  open mode: a state-changing request from another site's page
404       not_found                     an unknown route; NotFoundError; a user, item or route the
                                        caller's key may not reach (answered exactly as a missing one)
405       method_not_allowed            a known path with another method
409       conflict                      ConflictError (e.g. importing a user that exists)
409       user_erased                   ErasedError: the user was deleted while the write was under way
413       body_too_large                a request body over the server's ``max_body_bytes``
422       invalid_request               the request does not match the route's schema (FastAPI)
422       invalid_input                 InvalidInputError: a value agentmem will not store
422       invalid_scope                 ScopeError: a bad user_id, agent_id or session_id
422       secret_rejected               SecretError: the input looks like a secret
429       rate_limited                  RateLimitError: the model provider refused for now
502       model_error                   ModelError / ExtractionError: the model failed (nothing written)
503       store_unavailable             StoreError / ClosedError: the database failed
500       internal_error                anything else (a bug: the message says nothing more)
========  ============================  ===========================================================

Routes raise :class:`ApiError` (or one of the helpers :func:`not_found`, :func:`conflict`) for answers
of their own, or let agentmem's errors through: :func:`install` maps both.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import (
    AgentMemError,
    ClosedError,
    ConfigurationError,
    ConflictError,
    ErasedError,
    ExtractionError,
    InvalidInputError,
    ModelError,
    NotFoundError,
    RateLimitError,
    ScopeError,
    SecretError,
    StoreError,
)

logger = logging.getLogger("agentmem.server")

# Most specific first: the first class an error is an instance of decides.
AGENTMEM_ERRORS: tuple[tuple[type[AgentMemError], int, str], ...] = (
    (ErasedError, 409, "user_erased"),
    (NotFoundError, 404, "not_found"),
    (ConflictError, 409, "conflict"),
    (SecretError, 422, "secret_rejected"),
    (ScopeError, 422, "invalid_scope"),
    (InvalidInputError, 422, "invalid_input"),
    (ConfigurationError, 400, "bad_request"),
    (RateLimitError, 429, "rate_limited"),
    (ModelError, 502, "model_error"),
    (ExtractionError, 502, "model_error"),
    (StoreError, 503, "store_unavailable"),
    (ClosedError, 503, "store_unavailable"),
)
_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "body_too_large",
    422: "invalid_request",
    429: "rate_limited",
}

_PHRASES = {status.value for status in HTTPStatus}


class ApiError(Exception):
    """An error answer of the server: raise it from a route or a dependency.

    Args:
        status: the HTTP status.
        code: the stable snake_case code clients branch on.
        message: for people.
        headers: extra response headers (e.g. ``WWW-Authenticate``).
    """

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers


def not_found(message: str = "not found") -> ApiError:
    """The 404 a missing thing gets; ``raise not_found(f"no user {user_id!r}")``."""
    return ApiError(404, "not_found", message)


def conflict(message: str) -> ApiError:
    """A 409: the request would overwrite what exists."""
    return ApiError(409, "conflict", message)


def error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    """The JSON every error answer has."""
    return {"error": {"code": code, "message": message, **extra}}


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(error_body(code, message), status_code=status, headers=headers)


def status_of(exc: AgentMemError) -> tuple[int, str]:
    """The status and code an agentmem error is answered with."""
    for kind, status, code in AGENTMEM_ERRORS:
        if isinstance(exc, kind):
            return status, code
    return 500, "internal_error"


async def _api_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.code, exc.message, exc.headers)


async def _agentmem_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AgentMemError)
    status, code = status_of(exc)
    if status >= 500:
        logger.error("%s: %s", type(exc).__name__, exc)
    extra = {"pending_id": exc.pending_id} if isinstance(exc, ExtractionError) and exc.pending_id else {}
    return JSONResponse(error_body(code, str(exc), **extra), status_code=status)


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    # Only where and what: the input itself may be large, or bytes JSON cannot hold.
    details = [
        {
            "loc": [str(part) for part in e.get("loc", ())],
            "msg": str(e.get("msg", "")),
            "type": str(e.get("type", "")),
        }
        for e in exc.errors()
    ]
    where = "; ".join(f"{'.'.join(d['loc'])}: {d['msg']}" for d in details[:5])
    return JSONResponse(
        error_body(
            "invalid_request", f"invalid request: {where}" if where else "invalid request", details=details
        ),
        status_code=422,
    )


async def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "internal_error" if exc.status_code >= 500 else "bad_request")
    # Starlette's own details are the status phrase ("Not Found"): said the way our 404s say it.
    phrase = HTTPStatus(exc.status_code).phrase if exc.status_code in _PHRASES else None
    default = code.replace("_", " ")
    message = exc.detail if isinstance(exc.detail, str) and exc.detail != phrase else default
    return error_response(exc.status_code, code, message, dict(exc.headers) if exc.headers else None)


async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
    logger.exception("unexpected error", exc_info=exc)
    return error_response(500, "internal_error", "internal server error")


def install(app: FastAPI) -> None:
    """Answer every error of ``app`` as JSON (see the table above)."""
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(AgentMemError, _agentmem_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
