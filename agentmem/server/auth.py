"""Who is asking: API keys read from the request, and what each key may reach.

A key is sent as ``Authorization: Bearer <key>`` or ``X-API-Key: <key>`` (both at once must be the
same key). A missing, malformed, unknown or revoked key is 401 ``unauthorized`` with
``WWW-Authenticate: Bearer``.

What a key reaches:

- an **admin** key: every user, every agent, and the admin routes (the user list, keys);
- a **user-bound** key (``user_id``): only that user. Another user's paths and ids answer the very
  404 a missing user gets, so the key cannot learn whether another user exists;
- an **agent-bound** key (``agent_id``): acts only as that agent (:func:`agent_for`); without a
  ``user_id`` it serves every user (an agent's backend), with one, only that user;
- admin routes answer a non-admin key with 404, like an unknown route, rather than 403.

**Open mode**: until the first key is created in the database, a request without a key is served as
admin, for local development; ``agentmem serve`` then refuses to bind beyond loopback. Once a key
exists (even if later revoked), every ``/v1`` and ``/inspector`` request needs a valid one. In open
mode a request for another host name (DNS rebinding) or a state-changing request from another site's
page is refused (``server.hosts``).

**The inspector** (``/inspector``) is used from a browser: its sign-in page puts the key in an HttpOnly,
``SameSite=Strict`` cookie (``INSPECTOR_COOKIE``), accepted on ``/inspector`` paths only (never by
``/v1``, so a page elsewhere cannot make a browser call the API with it). The server keeps nothing
but the key's hash, as for a header. Without a usable key, an inspector request is sent to the
sign-in page (303) rather than answered 401.

Routes use the ``Annotated`` aliases: ``Caller`` (any valid key), ``Admin`` (admin keys only), and
``UserId`` for a route whose path holds ``{user_id}`` (checked against the key before the route runs).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Path, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from fastapi.security.utils import get_authorization_scheme_param

from .deps import Keys, get_keys
from .errors import ApiError, not_found
from .hosts import check_open_request

_bearer = HTTPBearer(auto_error=False, description="An agentmem API key: `Authorization: Bearer am_...`")
_header = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="An agentmem API key: `X-API-Key: am_...`"
)


@dataclass(frozen=True)
class Principal:
    """The caller a request's key stands for."""

    key_id: str | None
    """The key's id; ``None`` in open mode (no key was ever created)."""
    user_id: str | None
    """The only user the key reaches; ``None``: every user."""
    agent_id: str | None
    """The only agent the key acts as; ``None``: any."""
    admin: bool
    """Reaches every user and the admin routes."""


INSPECTOR_PATH = "/inspector"
INSPECTOR_COOKIE = "agentmem_inspector_key"
"""The cookie the inspector's sign-in sets: the key itself, HttpOnly and SameSite=Strict, path /inspector."""

OPEN = Principal(key_id=None, user_id=None, agent_id=None, admin=True)
"""The caller of every keyless request while no key exists (open mode)."""


def unauthorized(message: str) -> ApiError:
    return ApiError(401, "unauthorized", message, headers={"WWW-Authenticate": "Bearer"})


def user_not_found(user_id: str) -> ApiError:
    """The 404 for a user the caller cannot see: routes answer a missing user with this same error."""
    return not_found(f"no user {user_id!r}")


def _inspector(request: Request) -> bool:
    path = request.url.path[len(request.scope.get("root_path", "")) :]
    return path == INSPECTOR_PATH or path.startswith(INSPECTOR_PATH + "/")


def _refused(request: Request, message: str) -> ApiError:
    """401, or for the inspector's pages a redirect to its sign-in page."""
    if _inspector(request):
        where = request.scope.get("root_path", "") + INSPECTOR_PATH + "/sign-in"
        return ApiError(303, "sign_in_required", message, headers={"Location": where})
    return unauthorized(message)


def principal(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    api_key: Annotated[str | None, Depends(_header)],
    keys: Keys,
) -> Principal:
    """The caller of this request (a FastAPI dependency; sync, so its query runs in the threadpool)."""
    if bearer is None and "authorization" in request.headers:
        raise unauthorized("the Authorization header must be 'Bearer <key>'")
    given = {c for c in (bearer.credentials if bearer else None, api_key) if c is not None}
    if len(given) > 1:
        raise unauthorized("Authorization and X-API-Key name different keys; send one")
    if not given and _inspector(request) and request.cookies.get(INSPECTOR_COOKIE):
        given = {request.cookies[INSPECTOR_COOKIE]}
    if not given:
        if keys.required():
            raise _refused(
                request, "an API key is required: 'Authorization: Bearer <key>' or 'X-API-Key: <key>'"
            )
        check_open_request(request, request.app.state.allowed_hosts)
        return OPEN
    key = keys.find(given.pop())
    if key is None:
        raise _refused(request, "unknown or revoked API key")
    return Principal(key_id=key.id, user_id=key.user_id, agent_id=key.agent_id, admin=key.admin)


Caller = Annotated[Principal, Depends(principal)]


def caller_of(request: Request) -> Principal:
    """The caller of a request served outside FastAPI's dependencies (the ``/mcp`` mount): the key read
    from the same headers with the same rules and errors as :func:`principal`. Sync: it reads the
    database, so call it from a worker thread."""
    scheme, token = get_authorization_scheme_param(request.headers.get("authorization"))
    bearer = (
        HTTPAuthorizationCredentials(scheme=scheme, credentials=token)
        if scheme.lower() == "bearer" and token
        else None
    )
    return principal(request, bearer, request.headers.get("x-api-key") or None, get_keys(request))


def user_access(who: Principal, user_id: str) -> str:
    """``user_id`` when ``who`` may reach that user; else the 404 a missing user gets."""
    if who.admin or who.user_id is None or who.user_id == user_id:
        return user_id
    raise user_not_found(user_id)


def path_user(who: Caller, user_id: Annotated[str, Path(description="The user whose memory this is")]) -> str:
    """The route's ``{user_id}``, checked against the caller's key (a dependency)."""
    return user_access(who, user_id)


UserId = Annotated[str, Depends(path_user)]


def agent_for(who: Principal, agent_id: str | None) -> str | None:
    """The agent a request acts as: ``agent_id`` as given, or the key's own agent when none is given.
    An agent-bound key naming another agent gets 404, as for a user it cannot reach."""
    if who.agent_id is None or agent_id is None or agent_id == who.agent_id:
        return agent_id if agent_id is not None else who.agent_id
    raise not_found(f"no agent {agent_id!r}")


def admin_only(who: Caller) -> Principal:
    """The caller, when admin; else 404 (an admin route is not revealed to other keys)."""
    if not who.admin:
        raise not_found("not found")
    return who


Admin = Annotated[Principal, Depends(admin_only)]
