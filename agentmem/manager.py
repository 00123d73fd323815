"""MemoryManager: the facade users hold. Storage, layers, compile, search, history, transfer."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from sqlalchemy.exc import SQLAlchemyError
from tenacity import Retrying

from .agent_memory import compile_scope
from .compiler import compile_context
from .config import LayerConfig
from .conversations import Sessions
from .embeddings import Embedder, EmbeddingModel
from .errors import ConfigurationError, InvalidInputError, StoreError
from .extraction.calls import Limiter, ModelCaller
from .extraction.learner import Learner
from .extraction.model import Model, resolve_model
from .extraction.retry import RetryPolicy, retry_policy
from .extraction.templates import PromptSet, load_prompt
from .extraction.turns import select_turns
from .layers import LAYER_TYPES, Layer
from .records import (
    Backup,
    Change,
    LearnResult,
    MemoryEvent,
    MemoryItem,
    MemoryState,
    PendingLearn,
    RetryReport,
    SearchHit,
    UserSummary,
)
from .scope import Scope, check_id, check_session_scoped, prefer_agent
from .store import ContextRow, Store, Top, backup, transfer, users
from .store.engine import resolve_url
from .store.migrations import stored_version
from .store.ranked import TopicFilter
from .store.retention import DEFAULT_CLEANUP, CleanupKind, CleanupReport, checked_kinds
from .store.rows import utcnow
from .store.variables import VARIABLES
from .templates import LayerVariables, MemoryTemplate, Templates
from .tokens import TokenCounter, default_counter
from .tools import MemoryTools, tool_definitions
from .validation import checked_text
from .variables import Variables
from .writes import Writes

MAX_QUERY = 4000
EMBED_RETRY = 1024
"""Items pending embedding that one ``retry_pending`` embeds per user (or agent memory)."""
MAX_REEMBED = 2**62
MAX_TOPICS = 20  # topics= of compile and search
MAX_TOPIC = 200
TEMPLATE_TOKEN_BUDGET = 1500
"""``render``'s default budget for each memory variable ({{memory}}, {{knowledge}} ...)."""
SUMMARY_TEMPLATE = "session_summary.jinja"


def _build_layers(
    given: Mapping[str, LayerConfig | Layer] | None,
    schemas: Mapping[str, type | None],
    prompts: Mapping[str, str | None],
) -> dict[str, Layer]:
    """The manager's layers in authority order: the built-in four (configured), then added ones."""
    if given is not None and not isinstance(given, Mapping):
        raise ConfigurationError(f"layers must be a dict of layer name to config, got {type(given).__name__}")
    given = dict(given or {})
    if VARIABLES in given:
        raise ConfigurationError(
            f"the layer name {VARIABLES!r} is reserved: memory variables' history uses it"
        )
    for name, value in given.items():
        if isinstance(value, Layer):
            if value.name != name:
                raise ConfigurationError(f"layers[{name!r}] is a layer named {value.name!r}; use that name")
        elif not isinstance(value, LayerConfig):
            raise ConfigurationError(
                f"layers[{name!r}] must be a LayerConfig or a Layer, got {type(value).__name__}"
            )
        elif name not in LAYER_TYPES:
            raise ConfigurationError(
                f"unknown layer {name!r}; built-in layers are {', '.join(LAYER_TYPES)} "
                "(to add a layer, pass a Layer instance: layers={name: MyLayer()})"
            )
    layers: dict[str, Layer] = {}
    for name, kind in LAYER_TYPES.items():
        value = given.get(name) or LayerConfig()
        shorthand: dict[str, Any] = {"schema": schemas.get(name), "extraction_prompt": prompts.get(name)}
        shorthand = {option: v for option, v in shorthand.items() if v is not None}
        if isinstance(value, Layer):
            if shorthand:
                raise ConfigurationError(
                    f"layers[{name!r}] is a Layer; configure it there, not with {name}_*"
                )
            layers[name] = value
            continue
        for option, v in shorthand.items():
            if getattr(value, option) not in (None, v):
                raise ConfigurationError(f"{name}_{option} and layers[{name!r}].{option} disagree; give one")
        layers[name] = kind(replace(value, **shorthand))
    layers.update(
        {name: value for name, value in given.items() if isinstance(value, Layer) and name not in layers}
    )
    return layers


class MemoryManager:
    """Long-term, layered memory of users, scoped by ``user_id`` (and ``agent_id``, ``session_id``).

    Args:
        db: a database URL. ``None``: ``AGENTMEM_DB_URL`` if set, else the embedded SQLite file
            ``~/.agentmem/memory.db``.
        layers: per layer, a :class:`LayerConfig` for a built-in layer (``profile``, ``policies``,
            ``knowledge``, ``feedback``), or a :class:`~agentmem.layers.Layer` instance: your own layer
            (added after the built-in ones, in the order given) or a replacement for a built-in one.
        profile_schema, policies_schema, knowledge_schema, feedback_schema: shorthand for
            ``layers={name: LayerConfig(schema=...)}``.
        model: a litellm model id (``"gpt-4o-mini"``, ``"openai/qwen2.5-7b-instruct"``), your own
            :class:`~agentmem.Model` (e.g. :class:`agentmem.testing.ScriptedModel`), or ``None`` for
            the built-in offline extractor of explicit English statements.
        model_options: passed through to litellm (``api_base``, ``api_key``, ``temperature`` ...).
        profile_extraction_prompt, ...: shorthand for ``LayerConfig(extraction_prompt=...)``.
        prompts_dir: a folder whose templates replace the defaults by file name.
        extraction: ``"combined"`` (one model call for all layers) or ``"per_layer"``.
        retry: how model calls (extraction and summaries) are retried; default ``RetryPolicy()``.
            An :class:`~agentmem.Agent` given this memory uses it too, unless given its own.
        max_retries: re-asks after an invalid reply (or a ``tenacity.Retrying``); shorthand for
            ``retry.reasks`` (default 2), and wins over it when both are given.
        max_concurrency: model calls in flight at once, across threads and tasks.
        update_memory_on_run: read by agents: learn from every run, in the background (default
            ``True``; ``False`` turns automatic learning off).
        enable_agentic_memory, add_memory_to_context: read by agents.
        enable_session_summaries: refresh a session's summary as its messages are added.
        token_counter: counts tokens for ``token_budget``; default: cl100k, offline.
        clock: what time it is: a function returning timezone-aware datetimes, used for every
            timestamp written and every expiry. Default: the system clock in UTC. Tests pass one they
            control, e.g. :class:`agentmem.testing.ManualClock`.
        embedding_model: opt-in semantic search: a litellm embedding model id
            (``"text-embedding-3-small"``, ``"ollama/nomic-embed-text"``, ``"openai/<name>"`` of a
            local OpenAI-compatible server with ``embedding_options={"api_base": ...}``) or a function
            from texts to vectors. Items are embedded after each write, in batches; when the call
            fails the write still stands and its items stay pending (:meth:`retry_pending` or the
            next write embeds them). Needs numpy: ``pip install 'agentmem-layers[embeddings]'``.
            ``None`` (default): no embeddings, and no model call on any read.
        embedding_options: passed through to ``litellm.embedding`` (``api_base``, ``api_key``,
            ``dimensions`` ...).
    """

    def __init__(
        self,
        db: str | None = None,
        *,
        model: str | Model | None = None,
        model_options: Mapping[str, Any] | None = None,
        layers: Mapping[str, LayerConfig | Layer] | None = None,
        profile_schema: type | None = None,
        policies_schema: type | None = None,
        knowledge_schema: type | None = None,
        feedback_schema: type | None = None,
        profile_extraction_prompt: str | None = None,
        policies_extraction_prompt: str | None = None,
        knowledge_extraction_prompt: str | None = None,
        feedback_extraction_prompt: str | None = None,
        prompts_dir: str | Path | None = None,
        extraction: Literal["combined", "per_layer"] = "combined",
        retry: RetryPolicy | None = None,
        max_retries: int | Retrying | None = None,
        max_concurrency: int = 4,
        update_memory_on_run: bool = True,
        enable_agentic_memory: bool = False,
        add_memory_to_context: bool = True,
        enable_session_summaries: bool = False,
        token_counter: TokenCounter | None = None,
        clock: Callable[[], datetime] | None = None,
        embedding_model: EmbeddingModel | None = None,
        embedding_options: Mapping[str, Any] | None = None,
    ) -> None:
        schemas = {
            "profile": profile_schema,
            "policies": policies_schema,
            "knowledge": knowledge_schema,
            "feedback": feedback_schema,
        }
        prompts = {
            "profile": profile_extraction_prompt,
            "policies": policies_extraction_prompt,
            "knowledge": knowledge_extraction_prompt,
            "feedback": feedback_extraction_prompt,
        }
        self._layers = _build_layers(layers, schemas, prompts)
        variables = LayerVariables.of(list(self._layers.values()))  # a clash fails before the store opens
        if extraction not in ("combined", "per_layer"):
            raise ConfigurationError(f"extraction must be 'combined' or 'per_layer', got {extraction!r}")
        extracted = [layer for layer in self._layers.values() if layer.config.extract]
        # Templates are loaded and test-rendered now: a broken prompt fails here, not at the first learn.
        prompt_set = PromptSet(extracted, prompts_dir)
        self.model = resolve_model(model, model_options)
        self.retry = retry_policy(retry, max_retries)
        """How model calls are retried (extraction, summaries, and agents that use this memory)."""
        if not isinstance(max_concurrency, int) or isinstance(max_concurrency, bool) or max_concurrency < 1:
            raise ConfigurationError(f"max_concurrency must be an int >= 1, got {max_concurrency!r}")
        # One caller, so extraction and summaries share one concurrency limit.
        caller = (
            ModelCaller(self.model, self.retry, Limiter(max_concurrency)) if self.model is not None else None
        )
        self.update_memory_on_run = update_memory_on_run
        """Used by agents: learn from every run automatically (on by default)."""
        self.enable_agentic_memory = enable_agentic_memory
        """Used by agents: give the model memory tools."""
        self.add_memory_to_context = add_memory_to_context
        """Used by agents: put the compiled memory into the system message."""
        summary_prompt = load_prompt(SUMMARY_TEMPLATE, prompts_dir)
        summary_prompt.render(previous_summary="", messages=[], today="2026-01-01")  # fail early
        if token_counter is not None and not callable(token_counter):
            raise ConfigurationError(f"token_counter must be a function str -> int, got {token_counter!r}")
        self._token_counter = token_counter
        if clock is not None and not callable(clock):
            raise ConfigurationError(f"clock must be a function returning a datetime, got {clock!r}")
        ttls = {
            name: layer.config.ttl for name, layer in self._layers.items() if layer.config.ttl is not None
        }
        if embedding_model is None and embedding_options:
            raise ConfigurationError("embedding_options need an embedding_model")
        self._embedder: Embedder | None = (
            Embedder(embedding_model, embedding_options) if embedding_model is not None else None
        )
        """Embeds texts for semantic search (None: not configured, and no read calls a model)."""
        self._store = Store(resolve_url(db), clock=clock or utcnow, ttls=ttls, embedder=self._embedder)
        self._learner = Learner(
            self._store,
            extracted,
            self._layers,
            caller,
            prompt_set,
            per_layer=extraction == "per_layer",
        )
        self.sessions = Sessions(self._store, caller, summary_prompt, enable_session_summaries)
        """Conversation history and session summaries (see :class:`~agentmem.conversations.Sessions`)."""
        self._writes = Writes(self._store, self._layers, self._state)
        self._handles = {name: layer.handle(self._writes) for name, layer in self._layers.items()}
        self.profile = self._handles["profile"]
        """``update``/``remove``/``get`` the profile's fields."""
        self.policies = self._handles["policies"]
        """``update``/``remove``/``withdraw``/``get`` the policies (rules one by one with ``withdraw``)."""
        self.knowledge = self._handles["knowledge"]
        """``add``/``add_many``/``list`` facts."""
        self.feedback = self._handles["feedback"]
        """``add``/``add_many``/``list`` feedback entries."""
        self._templates = Templates(
            list(self._layers.values()),
            variables,
            self._compile,
            self._store.live,
            self.sessions,
            named=lambda scope, session_id: self.variables.values(
                user_id=scope.user_id, agent_id=scope.agent_id, session_id=session_id
            ),
            now=self._store.now,
        )
        self.variables = Variables(self._store, builtins=self._templates.names)
        """Named values per user, agent and session: ``set``/``get``/``list``/``values``/``delete``/
        ``history`` (see :class:`~agentmem.variables.Variables`)."""

    def layer(self, name: str) -> Any:
        """The manual API of any configured layer: ``mem.layer("goals").add(...)`` for a layer of your own
        (``mem.layer("profile")`` is ``mem.profile``).

        Raises:
            ConfigurationError: no layer of that name is configured.
        """
        if name not in self._handles:
            raise ConfigurationError(f"unknown layer {name!r}; layers are {', '.join(self._handles)}")
        return self._handles[name]

    @property
    def db_url(self) -> str:
        return self._store.url

    @property
    def layers(self) -> Mapping[str, Layer]:
        """The configured layers in authority order (each holds its ``config``)."""
        return dict(self._layers)

    # ---- learning ------------------------------------------------------------------------

    def learn(
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        session_id: str | None = None,
        generation: str | None = None,
    ) -> LearnResult:
        """Learn from a conversation: at most one model call (zero when the salience gate skips it),
        validated, merged and applied in one transaction. Re-running the same input changes nothing.
        When ``delete_user`` runs while the learn is under way, nothing is written: the result has no
        changes and ``usage.skipped`` says why.

        Args:
            messages: OpenAI-style ``{"role", "content"}`` dicts; the user's turns are read, plus the
                assistant turn they react to, as context. System and tool messages are ignored.
            user_id, agent_id: whose memory learns; ``agent_id`` alone: the agent's own memory, shared
                by all its users. With both, layers configured ``learn_for_agent=True`` also apply
                what they learn to the agent's own memory.
            generation: from :meth:`generation`, taken when your turn began: the learn writes nothing
                if the user was deleted since. Default: taken when the learn begins.

        Raises:
            ExtractionError: the model failed for good; nothing was written and the input is kept as
                a pending extraction (see :meth:`retry_pending`).
        """
        check_id(generation, "generation", required=False)
        return self._learner.learn(
            *_learn_input(messages, user_id, agent_id, session_id), generation=generation
        )

    async def alearn(
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        session_id: str | None = None,
        generation: str | None = None,
    ) -> LearnResult:
        """The async twin of :meth:`learn` (``litellm.acompletion``; per-layer calls run concurrently)."""
        check_id(generation, "generation", required=False)
        return await self._learner.alearn(
            *_learn_input(messages, user_id, agent_id, session_id), generation=generation
        )

    def retry_pending(self, *, user_id: str | None = None) -> RetryReport:
        """Re-run extractions that failed (of one user, or of everyone); successes leave the queue.
        With an ``embedding_model``, also embed items still pending embedding (up to
        ``EMBED_RETRY`` per user or agent memory; the report's ``embedded`` counts them). A failed
        embedding call is logged and leaves its items pending."""
        if user_id is not None:
            Scope.of(user_id)
        report = self._learner.retry_pending(user_id)
        embedded = sum(
            self._store.embed_pending(owner, EMBED_RETRY, quiet=True)
            for owner in self._store.pending_owners(user_id)
        )
        return replace(report, embedded=embedded) if embedded else report

    def reembed(self, *, user_id: str | None = None, everything: bool = False) -> int:
        """Embed every live item without a vector of the configured embedding model (of one user, or
        of every user and agent memory); return how many. After a model change that is all of them.
        ``everything``: drop the existing vectors first, to re-embed with a model that kept its name.

        Raises:
            ConfigurationError: no embedding model is configured.
            EmbeddingError: the model failed; the items embedded before stay embedded.
        """
        if self._embedder is None:
            raise ConfigurationError("reembed needs an embedding_model")
        if everything is not True and everything is not False:
            raise ConfigurationError(f"everything must be a bool, got {everything!r}")
        if user_id is not None:
            Scope.of(user_id)
        if everything:
            for owner in self._store.pending_owners(user_id, every=True):
                self._store.drop_vectors(owner)
        return sum(
            self._store.embed_pending(owner, MAX_REEMBED) for owner in self._store.pending_owners(user_id)
        )

    def pending(self, *, user_id: str | None = None) -> list[PendingLearn]:
        """The learns whose extraction failed and that :meth:`retry_pending` would re-run, oldest first:
        of one user (every agent's), or of everyone. Their messages are stored with secrets redacted."""
        if user_id is not None:
            Scope.of(user_id)
        return [
            PendingLearn(
                id=row["id"],
                user_id=row["user_id"],
                agent_id=row["agent_id"] or None,
                session_id=row["session_id"],
                messages=list(row["messages"]),
                error=row["error"],
                attempts=int(row["attempts"]),
                created_at=row["created_at"],
                updated_at=row["updated_at"],
            )
            for row in self._store.pending(user_id)
        ]

    def forget(
        self,
        item_id: str,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        session_id: str | None = None,
    ) -> Change:
        """Delete one live item visible to the scope (``agent_id`` alone: the agent's own memory; a
        session's own items: with its ``session_id``). Its old value stays in the history.

        Raises:
            NotFoundError: no such live item in this scope (another user's or agent's id included).
        """
        return self._writes.forget(Scope.addressed(user_id, agent_id, session_id), item_id, source="manual")

    def update(
        self,
        item_id: str,
        text: str | None = None,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        session_id: str | None = None,
        **fields: Any,
    ) -> Change | None:
        """Change one live item in place: it keeps its id, and its ``update`` event in :meth:`history`
        holds the old value. Checked like a new write (schema, sizes, secrets); on an error nothing
        changes. Returns the change, or ``None`` when the item already says that.

        Args:
            text: the new text (a profile or policy value; for a list field, all of its elements,
                comma-separated).
            fields: new values of a collection item's other fields (``topics=["home"]``).

        Raises:
            NotFoundError: no such live item visible to the scope.
            ConflictError: another live item already says the new text; update or forget that one.
            InvalidInputError: an unknown field, an empty or invalid value; SecretError for a secret.
        """
        scope = Scope.addressed(user_id, agent_id, session_id)
        if text is not None:
            if not isinstance(text, str):
                raise InvalidInputError(f"text must be a str, not {type(text).__name__}")
            text = checked_text(text, "text").strip()
        if text is None and not fields:
            raise InvalidInputError("update needs text or fields to change")
        changes = self._writes.update(
            scope, item_id, text, fields, source="manual", session_id=scope.session_id
        )
        # The item's own change: an expired item that held the new key is deleted first, with its event.
        return next((change for change in changes if change.item_id == item_id), None)

    # ---- reads -----------------------------------------------------------------------------

    def get(
        self, *, user_id: str | None = None, agent_id: str | None = None, session_id: str | None = None
    ) -> MemoryState:
        """A typed snapshot of the scope's live memory.

        Without ``agent_id``: the user's shared memory only. With it: the shared memory plus that
        agent's private memory (the agent's item wins where both have the same field or rule);
        :meth:`agents` lists the agents that keep private memory of the user. With ``agent_id`` alone:
        the agent's own memory, shared by all its users (never part of a user's snapshot). Without
        ``session_id``: user-wide memory only; with it, plus that session's own memory (which wins the
        same way).
        """
        return self._state(Scope.addressed(user_id, agent_id, session_id))

    def item(
        self,
        item_id: str,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        session_id: str | None = None,
    ) -> MemoryItem | None:
        """The live item ``item_id`` if this scope sees it (shared, the agent's, the session's), else
        ``None`` (another user's or agent's item too: nothing says it exists). One indexed read, where
        :meth:`get` would read the whole memory.

        Raises:
            InvalidInputError: a malformed id (never a query).
        """
        scope = Scope.addressed(user_id, agent_id, session_id)
        checked = check_id(item_id, "item_id", required=True)
        assert checked is not None
        return self._store.live_item(scope, checked)

    def agents(self, user_id: str) -> list[str]:
        """The ids of the agents that keep private memory (live items) of this user, sorted."""
        return self._store.agents(Scope.of(user_id))

    def list_users(self) -> list[UserSummary]:
        """Every user with memory, history or sessions, by user id: how many live items and sessions
        each has, and when their memory or a session last changed. One grouped, index-served query."""
        with self._store.engine.connect() as conn:
            return users.list_users(conn, self._store.expiry())

    def _state(self, scope: Scope) -> MemoryState:
        items = prefer_agent(self._store.live(scope))  # in write order: the store reads by primary key
        typed = {
            name: layer.typed([i for i in items if i.layer == name]) for name, layer in self._layers.items()
        }
        return MemoryState(
            user_id=scope.user_id,
            agent_id=scope.agent_id,
            layers=typed,
            items=items,
            session_id=scope.session_id,
        )

    def compile(
        self,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        session_id: str | None = None,
        query: str | None = None,
        token_budget: int | None = None,
        topics: Sequence[str] | None = None,
    ) -> str:
        """The scope's memory as escaped XML for a system message ("" when there is none).

        With an ``agent_id``, the agent's own memory (shared by all its users) comes first, as its
        own element ``<agent_memory agent="...">``, taking at most a quarter of a ``token_budget``;
        with ``agent_id`` alone, only that element.

        Args:
            session_id: also that session's own memory (without it: user-wide memory only).
            query: rank knowledge and feedback by relevance to this text (e.g. the user's message).
            token_budget: the output never exceeds this many tokens; lowest-ranked items drop first.
            topics: of the layers whose schema has a ``topics`` field (knowledge), only the items
                listing one of these (ignoring case); the other layers (profile, policies ...) are
                compiled as without it.
        """
        scope = Scope.addressed(user_id, agent_id, session_id)
        layers = [layer for layer in self._layers.values() if layer.config.inject]
        wanted = self._topic_filter(topics, layers)
        return self._compile(scope, layers, _check_query(query), _check_budget(token_budget), True, wanted)

    def _compile(
        self,
        scope: Scope,
        layers: Sequence[Layer],
        query: str | None,
        token_budget: int | None,
        elements: bool,
        topics: TopicFilter | None = None,
    ) -> str:
        if not layers:
            return ""
        names = [layer.name for layer in layers]
        counter = self._counter()
        # The user's and the agent's: one connection.
        dense = self._store.dense_for(query)  # the query's one embedding call, before the read
        with self._store.context_reader(dense, topics) as read_rows:

            def read(target: Scope, top: Mapping[str, Top]) -> list[ContextRow]:
                return read_rows(target, names, query, top)

            if not elements:  # the scope's own lines alone, for a template to place
                return compile_context(
                    layers,
                    lambda top: read(scope, top),
                    token_budget=token_budget,
                    count_tokens=counter,
                    elements=False,
                )
            return compile_scope(layers, scope, read, token_budget=token_budget, count_tokens=counter)

    # ---- templates -------------------------------------------------------------------------

    @property
    def template_variables(self) -> tuple[str, ...]:
        """The built-in template variables: ``memory``, ``recent_context``, ``session_context``,
        ``date``, then each layer's (its lines by its name, and a document layer's fields)."""
        return self._templates.names

    def check_template(self, template: str, *, variables: Collection[str] = ()) -> MemoryTemplate:
        """Parse and check a template once, to render it many times (an :class:`Agent` does this).

        Args:
            template: sandboxed Jinja text, e.g. ``"You are helping {{user_name}}."``.
            variables: names of your own variables the template may use besides the built-ins.

        Raises:
            ConfigurationError: a syntax error, or a variable that is neither built in nor declared
                (the message names it).
        """
        return self._templates.check(template, variables)

    def render(
        self,
        template: str | MemoryTemplate,
        *,
        user_id: str,
        agent_id: str | None = None,
        session_id: str | None = None,
        query: str | None = None,
        token_budget: int | None = TEMPLATE_TOKEN_BUDGET,
        variables: Collection[str] = (),
    ) -> str:
        """``template`` filled from the scope's memory, for any framework's system prompt.

        The template is checked before anything is read (see :meth:`check_template`); then only the
        variables it uses are read. Every value is escaped text, never evaluated as a template; a
        missing value (no name stored, no session) renders as "".

        Args:
            query: rank knowledge and feedback by relevance to this text (e.g. the user's message).
            token_budget: the most tokens each memory variable (``{{memory}}``, ``{{knowledge}}`` ...)
                may take; ``None``: no limit.
            session_id: the session ``{{recent_context}}`` and ``{{session_context}}`` come from
                (with ``agent_id``, only that agent's own session: ScopeError otherwise).
            variables: your own variable names, when ``template`` is text.
        """
        checked = self._templates.check(template, variables)
        scope = Scope.of(user_id, agent_id, session_id)  # a session's own memory too
        session = scope.session_id
        query = _check_query(query)
        return self._templates.render(checked, scope, session, query, _check_budget(token_budget))

    async def arender(
        self,
        template: str | MemoryTemplate,
        *,
        user_id: str,
        agent_id: str | None = None,
        session_id: str | None = None,
        query: str | None = None,
        token_budget: int | None = TEMPLATE_TOKEN_BUDGET,
        variables: Collection[str] = (),
    ) -> str:
        """The async twin of :meth:`render` (the database read runs in a worker thread)."""
        return await asyncio.to_thread(
            self.render,
            template,
            user_id=user_id,
            agent_id=agent_id,
            session_id=session_id,
            query=query,
            token_budget=token_budget,
            variables=variables,
        )

    def count_tokens(self, text: str) -> int:
        """How many tokens ``text`` is by this memory's token counter: the one ``compile``'s
        ``token_budget`` is kept with (to report on a context as the budget sees it)."""
        if not isinstance(text, str):
            raise InvalidInputError(f"text must be a str, not {type(text).__name__}")
        return self._counter()(text)

    def _counter(self) -> TokenCounter:
        if self._token_counter is None:
            self._token_counter = default_counter()
        return self._token_counter

    def search(
        self,
        query: str,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        session_id: str | None = None,
        layers: Sequence[str] | None = None,
        limit: int = 10,
        topics: Sequence[str] | None = None,
    ) -> list[SearchHit]:
        """Live items of the scope ranked by relevance to ``query`` (BM25 on SQLite); ``agent_id``
        alone searches the agent's own memory; with ``session_id``, that session's own items too.

        A query word matches an item's text or its topics; Chinese, Japanese and Korean text is
        matched by its character pairs. ``topics``: only items listing one of these (ignoring case),
        so only of the layers whose schema has a ``topics`` field (knowledge)."""
        scope = Scope.addressed(user_id, agent_id, session_id)
        text = _check_query(query)
        if text is None:
            raise InvalidInputError("query must be a non-empty str")
        names = list(layers) if layers is not None else list(self._layers)
        unknown = sorted(set(names) - set(self._layers))
        if unknown:
            raise ConfigurationError(f"unknown layer(s) {', '.join(unknown)}")
        if type(limit) is not int or limit < 1:  # bool is an int subclass, not a count
            raise InvalidInputError(f"limit must be a positive int, got {limit!r}")
        wanted = self._topic_filter(topics, [self._layers[name] for name in names])
        if wanted is not None:
            names = [name for name in names if name in wanted.layers]
        dense = self._store.dense_for(text) if names else None  # the query's one embedding call
        return self._store.search(scope, text, names, limit, topics=wanted, dense=dense)

    @staticmethod
    def _topic_filter(topics: object, layers: Sequence[Layer]) -> TopicFilter | None:
        """The checked ``topics=`` of ``compile`` and ``search``, applying to ``layers`` that have topics."""
        if topics is None:
            return None
        if isinstance(topics, str) or not isinstance(topics, Sequence):
            raise InvalidInputError(f"topics must be a list of str, not {type(topics).__name__}")
        if not 0 < len(topics) <= MAX_TOPICS:
            raise InvalidInputError(f"topics must name 1 to {MAX_TOPICS} topics, got {len(topics)}")
        for topic in topics:
            if not isinstance(topic, str) or not topic.strip():
                raise InvalidInputError(f"each topic must be a non-empty str, got {topic!r}")
            if len(topic) > MAX_TOPIC:
                raise InvalidInputError(f"a topic is {len(topic)} characters; the limit is {MAX_TOPIC}")
            checked_text(topic, "a topic")
        with_topics = frozenset(layer.name for layer in layers if "topics" in layer.schema.fields)
        return TopicFilter(tuple(topics), with_topics)

    def history(
        self,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        session_id: str | None = None,
        item_id: str | None = None,
    ) -> list[MemoryEvent]:
        """Every change to the scope's items (or to one item), oldest first, with old and new values;
        ``agent_id`` alone: the agent's own memory's; with ``session_id``, that session's own items'
        changes too."""
        scope = Scope.addressed(user_id, agent_id, session_id)
        check_id(item_id, "item_id", required=False)
        return self._store.history(scope, item_id)

    def tools(
        self,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        session_id: str | None = None,
        generation: str | None = None,
        agent_memory: bool = False,
        session_scoped: bool | None = None,
    ) -> MemoryTools:
        """Memory tools (remember, update, forget, search) bound to this scope, in OpenAI function
        format with a dispatcher: ``tools.definitions`` and ``tools.dispatch(name, arguments)``.
        With ``generation`` (see :meth:`generation`), their writes fail once the user is deleted.

        ``agent_memory=True`` (with ``user_id`` and ``agent_id``): the tools may also write to, search
        and correct the agent's own memory (``memory_remember`` takes ``scope="agent"``). With
        ``agent_id`` alone, the tools work on the agent's own memory only. With ``session_id`` they see
        that session's own memory too; ``memory_remember`` stores into the session where
        ``session_scoped`` says so (``None``: each layer's ``LayerConfig``).
        """
        scope = Scope.addressed(user_id, agent_id, session_id)
        generation = check_id(generation, "generation", required=False)
        if agent_memory is not False and agent_memory is not True:
            raise ConfigurationError(f"agent_memory must be a bool, got {agent_memory!r}")
        if agent_memory and scope.agent_memory is None:
            raise ConfigurationError("agent_memory=True needs both user_id and agent_id")
        session_scoped = check_session_scoped(session_scoped, scope.session_id)
        shared = scope.agent_memory if agent_memory else None
        return MemoryTools(
            self,
            self._writes,
            scope,
            scope.session_id,
            generation=generation,
            agent_scope=shared,
            session_scoped=session_scoped,
        )

    def tool_definitions(self, *, agent_memory: bool = False) -> list[dict[str, Any]]:
        """The memory tools' definitions (OpenAI function format) without binding them to anyone: what a
        framework registers once, before any user is known. Calls go through :meth:`tools` for the
        run's user (its ``dispatch``); ``agent_memory`` as there."""
        return tool_definitions(self._layers, agent_memory=agent_memory)

    # ---- whole users -----------------------------------------------------------------------

    def export_user(self, user_id: str) -> dict[str, Any]:
        """Everything stored for the user (all agents, closed items, history) as JSON-ready data."""
        scope = Scope.of(user_id)
        with self._store.engine.connect() as conn:
            return transfer.export_user(conn, scope.user_id)

    def delete_user(self, user_id: str) -> int:
        """Delete everything stored for the user, history included; return the number of items.

        Work for the user already under way when the deletion commits (a learn, a retry, an agent's
        run and its background learning, a session summary) writes nothing afterwards; work begun
        after it starts the user afresh.
        """
        scope = Scope.of(user_id)
        with self._store.write(scope) as writer:
            count = transfer.delete_user(writer.conn, scope.user_id)
            writer.end_generation()
            return count

    def export_agent(self, agent_id: str) -> dict[str, Any]:
        """The agent's own memory (live and closed items, history), as JSON-ready data. It is no
        user's: ``export_user`` never holds it, and ``delete_user`` never deletes it."""
        scope = Scope.for_agent(agent_id)
        with self._store.engine.connect() as conn:
            return transfer.export_agent(conn, scope)

    def delete_agent_memory(self, agent_id: str) -> int:
        """Delete the agent's own memory, history included (no user's memory is touched); return the
        number of items."""
        scope = Scope.for_agent(agent_id)
        with self._store.write(scope) as writer:
            return transfer.delete_agent_memory(writer.conn, scope)

    def generation(self, *, user_id: str) -> str:
        """The user's generation: an opaque token (begun on first use) that :meth:`delete_user` ends.

        For work of your own that spans model calls (an agent's turn): take it when the turn begins
        and pass it to :meth:`learn`, :meth:`tools` and ``sessions.add``; once the user is deleted they
        write nothing (``learn`` says so in ``usage.skipped``, ``sessions.add`` raises ErasedError, a
        memory tool returns the error to the model).
        """
        return self._store.generation(Scope.of(user_id))

    def import_user(self, data: Mapping[str, Any]) -> int:
        """Restore an ``export_user`` document exactly; the user must not have memory yet."""
        doc = transfer.parse_export(data, self._layers)
        with self._store.write(Scope.of(doc.user_id)) as writer:
            return transfer.import_user(writer.conn, doc)

    def backup(self, path: str | Path, *, overwrite: bool = False) -> Backup:
        """Back up the whole database to ``path`` while it is in use: writes acknowledged before the
        call are in it. SQLite: a consistent copy of the database file (``VACUUM INTO``); PostgreSQL:
        every user's export and every agent's own memory (:meth:`export_agent`), read from one
        snapshot, as JSON lines. Restore it with :meth:`restore`.

        Raises:
            InvalidInputError: ``path`` is not a str or path.
            ConfigurationError: ``overwrite`` is not a bool.
            ConflictError: ``path`` exists and ``overwrite`` is false.
            StoreError: the backup could not be written (nothing is left at ``path`` then).
        """
        if overwrite is not False and overwrite is not True:
            raise ConfigurationError(f"overwrite must be a bool, got {overwrite!r}")
        return backup.write_backup(self._store.engine, _checked_path(path), overwrite=overwrite)

    def restore(self, path: str | Path) -> int:
        """Restore a :meth:`backup` (of either backend) into this manager's database, which must hold
        no memory yet; return the number of users restored. Every user, and every agent's own memory,
        is checked as :meth:`import_user` checks, and all are written in one transaction: on an error,
        nothing is.

        Raises:
            ConflictError: the database already holds memory.
            InvalidInputError: ``path`` is not a str or path, or not a readable, complete backup, or
                holds invalid data.
        """
        return backup.restore(self._store.writer_engine, _checked_path(path), self._layers)

    def cleanup(
        self,
        *,
        older_than: timedelta,
        what: CleanupKind | Collection[CleanupKind] = DEFAULT_CLEANUP,
        user_id: str | None = None,
    ) -> CleanupReport:
        """Delete what is older than ``older_than``, of every user or only ``user_id``; return counts.

        ``what``: ``"messages"`` (written before the cutoff), ``"sessions"`` (not added to since,
        deleted completely as ``sessions.delete`` does), ``"pending"`` (failed extractions not retried
        since), ``"closed"`` (facts closed before it), ``"expired"`` (items that had expired by then;
        ``timedelta(0)``: all expired items). Default: all but ``"closed"``. Without ``user_id``, each
        agent's own memory is cleaned too. Deleted items keep their history, with an event whose
        reason is ``"retention"`` or ``"expired"``.
        """
        if not isinstance(older_than, timedelta) or older_than < timedelta(0):
            raise InvalidInputError(f"older_than must be a timedelta >= 0, got {older_than!r}")
        kinds = checked_kinds(what)
        if user_id is not None:
            Scope.of(user_id)
        return self._store.cleanup(older_than, kinds, user_id)

    # ---- lifecycle -------------------------------------------------------------------------

    def schema_version(self) -> int:
        """The schema version the database holds, read from it now: a cheap check that the database
        answers (the server's ``/healthz`` uses it).

        Raises:
            ClosedError: this manager is closed.
            StoreError: the database does not answer.
        """
        try:
            with self._store.engine.connect() as conn:
                return stored_version(conn)
        except SQLAlchemyError as exc:
            raise StoreError(f"the database does not answer: {exc}") from exc

    def close(self) -> None:
        self._store.close()

    def __enter__(self) -> MemoryManager:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"MemoryManager(db={self._store.url!r})"


def _learn_input(
    messages: Sequence[Mapping[str, Any]], user_id: str | None, agent_id: str | None, session_id: str | None
) -> tuple[Scope, str | None, list[dict[str, str]]]:
    # Addressed with the session so an agent's own memory refuses one (it has no sessions, as in the
    # reads); the learner gets the user-wide scope and the session beside it.
    scope = Scope.addressed(user_id, agent_id, session_id).user_wide()
    return scope, check_id(session_id, "session_id", required=False), select_turns(messages)


def _check_budget(token_budget: int | None) -> int | None:
    if token_budget is not None and (type(token_budget) is not int or token_budget < 0):
        raise InvalidInputError(f"token_budget must be a non-negative int, got {token_budget!r}")
    return token_budget


def _check_query(query: object) -> str | None:
    if query is None:
        return None
    if not isinstance(query, str):
        raise InvalidInputError(f"query must be a str, not {type(query).__name__}")
    if len(query) > MAX_QUERY:
        raise InvalidInputError(f"query is {len(query)} characters; the limit is {MAX_QUERY}")
    return checked_text(query, "query") if query.strip() else None


def _checked_path(path: object) -> Path:
    """A backup's path as given by the caller: a str or an ``os.PathLike`` of one."""
    name = os.fspath(path) if isinstance(path, str | os.PathLike) else None
    if isinstance(name, str) and name:
        return Path(name)
    raise InvalidInputError(f"path must be a str or path of a file, got {path!r}")
