"""The inspector's pages: each route reads through the library and renders one template."""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from datetime import datetime
from http import HTTPStatus
from importlib import resources
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Form, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from jinja2 import Environment, PackageLoader

from ...errors import AgentMemError, InvalidInputError
from ...manager import MemoryManager
from ...records import UserSummary
from ..auth import INSPECTOR_COOKIE, INSPECTOR_PATH, Caller, Principal, UserId, agent_for, user_not_found
from ..context import context_report
from ..deps import Keys, Memory, ServerSettings
from ..errors import ApiError, not_found, status_of
from ..routes.users import whole_user
from ..scoping import session_for
from . import csrf, reads


class _PageRoute(APIRoute):
    """A route whose errors a browser sees as a small page (status kept): a request that accepts
    ``text/html`` gets the page, any other client the JSON every route answers (``errors.install``).
    Redirects (sign-in) stay as they are."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def answer(request: Request) -> Response:
            try:
                return await handler(request)
            except (ApiError, AgentMemError, RequestValidationError) as exc:
                if "text/html" not in request.headers.get("accept", ""):
                    raise
                status, message = _error_of(exc)
                if status < 400:
                    raise
                return _page(
                    request,
                    "error.html",
                    None,
                    status=status,
                    code=status,
                    message=message,
                    phrase=HTTPStatus(status).phrase,
                    headers=exc.headers if isinstance(exc, ApiError) else None,
                )

        return answer


def _error_of(exc: Exception) -> tuple[int, str]:
    """The status and message the JSON answer of ``exc`` would carry."""
    if isinstance(exc, ApiError):
        return exc.status, exc.message
    if isinstance(exc, AgentMemError):
        return status_of(exc)[0], str(exc)
    return 422, "invalid request: a parameter is missing or not of the right kind"


router = APIRouter(route_class=_PageRoute)
"""Every page; the key check is attached to it where app.py mounts it."""
public_router = APIRouter(route_class=_PageRoute)
"""The sign-in page, sign-out and the stylesheet: reachable before signing in."""

_env = Environment(loader=PackageLoader("agentmem.server.inspector", "templates"), autoescape=True)
"""Autoescape on: every value from memory is text in the page, never markup."""


def _when(value: datetime | None) -> str:
    return "" if value is None else value.strftime("%Y-%m-%d %H:%M:%S")


def _pretty(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def _segment(value: Any) -> str:
    """``value`` as one URL path segment: unlike Jinja's ``urlencode``, "/" is escaped too, so an id
    holding "/" or ".." cannot become another path."""
    return quote(str(value), safe="")


_env.filters["when"] = _when
_env.filters["pretty"] = _pretty
_env.filters["segment"] = _segment


def _base(request: Request) -> str:
    return str(request.scope.get("root_path", "")) + INSPECTOR_PATH


def _page(
    request: Request,
    template: str,
    who: Principal | None,
    *,
    status: int = 200,
    headers: dict[str, str] | None = None,
    **values: Any,
) -> HTMLResponse:
    settings = request.app.state.settings
    html = _env.get_template(template).render(
        base=_base(request),
        who=who,
        signed_in=bool(request.cookies.get(INSPECTOR_COOKIE)),
        writes=settings.inspector_writes,
        csrf_field=csrf.FIELD,
        csrf_token=csrf.token(request, who) if who is not None else "",
        **values,
    )
    response = HTMLResponse(html, status_code=status, headers=headers)
    # Pages show memory: never cached, never framed by another site.
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; style-src 'self'; script-src 'self'; frame-ancestors 'none'; form-action 'self'"
    )
    return response


# ---- sign-in (public) ----------------------------------------------------------------------


@public_router.get("/sign-in", response_class=HTMLResponse)
def sign_in_page(request: Request, keys: Keys) -> Response:
    return _page(request, "sign_in.html", None, open_mode=not keys.required(), error=None)


@public_router.post("/sign-in", response_class=HTMLResponse)
def sign_in(request: Request, keys: Keys, key: Annotated[str, Form(max_length=200)] = "") -> Response:
    """Check the key and keep it in an HttpOnly, SameSite=Strict cookie scoped to the inspector (only
    its hash is ever looked up server-side, as for a key sent in a header)."""
    found = keys.find(key.strip()) if key.strip() else None
    if found is None:
        return _page(
            request, "sign_in.html", None, status=401, open_mode=False, error="Unknown or revoked key."
        )
    response = RedirectResponse(_base(request) + "/", status_code=303)
    response.set_cookie(
        INSPECTOR_COOKIE,
        key.strip(),
        path=_base(request),
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


@public_router.post("/sign-out")
def sign_out(request: Request) -> Response:
    response = RedirectResponse(_base(request) + "/sign-in", status_code=303)
    response.delete_cookie(INSPECTOR_COOKIE, path=_base(request), httponly=True, samesite="strict")
    return response


STATIC = {"inspector.css": "text/css", "inspector.js": "text/javascript", "favicon.svg": "image/svg+xml"}
"""The inspector's own files, served by name (nothing else under static/ is reachable)."""


@public_router.get("/static/{name}")
def static(name: str) -> Response:
    if name not in STATIC:
        raise not_found(f"no file {name!r}")
    body = resources.files("agentmem.server.inspector").joinpath("static", name).read_bytes()
    return Response(body, media_type=STATIC[name], headers={"Cache-Control": "max-age=300"})


# ---- pages (keyed) ---------------------------------------------------------------------------


def _users(mem: MemoryManager, who: Principal) -> list[UserSummary]:
    """Every user for a key that reaches them all. A user-bound key sees only its own user, counted
    from that user's own rows (its live items and sessions, only its agent's when the key has one)
    rather than by listing everyone."""
    if who.user_id is None:
        return mem.list_users()
    acting = agent_for(who, None)
    scopes = reads.user_layers(mem, who.user_id, acting)
    live = [view.item for scope in scopes for layer in scope.layers for view in layer.live]
    sessions = mem.sessions.list(user_id=who.user_id, agent_id=acting)
    times = [item.updated_at for item in live] + [s.updated_at for s in sessions]
    return [UserSummary(who.user_id, len(live), len(sessions), max(times, default=None))]


@router.get("/", response_class=HTMLResponse)
def users_page(request: Request, mem: Memory, who: Caller) -> Response:
    return _page(request, "users.html", who, users=_users(mem, who))


@router.get("", response_class=HTMLResponse, include_in_schema=False)
def users_page_bare(request: Request, mem: Memory, who: Caller) -> Response:
    return users_page(request, mem, who)


def _known(mem: MemoryManager, who: Principal, user_id: str) -> None:
    """404 (as for a user the key cannot reach) when the user has nothing stored at all; a key bound to
    the user sees its own empty pages."""
    if who.user_id != user_id and not reads.user_exists(mem, user_id):
        raise user_not_found(user_id)


def _acting(who: Principal, agent_id: str | None) -> str | None:
    return agent_for(who, agent_id or None)


def _agents(mem: MemoryManager, who: Principal, user_id: str) -> list[str]:
    """The agents a page offers to act as: the key's own only, when it is bound to one (the others'
    names are not its to learn)."""
    return mem.agents(user_id) if who.agent_id is None else [who.agent_id]


def _whole_user(who: Principal) -> bool:
    """Whether the key may act on every agent's memory of a user (see ``whole_user``)."""
    try:
        whole_user(who)
    except ApiError:
        return False
    return True


@router.get("/users/{user_id}", response_class=HTMLResponse)
def layers_page(
    request: Request,
    user_id: UserId,
    mem: Memory,
    who: Caller,
    agent_id: str | None = None,
    closed: bool = False,
) -> Response:
    _known(mem, who, user_id)
    acting = _acting(who, agent_id)
    scopes = reads.user_layers(mem, user_id, acting)
    return _page(
        request,
        "layers.html",
        who,
        user_id=user_id,
        section="layers",
        scopes=scopes,
        show_closed=closed,
        agent_id=acting,
        agents=_agents(mem, who, user_id),
        closed_total=sum(scope.closed_count for scope in scopes),
    )


def _budget(text: str | None) -> int | None:
    if text is None or not text.strip():
        return None
    try:
        return int(text)
    except ValueError:
        raise InvalidInputError(f"token budget must be a whole number, got {text!r}") from None


@router.get("/users/{user_id}/context", response_class=HTMLResponse)
def context_page(
    request: Request,
    user_id: UserId,
    mem: Memory,
    who: Caller,
    query: str = "",
    token_budget: str = "",
    agent_id: str = "",
    session_id: str = "",
) -> Response:
    _known(mem, who, user_id)
    acting = _acting(who, agent_id)
    # Another agent's session is refused like a missing one, before anything of it is read.
    session = session_for(mem, who, user_id, acting, session_id.strip() or None)
    preview, error = None, None
    try:
        # The very report GET /v1/users/{user_id}/context answers from: the page and the API agree.
        preview = context_report(
            mem,
            user_id=user_id,
            query=query.strip() or None,
            token_budget=_budget(token_budget),
            agent_id=acting,
            session_id=session,
        )
    except AgentMemError as exc:
        error = str(exc)
    return _page(
        request,
        "context.html",
        who,
        user_id=user_id,
        section="context",
        preview=preview,
        error=error,
        form={
            "query": query,
            "token_budget": token_budget,
            "agent_id": acting or "",
            "session_id": session_id,
        },
        agents=_agents(mem, who, user_id),
        sessions=mem.sessions.list(user_id=user_id, agent_id=acting),
    )


@router.get("/users/{user_id}/search", response_class=HTMLResponse)
def search_page(
    request: Request,
    user_id: UserId,
    mem: Memory,
    who: Caller,
    query: str = "",
    agent_id: str = "",
    limit: int = 20,
) -> Response:
    _known(mem, who, user_id)
    acting = _acting(who, agent_id)
    hits, error = [], None
    if query.strip():
        try:
            hits = mem.search(query, user_id=user_id, agent_id=acting, limit=max(1, min(limit, 100)))
        except AgentMemError as exc:
            error = str(exc)
    return _page(
        request,
        "search.html",
        who,
        user_id=user_id,
        section="search",
        hits=hits,
        error=error,
        query=query,
        agent_id=acting or "",
        agents=_agents(mem, who, user_id),
    )


@router.get("/users/{user_id}/items/{item_id}", response_class=HTMLResponse)
def item_page(request: Request, user_id: UserId, item_id: str, mem: Memory, who: Caller) -> Response:
    items = {item.id: item for item in reads.user_items(mem, user_id)}
    item = items.get(item_id)
    if item is None or (who.agent_id is not None and item.agent_id not in (None, who.agent_id)):
        raise not_found(f"no item {item_id!r}")
    events = mem.history(
        user_id=user_id, agent_id=item.agent_id, session_id=item.session_scope, item_id=item_id
    )
    successor = items.get(item.superseded_by) if item.superseded_by else None
    predecessors = [other for other in items.values() if other.superseded_by == item_id]
    return _page(
        request,
        "item.html",
        who,
        user_id=user_id,
        section="layers",
        item=item,
        events=events,
        successor=successor,
        predecessors=predecessors,
    )


@router.get("/users/{user_id}/sessions", response_class=HTMLResponse)
def sessions_page(request: Request, user_id: UserId, mem: Memory, who: Caller) -> Response:
    _known(mem, who, user_id)
    listed = mem.sessions.list(user_id=user_id, agent_id=_acting(who, None))
    return _page(request, "sessions.html", who, user_id=user_id, section="sessions", sessions=listed)


@router.get("/users/{user_id}/sessions/{session_id}", response_class=HTMLResponse)
def session_page(request: Request, user_id: UserId, session_id: str, mem: Memory, who: Caller) -> Response:
    acting = _acting(who, None)
    info = next(
        (s for s in mem.sessions.list(user_id=user_id, agent_id=acting) if s.session_id == session_id), None
    )
    if info is None:
        raise not_found(f"no session {session_id!r}")
    messages = mem.sessions.messages(session_id, user_id=user_id)
    return _page(
        request, "session.html", who, user_id=user_id, section="sessions", info=info, messages=messages
    )


@router.get("/users/{user_id}/pending", response_class=HTMLResponse)
def pending_page(
    request: Request,
    user_id: UserId,
    mem: Memory,
    who: Caller,
    retried: int | None = None,
    still: int | None = None,
) -> Response:
    _known(mem, who, user_id)
    return _page(
        request,
        "pending.html",
        who,
        user_id=user_id,
        section="pending",
        pending=reads.pending(mem, user_id, _acting(who, None)),
        can_retry=_whole_user(who),
        retried=retried,
        still=still,
    )


@router.post("/users/{user_id}/pending/retry")
def retry_pending(
    request: Request,
    user_id: UserId,
    mem: Memory,
    who: Caller,
    settings: ServerSettings,
    token: Annotated[str | None, Form(alias=csrf.FIELD, max_length=200)] = None,
) -> Response:
    """Re-run the user's failed learns: only when the server allows inspector writes, and only with
    this browser's CSRF token. A retry runs every agent's learns of the user, so a key bound to one
    agent gets the 404 ``POST /v1/users/{user_id}/pending/retry`` gives it."""
    whole_user(who)
    if not settings.inspector_writes:
        raise ApiError(
            403, "read_only", "the inspector is read-only; start the server with --inspector-writes"
        )
    if not csrf.valid(request, who, token):
        raise ApiError(403, "csrf_failed", "missing or wrong CSRF token; reload the page and try again")
    report = mem.retry_pending(user_id=user_id)
    where = f"{_base(request)}/users/{quote(user_id, safe='')}/pending?" + urlencode(
        {"retried": report.retried - report.still_pending, "still": report.still_pending}
    )
    return RedirectResponse(where, status_code=303)
