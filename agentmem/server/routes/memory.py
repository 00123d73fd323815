"""Routes of one user's memory, under ``/v1/users/{user_id}``: the typed snapshot, the compiled context
(``query``, ``token_budget``, ``agent_id``), ``learn`` from messages (synchronous, or 202 and in the
background), search, patching profile and policies, knowledge and feedback items (list with filters,
add, get, update in place, delete), and the user's change history.

Every route goes through the public :class:`~agentmem.MemoryManager` API, which checks ids, sizes and
secrets itself; its errors become the JSON errors of ``server.errors``. Item ids are global, so an item
is only ever read or changed through the path's user (and the caller's agent): another user's id is
answered with the very 404 a missing one gets. Routes that only call the sync API are plain ``def``
(FastAPI runs them in its threadpool, keeping the event loop free); ``learn`` awaits ``alearn``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, BackgroundTasks, Query, Response
from pydantic import BaseModel, ConfigDict, Field, JsonValue, StrictBool, TypeAdapter

from ...errors import AgentMemError, ConfigurationError, InvalidInputError
from ...layers import CollectionLayer, DocumentLayer
from ...manager import MemoryManager
from ...records import Change, LearnResult, MemoryEvent, MemoryItem, SearchHit
from ...scope import MAX_ID_LENGTH, Scope, check_id
from ..auth import Caller, UserId, agent_for
from ..context import context_report
from ..deps import Memory
from ..errors import ApiError, not_found
from ..scoping import ID_PATTERN, session_for

logger = logging.getLogger(__name__)


class ErrorDetail(BaseModel):
    code: str = Field(
        description="Stable snake_case code to branch on, e.g. `not_found`.", examples=["not_found"]
    )
    message: str = Field(description="For people.")


class ErrorOut(BaseModel):
    """Every error answer of the server (``agentmem.server.errors``); a validation error (422
    ``invalid_request``) also lists ``details``."""

    error: ErrorDetail


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {status: {"model": ErrorOut, "description": _STATUS[status]} for status in statuses}


_STATUS = {
    400: "A setting the request names does not exist (`bad_request`).",
    401: "A missing, unknown or revoked API key (`unauthorized`).",
    404: "No such user, agent or item for this key (another user's ids answer the same).",
    409: "The change would clash with stored memory (`conflict`), or the user was erased meanwhile.",
    413: "The body is over the server's limit (`body_too_large`).",
    422: "Invalid input: `invalid_request` (shape), `invalid_input`, `invalid_scope`, `secret_rejected`.",
    429: "The model provider's rate limit (`rate_limited`).",
    502: "The model failed for good (`model_error`); the learn is kept pending (`pending_id`).",
    503: "The database does not answer (`store_unavailable`).",
}
# Documented on every memory route, so clients (and API fuzzers) know each answer's shape.
router = APIRouter(responses=_errors(400, 401, 404, 409, 413, 422, 503))

MAX_MESSAGES = 500
"""Messages one learn request may carry (the library reads only the user's recent turns anyway)."""
MAX_TEXT = 100_000
MAX_LIST = 1000

AgentParam = Annotated[
    str | None,
    Query(
        max_length=MAX_ID_LENGTH,
        pattern=ID_PATTERN,
        description="Act as this agent: its private memory of the user too. Default: the key's own agent "
        "(an agent-bound key cannot name another).",
    ),
]
SessionParam = Annotated[
    str | None,
    Query(
        max_length=MAX_ID_LENGTH,
        pattern=ID_PATTERN,
        description="Also this session's own memory (default: user-wide memory only).",
    ),
]


# ---- response models ----------------------------------------------------------------------------


class ItemOut(BaseModel):
    """One stored memory item: a profile field, a policy, a fact, a feedback entry."""

    id: str = Field(description="The item's id, global and stable: updates keep it.")
    layer: str
    key: str = Field(description="Where the layer keeps it: a field name, `rules:<topic>`, or a text key.")
    text: str = Field(description="The item as one line of text.")
    value: JsonValue = Field(description="The item's value: a field's value, or an entry's fields.")
    agent_id: str | None = Field(description="The agent whose private memory holds it; null: shared.")
    session_scope: str | None = Field(description="The session it belongs to; null: user-wide.")
    session_id: str | None = Field(description="The session it was learned in, whatever its scope.")
    source: str = Field(description="extracted, agentic, manual or imported.")
    confidence: float
    count: int = Field(description="How many times it was seen (feedback counts occurrences).")
    explicit: bool = Field(description="Said by the user, rather than inferred.")
    created_at: datetime
    updated_at: datetime
    expires_at: datetime | None
    valid_to: datetime | None = Field(description="When it was closed; null while live.")
    superseded_by: str | None = Field(description="The item that replaced it, for a closed fact.")

    @classmethod
    def of(cls, item: MemoryItem) -> ItemOut:
        return cls(
            id=item.id, layer=item.layer, key=item.key, text=item.text, value=_json(item.value),
            agent_id=item.agent_id, session_scope=item.session_scope, session_id=item.session_id,
            source=item.source, confidence=item.confidence, count=item.count, explicit=item.explicit,
            created_at=item.created_at, updated_at=item.updated_at, expires_at=item.expires_at,
            valid_to=item.valid_to, superseded_by=item.superseded_by,
        )  # fmt: skip


class ItemList(BaseModel):
    items: list[ItemOut]


class MemorySnapshot(BaseModel):
    """A typed snapshot of the scope's live memory (``MemoryManager.get``)."""

    user_id: str
    agent_id: str | None
    session_id: str | None
    profile: dict[str, JsonValue] = Field(description="The profile's fields (null where unknown).")
    policies: dict[str, JsonValue] = Field(description="The policies' fields; `rules` is a list.")
    knowledge: list[ItemOut]
    feedback: list[ItemOut]
    layers: dict[str, JsonValue] = Field(
        description="Every configured layer as the library types it (layers of your own included): a "
        "document layer's fields, or a collection layer's items."
    )


class ChangeOut(BaseModel):
    """What one write did to one item."""

    op: Literal["add", "update", "supersede", "expire", "delete"]
    layer: str
    item_id: str
    key: str
    old: JsonValue
    new: JsonValue

    @classmethod
    def of(cls, change: Change) -> ChangeOut:
        return cls(
            op=change.op, layer=change.layer, item_id=change.item_id, key=change.key,
            old=_json(change.old), new=_json(change.new),
        )  # fmt: skip


class EventOut(BaseModel):
    """One change to one item in the append-only history, with the old and new values."""

    id: int
    item_id: str
    layer: str
    key: str
    op: Literal["add", "update", "supersede", "expire", "delete"]
    old: JsonValue
    new: JsonValue
    reason: str | None
    source: str
    agent_id: str | None
    session_id: str | None
    session_scope: str | None
    created_at: datetime

    @classmethod
    def of(cls, event: MemoryEvent) -> EventOut:
        return cls(
            id=event.id, item_id=event.item_id, layer=event.layer, key=event.key, op=event.op,
            old=_json(event.old), new=_json(event.new), reason=event.reason, source=event.source,
            agent_id=event.agent_id, session_id=event.session_id, session_scope=event.session_scope,
            created_at=event.created_at,
        )  # fmt: skip


class EventList(BaseModel):
    events: list[EventOut] = Field(description="Oldest first.")


class LayerPart(BaseModel):
    """One element of the compiled context."""

    layer: str
    memory: Literal["user", "agent"] = Field(description="The user's memory, or the agent's own memory.")
    tag: str = Field(
        description="The XML element the layer is rendered in; empty when every line was dropped."
    )
    tokens: int = Field(description="Tokens of the element, tags included.")
    lines: int = Field(description="Lines (items) included.")
    dropped: int | None = Field(
        description="Live lines of the layer the XML does not hold (the budget left them out); null unless "
        "`dropped=true`."
    )


class ContextOut(BaseModel):
    """The compiled context, exactly as ``MemoryManager.compile`` gives it, and what it is made of."""

    xml: str = Field(description="The escaped XML for a system message; empty when there is no memory.")
    tokens: int = Field(description="Tokens of `xml`, counted by the memory's token counter.")
    token_budget: int | None
    layers: list[LayerPart] = Field(description="Each layer with memory, in the order it is rendered.")


class UsageOut(BaseModel):
    model_calls: int
    prompt_tokens: int
    completion_tokens: int
    cost: float | None = Field(description="USD when the model's price is known.")
    skipped: str | None = Field(description="Why no model call was needed, if none was.")
    dropped: dict[str, int] = Field(description="Extracted items not stored, by reason.")
    extractor: str


class LearnOut(BaseModel):
    """What one learn changed, per layer, and what it cost."""

    changes: dict[str, list[ChangeOut]]
    agent_changes: list[ChangeOut] = Field(description="What it also changed in the agent's own memory.")
    usage: UsageOut

    @classmethod
    def of(cls, result: LearnResult) -> LearnOut:
        u = result.usage
        return cls(
            changes={layer: [ChangeOut.of(c) for c in cs] for layer, cs in result.changes.items()},
            agent_changes=[ChangeOut.of(c) for c in result.agent_changes],
            usage=UsageOut(
                model_calls=u.model_calls, prompt_tokens=u.prompt_tokens,
                completion_tokens=u.completion_tokens, cost=u.cost, skipped=u.skipped,
                dropped=dict(u.dropped), extractor=u.extractor,
            ),
        )  # fmt: skip


class LearnAccepted(BaseModel):
    """A learn accepted to run in the background: a failure ends in the user's pending learns."""

    status: Literal["accepted"] = "accepted"


class SearchHitOut(BaseModel):
    item: ItemOut
    score: float = Field(description="Relevance to the query; higher is better.")

    @classmethod
    def of(cls, hit: SearchHit) -> SearchHitOut:
        return cls(item=ItemOut.of(hit.item), score=hit.score)


class SearchOut(BaseModel):
    hits: list[SearchHitOut] = Field(description="Best first.")


class DocumentOut(BaseModel):
    """A document layer (profile or policies) after a patch, and what the patch changed."""

    fields: dict[str, JsonValue]
    changes: list[ChangeOut]


# ---- request models -----------------------------------------------------------------------------


class MessageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Literal["user", "assistant", "system", "tool"]
    content: str = Field(max_length=MAX_TEXT)


class LearnIn(BaseModel):
    """Messages to learn from (OpenAI-style); the user's turns are read."""

    model_config = ConfigDict(extra="forbid")

    messages: list[MessageIn] = Field(min_length=1, max_length=MAX_MESSAGES)
    agent_id: str | None = Field(
        default=None, max_length=MAX_ID_LENGTH, pattern=ID_PATTERN, description="Default: the key's agent."
    )
    session_id: str | None = Field(default=None, max_length=MAX_ID_LENGTH, pattern=ID_PATTERN)
    background: StrictBool = Field(
        default=False, description="Answer 202 at once and learn in the background; a failure is kept "
        "as a pending learn (GET /v1/users/{user_id}/pending).",
    )  # fmt: skip


class ItemIn(BaseModel):
    """A knowledge or feedback entry (or one of a collection layer of your own) to add."""

    model_config = ConfigDict(extra="forbid")

    layer: str = Field(max_length=100, examples=["knowledge"], description="A collection layer.")
    text: str = Field(min_length=1, max_length=MAX_TEXT, examples=["Builds a churn model for Acme"])
    topics: list[str] | None = Field(
        default=None, max_length=MAX_LIST, description="Knowledge's topics (shorthand for fields.topics)."
    )
    fields: dict[str, JsonValue] = Field(
        default_factory=dict,
        description="The entry's other fields, as the layer's schema has them, e.g. feedback's "
        '`{"sentiment": "positive", "target": "pandas"}`.',
    )
    agent_id: str | None = Field(
        default=None, max_length=MAX_ID_LENGTH, pattern=ID_PATTERN, description="Default: the key's agent."
    )
    session_id: str | None = Field(default=None, max_length=MAX_ID_LENGTH, pattern=ID_PATTERN)
    session_scoped: StrictBool | None = Field(
        default=None, description="Keep it in `session_id` only (default: as the layer is configured)."
    )
    replaces: str | None = Field(
        default=None, max_length=MAX_ID_LENGTH, pattern=ID_PATTERN, description="A live item it contradicts."
    )
    expires_at: datetime | None = Field(default=None, description="When it leaves the memory (with zone).")


class ItemPatch(BaseModel):
    """New text and/or fields for an item, changed in place: it keeps its id, and the old value stays in
    its history."""

    model_config = ConfigDict(extra="forbid")

    text: str | None = Field(default=None, min_length=1, max_length=MAX_TEXT)
    fields: dict[str, JsonValue] = Field(default_factory=dict, description='E.g. `{"topics": ["home"]}`.')


FieldsIn = Annotated[
    dict[str, JsonValue],
    Field(
        min_length=1,
        max_length=100,
        description="Fields to set; null removes a field (its old value stays in the history).",
    ),
]


# ---- helpers ------------------------------------------------------------------------------------

_ANY = TypeAdapter(Any)


def _json(value: Any) -> JsonValue:
    """A stored value or typed schema instance (dataclass, pydantic model ...) as JSON data."""
    dumped: JsonValue = _ANY.dump_python(value, mode="json")
    return dumped


def _fields(document: Any) -> dict[str, JsonValue]:
    dumped = _json(document)
    return dumped if isinstance(dumped, dict) else {}


def _find_item(
    memory: MemoryManager, user_id: str, agent_id: str | None, session_id: str | None, item_id: str
) -> MemoryItem:
    """The live item ``item_id`` as the scope sees it, or the 404 a missing item gets (another user's
    or another agent's item included: the read is of this scope only). One indexed read
    (``MemoryManager.item``): ``MemoryManager.get`` would read the whole memory."""
    item = memory.item(_item_id(item_id), user_id=user_id, agent_id=agent_id, session_id=session_id)
    if item is None:
        raise _no_item(item_id)
    return item


def _item_id(item_id: str) -> str:
    """A path's item id as the library takes it, else the 404 a missing item gets: no stored id can be
    malformed (too long, control characters such as NUL, which PostgreSQL would refuse with a 5xx)."""
    try:
        checked = check_id(item_id, "item_id", required=True)
    except InvalidInputError:
        raise _no_item(item_id[:MAX_ID_LENGTH]) from None
    assert checked is not None
    return checked


def _no_item(item_id: str) -> ApiError:
    return not_found(f"no memory item {item_id!r}")


def _collection(memory: MemoryManager, name: str) -> CollectionLayer:
    layer = memory.layers.get(name)
    if not isinstance(layer, CollectionLayer):
        names = [n for n, layer in memory.layers.items() if isinstance(layer, CollectionLayer)]
        raise InvalidInputError(
            f"layer must be one of {', '.join(names)} (items are kept there); got {name!r}"
        )
    return layer


def _as_input_error(exc: ConfigurationError) -> InvalidInputError:
    """A field the layer's schema does not have is the request's fault here (422), not the setup's."""
    return InvalidInputError(str(exc))


_ADD_KEYWORDS = frozenset(
    {"text", "user_id", "agent_id", "session_id", "session_scoped", "replaces", "expires_at"}
)
"""Names the library's write calls take as keywords: never a field of an entry here (``text`` has its own
member; ids and the rest come from the path, the query or the body's own members)."""


def _check_field_names(fields: Mapping[str, Any]) -> None:
    taken = sorted(_ADD_KEYWORDS & set(fields))
    if taken:
        raise InvalidInputError(f"fields must not hold {', '.join(taken)}: give those as their own members")


def _split(values: list[str] | None) -> list[str] | None:
    """A repeated or comma-separated query parameter (``layers=a,b`` or ``layers=a&layers=b``)."""
    if values is None:
        return None
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


# ---- the snapshot and the context ---------------------------------------------------------------


@router.get("/users/{user_id}/memory", summary="A typed snapshot of the user's live memory")
def snapshot(
    user_id: UserId, memory: Memory, who: Caller, agent_id: AgentParam = None, session_id: SessionParam = None
) -> MemorySnapshot:
    """The user's shared memory; with an agent, plus that agent's private memory (which wins where both
    hold a field); with a session, plus that session's own memory."""
    session_id = session_for(memory, who, user_id, agent_id, session_id)
    acting = agent_for(who, agent_id)
    state = memory.get(user_id=user_id, agent_id=acting, session_id=session_id)
    layers: dict[str, JsonValue] = {}
    for name, part in state.layers.items():
        if isinstance(memory.layers[name], DocumentLayer):
            layers[name] = _fields(part)
        else:
            layers[name] = [ItemOut.of(item).model_dump(mode="json") for item in part]
    return MemorySnapshot(
        user_id=state.user_id,
        agent_id=state.agent_id,
        session_id=state.session_id,
        profile=_fields(state.profile),
        policies=_fields(state.policies),
        knowledge=[ItemOut.of(item) for item in state.knowledge],
        feedback=[ItemOut.of(item) for item in state.feedback],
        layers=layers,
    )


@router.get("/users/{user_id}/context", summary="The compiled memory context (XML) for a system message")
def context(
    user_id: UserId,
    memory: Memory,
    who: Caller,
    query: Annotated[
        str | None, Query(max_length=4000, description="Rank knowledge and feedback by relevance to this.")
    ] = None,
    token_budget: Annotated[
        int | None, Query(ge=0, le=1_000_000, description="The XML never exceeds this many tokens.")
    ] = None,
    agent_id: AgentParam = None,
    session_id: SessionParam = None,
    dropped: Annotated[
        bool,
        Query(description="Also give the lines the budget left out."),
    ] = False,
    topics: Annotated[
        list[str] | None,
        Query(
            description="Of knowledge, only the items listing one of these topics, ignoring case "
            "(repeated or comma-separated)."
        ),
    ] = None,
) -> ContextOut:
    """Exactly what ``MemoryManager.compile`` returns for these parameters, with its tokens per layer
    and the lines the budget left out (``agentmem.server.context`` defines each number; the inspector's
    context preview shows the same report)."""
    session_id = session_for(memory, who, user_id, agent_id, session_id)
    report = context_report(
        memory,
        user_id=user_id,
        agent_id=agent_for(who, agent_id),
        session_id=session_id,
        query=query,
        token_budget=token_budget,
        candidates=dropped,  # finding the dropped lines reads the whole scope: only when asked
        topics=_split(topics),
    )
    return ContextOut(
        xml=report.xml,
        tokens=report.tokens,
        token_budget=report.token_budget,
        layers=[
            LayerPart(
                layer=e.layer,
                memory=e.memory,
                tag=e.tag,
                tokens=e.tokens,
                lines=e.lines,
                dropped=e.dropped if dropped else None,
            )
            for e in report.elements
        ],
    )


# ---- learning -----------------------------------------------------------------------------------


async def _learn_later(
    memory: MemoryManager,
    messages: list[dict[str, str]],
    user_id: str,
    agent_id: str | None,
    session_id: str | None,
) -> None:
    """A background learn. The library keeps a failed extraction as a pending learn itself; here the
    failure is only logged, as nobody waits for the answer."""
    try:
        await memory.alearn(messages, user_id=user_id, agent_id=agent_id, session_id=session_id)
    except AgentMemError as exc:
        logger.warning("background learn for user %r failed: %s", user_id, exc)


@router.post(
    "/users/{user_id}/learn",
    summary="Learn from messages (synchronously, or 202 and in the background)",
    responses={
        202: {"model": LearnAccepted, "description": "Accepted; learned in the background."},
        **_errors(429, 502),
    },
)
async def learn(
    user_id: UserId, body: LearnIn, memory: Memory, who: Caller, tasks: BackgroundTasks, response: Response
) -> LearnOut | LearnAccepted:
    """At most one model call, merged and applied in one transaction. A model that fails for good
    answers 502 ``model_error`` with the ``pending_id`` of the learn kept for a retry."""
    acting = agent_for(who, body.agent_id)
    session_id = session_for(memory, who, user_id, acting, body.session_id)
    messages = [message.model_dump() for message in body.messages]
    if body.background:
        Scope.addressed(user_id, acting, session_id)  # bad ids: 422 now, not a silent failure later
        tasks.add_task(_learn_later, memory, messages, user_id, acting, session_id)
        response.status_code = 202
        return LearnAccepted()
    result = await memory.alearn(messages, user_id=user_id, agent_id=acting, session_id=session_id)
    return LearnOut.of(result)


# ---- search -------------------------------------------------------------------------------------


@router.get("/users/{user_id}/search", summary="Search the user's live memory")
def search(
    user_id: UserId,
    memory: Memory,
    who: Caller,
    query: Annotated[str, Query(min_length=1, max_length=4000)],
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
    layers: Annotated[
        list[str] | None, Query(description="Only these layers (repeated or comma-separated).")
    ] = None,
    agent_id: AgentParam = None,
    session_id: SessionParam = None,
    topics: Annotated[
        list[str] | None,
        Query(
            description="Only items listing one of these topics, ignoring case (repeated or comma-separated)."
        ),
    ] = None,
) -> SearchOut:
    session_id = session_for(memory, who, user_id, agent_id, session_id)
    names = _split(layers)
    if names is not None:
        unknown = sorted(set(names) - set(memory.layers))
        if unknown:
            raise InvalidInputError(
                f"unknown layer(s) {', '.join(unknown)}; layers are {', '.join(memory.layers)}"
            )
    hits = memory.search(
        query,
        user_id=user_id,
        agent_id=agent_for(who, agent_id),
        session_id=session_id,
        layers=names or None,
        limit=limit,
        topics=_split(topics),
    )
    return SearchOut(hits=[SearchHitOut.of(hit) for hit in hits])


# ---- profile and policies -----------------------------------------------------------------------


def _patch_document(
    memory: MemoryManager,
    name: str,
    user_id: str,
    agent_id: str | None,
    session_id: str | None,
    body: dict[str, JsonValue],
) -> DocumentOut:
    layer = memory.layers[name]
    handle = memory.layer(name)
    try:
        layer.schema.check_known(list(body), name)  # every name first: nothing is written on a bad one
    except ConfigurationError as exc:
        raise _as_input_error(exc) from None
    values = {field: value for field, value in body.items() if value is not None}
    removed = [field for field, value in body.items() if value is None]
    changes = (
        handle.update(user_id=user_id, agent_id=agent_id, session_id=session_id, **values) if values else []
    )
    if removed:
        changes += handle.remove(*removed, user_id=user_id, agent_id=agent_id, session_id=session_id)
    document = handle.get(user_id=user_id, agent_id=agent_id, session_id=session_id)
    return DocumentOut(fields=_fields(document), changes=[ChangeOut.of(c) for c in changes])


@router.patch("/users/{user_id}/profile", summary="Set (or, with null, remove) profile fields")
def patch_profile(
    user_id: UserId,
    body: FieldsIn,
    memory: Memory,
    who: Caller,
    agent_id: AgentParam = None,
    session_id: SessionParam = None,
) -> DocumentOut:
    """Values are checked against the profile's schema; list fields gain the new elements."""
    session_id = session_for(memory, who, user_id, agent_id, session_id)
    return _patch_document(memory, "profile", user_id, agent_for(who, agent_id), session_id, body)


@router.patch("/users/{user_id}/policies", summary="Set (or, with null, remove) policies")
def patch_policies(
    user_id: UserId,
    body: FieldsIn,
    memory: Memory,
    who: Caller,
    agent_id: AgentParam = None,
    session_id: SessionParam = None,
) -> DocumentOut:
    """``{"rules": ["never use emojis"]}`` adds a rule; ``{"response_style": null}`` removes a field."""
    session_id = session_for(memory, who, user_id, agent_id, session_id)
    return _patch_document(memory, "policies", user_id, agent_for(who, agent_id), session_id, body)


# ---- items --------------------------------------------------------------------------------------


@router.get("/users/{user_id}/items", summary="List knowledge and feedback items (filter by layer, topics)")
def list_items(
    user_id: UserId,
    memory: Memory,
    who: Caller,
    layer: Annotated[
        str | None, Query(max_length=100, description="One collection layer; default all.")
    ] = None,
    topics: Annotated[
        list[str] | None, Query(description="Items with any of these topics (repeated or comma-separated).")
    ] = None,
    agent_id: AgentParam = None,
    session_id: SessionParam = None,
) -> ItemList:
    """Live items, oldest first, of the collection layers (knowledge, feedback and your own)."""
    session_id = session_for(memory, who, user_id, agent_id, session_id)
    names = (
        [_collection(memory, layer).name]
        if layer is not None
        else [n for n, kind in memory.layers.items() if isinstance(kind, CollectionLayer)]
    )
    wanted = {topic.casefold() for topic in _split(topics) or []}
    state = memory.get(user_id=user_id, agent_id=agent_for(who, agent_id), session_id=session_id)
    items = [item for name in names for item in state.layers[name]]
    if wanted:
        items = [item for item in items if wanted & {str(t).casefold() for t in _topics(item)}]
    return ItemList(items=[ItemOut.of(item) for item in items])


def _topics(item: MemoryItem) -> list[Any]:
    topics = item.value.get("topics") if isinstance(item.value, Mapping) else None
    return list(topics) if isinstance(topics, list) else []


@router.post("/users/{user_id}/items", status_code=201, summary="Add a knowledge or feedback item")
def add_item(user_id: UserId, body: ItemIn, memory: Memory, who: Caller) -> ItemOut:
    """Checked like any write (schema, sizes, secrets: 422). A duplicate of a live item answers that
    item (its topics merged, feedback's count raised) rather than adding another."""
    acting = agent_for(who, body.agent_id)
    session_id = session_for(memory, who, user_id, acting, body.session_id)
    layer = _collection(memory, body.layer)
    fields = dict(body.fields)
    _check_field_names(fields)
    if body.topics is not None:
        fields["topics"] = list(body.topics)
    try:
        item_id = memory.layer(layer.name).add(
            body.text,
            user_id=user_id,
            agent_id=acting,
            session_id=session_id,
            session_scoped=body.session_scoped,
            replaces=body.replaces,
            expires_at=body.expires_at,
            **fields,
        )
    except ConfigurationError as exc:
        raise _as_input_error(exc) from None
    # Read where it was written: a session-scoped entry is seen with its session only.
    return ItemOut.of(_find_item(memory, user_id, acting, session_id, item_id))


@router.get("/users/{user_id}/items/{item_id}", summary="One live item")
def get_item(
    user_id: UserId,
    item_id: str,
    memory: Memory,
    who: Caller,
    agent_id: AgentParam = None,
    session_id: SessionParam = None,
) -> ItemOut:
    session_id = session_for(memory, who, user_id, agent_id, session_id)
    return ItemOut.of(_find_item(memory, user_id, agent_for(who, agent_id), session_id, item_id))


@router.patch(
    "/users/{user_id}/items/{item_id}", summary="Update an item in place (same id, old value in history)"
)
def update_item(
    user_id: UserId,
    item_id: str,
    body: ItemPatch,
    memory: Memory,
    who: Caller,
    agent_id: AgentParam = None,
    session_id: SessionParam = None,
) -> ItemOut:
    """Checked like a new write; 409 when another live item already says the new text. Works on any
    layer's item (a profile field's or a policy's too)."""
    session_id = session_for(memory, who, user_id, agent_id, session_id)
    acting = agent_for(who, agent_id)
    if body.text is None and not body.fields:
        raise InvalidInputError("give text or fields to change")
    _check_field_names(body.fields)
    _find_item(memory, user_id, acting, session_id, item_id)  # 404 before anything is checked or written
    try:
        memory.update(
            item_id, body.text, user_id=user_id, agent_id=acting, session_id=session_id, **body.fields
        )
    except ConfigurationError as exc:
        raise _as_input_error(exc) from None
    return ItemOut.of(_find_item(memory, user_id, acting, session_id, item_id))


@router.delete(
    "/users/{user_id}/items/{item_id}",
    status_code=204,
    response_class=Response,
    summary="Forget an item (its old value stays in the history)",
)
def delete_item(
    user_id: UserId,
    item_id: str,
    memory: Memory,
    who: Caller,
    agent_id: AgentParam = None,
    session_id: SessionParam = None,
) -> Response:
    session_id = session_for(memory, who, user_id, agent_id, session_id)
    acting = agent_for(who, agent_id)
    _find_item(memory, user_id, acting, session_id, item_id)
    memory.forget(item_id, user_id=user_id, agent_id=acting, session_id=session_id)
    return Response(status_code=204)


@router.get("/users/{user_id}/items/{item_id}/history", summary="Every change to one item, oldest first")
def item_history(
    user_id: UserId,
    item_id: str,
    memory: Memory,
    who: Caller,
    agent_id: AgentParam = None,
    session_id: SessionParam = None,
) -> EventList:
    """A forgotten or closed item's history too; an item the scope never saw is 404."""
    session_id = session_for(memory, who, user_id, agent_id, session_id)
    events = memory.history(
        user_id=user_id, agent_id=agent_for(who, agent_id), session_id=session_id, item_id=_item_id(item_id)
    )
    if not events:
        raise _no_item(item_id)
    return EventList(events=[EventOut.of(event) for event in events])


@router.get("/users/{user_id}/history", summary="The user's change history")
def history(
    user_id: UserId,
    memory: Memory,
    who: Caller,
    limit: Annotated[int, Query(ge=1, le=10_000, description="The most recent this many events.")] = 100,
    agent_id: AgentParam = None,
    session_id: SessionParam = None,
) -> EventList:
    """Every change to the scope's items (the shared memory's; with an agent, its private memory's
    too), oldest first; the most recent ``limit``."""
    session_id = session_for(memory, who, user_id, agent_id, session_id)
    events = memory.history(user_id=user_id, agent_id=agent_for(who, agent_id), session_id=session_id)
    return EventList(events=[EventOut.of(event) for event in events[-limit:]])
