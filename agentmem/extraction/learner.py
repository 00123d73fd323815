"""learn(): messages in, schema-guided extraction, merge, one transaction.

Flow: skip when the input was already learned or the salience gate finds nothing -> render the prompt
with the scope's items under short aliases -> one model call (or the offline extractor) -> validate,
re-asking with the error -> map aliases back to ids; drop secrets, invalid and misattributed items ->
merge and apply every layer in one transaction that also marks the input as learned. A final failure
writes nothing and keeps the input (secrets redacted) as a pending extraction for ``retry_pending``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy import Connection
from sqlalchemy.exc import SQLAlchemyError

from ..agent_memory import generalised
from ..errors import ErasedError, ExtractionError, StoreError
from ..layers import Layer, Patch
from ..records import Change, LearnResult, MemoryItem, RetryReport, Usage
from ..scope import Scope
from ..secret_filter import redact
from ..store import Store, Writer
from ..validation import cleaned_text
from ..writes import apply_patches
from .bridge import run_sync
from .calls import Invalid, ModelCaller
from .model import Message, ModelRequest
from .offline import extract_offline
from .output import ReplyFormat
from .patches import not_stale, to_patches
from .templates import PromptSet
from .turns import Turn, salience

log = logging.getLogger("agentmem.learn")
Sections = dict[str, Any]  # layer name -> that layer's validated part of the output
RELEVANCE_SHARE = 0.75  # of the items a prompt shows, at most this share is chosen by relevance to the turn
ERASED = "the user's memory was deleted while this input was being learned"
MAX_PENDING_ERROR = 300  # characters of a failure kept with its pending input


def pending_error(text: str) -> str:
    """What a pending extraction keeps of why it failed: the message, secrets redacted, then cut short
    (a provider's error can quote the request back, and is not ours to keep whole) and made storable."""
    text = cleaned_text(redact(text))
    return text if len(text) <= MAX_PENDING_ERROR else text[: MAX_PENDING_ERROR - 1] + "…"


def input_key(scope: Scope, turns: Sequence[Turn], session: str | None = None) -> str:
    """Idempotency key over the scope and the selected input (and the session, when what is learned
    is kept in it: the same words in another session are learned there too)."""
    parts: list[Any] = [scope.user_id, scope.agent_key, list(turns)]
    if session is not None:
        parts.append(session)
    payload = json.dumps(parts, ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


def _json_text(raw: str) -> str:
    """Models wrap JSON in fences or chatter now and then; keep the object itself."""
    text = raw.strip()
    if text.startswith("```"):
        text = text.split("\n", 1)[1] if "\n" in text else ""
        text = text.rsplit("```", 1)[0]
    start, end = text.find("{"), text.rfind("}")
    return text[start : end + 1] if start != -1 and end > start else text


class Learner:
    """Extraction plus the write path; the manager holds one."""

    def __init__(
        self,
        store: Store,
        layers: Sequence[Layer],
        all_layers: Mapping[str, Layer],
        caller: ModelCaller | None,
        prompts: PromptSet,
        *,
        per_layer: bool,
    ) -> None:
        self.store, self.layers, self.all_layers, self.prompts = store, list(layers), all_layers, prompts
        self.per_layer = per_layer
        self.caller = caller  # None: the offline extractor
        # One request model for all layers, and one per layer for extraction="per_layer".
        self.outputs = {None: ReplyFormat(self.layers)} | {
            layer.name: ReplyFormat([layer]) for layer in self.layers
        }

    @property
    def extractor(self) -> str:
        return "model" if self.caller else "offline"

    # ---- public entry points ----------------------------------------------------------------

    def learn(
        self,
        scope: Scope,
        session_id: str | None,
        turns: Sequence[Turn],
        pending: Mapping[str, Any] | None = None,
        generation: str | None = None,
    ) -> LearnResult:
        job = self._prepare(scope, session_id, turns, pending, generation)
        if isinstance(job, LearnResult):
            return job
        try:
            sections = self._extract(job.current, turns, job.usage)
        except ExtractionError as exc:
            self._keep_pending(exc, job)
            raise
        return self._apply(job, sections)

    async def alearn(
        self, scope: Scope, session_id: str | None, turns: Sequence[Turn], generation: str | None = None
    ) -> LearnResult:
        job = await asyncio.to_thread(self._prepare, scope, session_id, turns, None, generation)
        if isinstance(job, LearnResult):
            return job
        try:
            sections = await self._aextract(job.current, turns, job.usage)
        except ExtractionError as exc:
            await asyncio.to_thread(self._keep_pending, exc, job)
            raise
        return await asyncio.to_thread(self._apply, job, sections)

    def retry_pending(self, user_id: str | None) -> RetryReport:
        rows = self.store.pending(user_id)
        results = []
        for row in rows:
            scope = Scope(row["user_id"], row["agent_id"] or None)
            try:
                results.append(self.learn(scope, row["session_id"], row["messages"], pending=row))
            except (ExtractionError, StoreError):
                continue  # stays pending, its attempts counted
            self.store.drop_pending(scope, row["id"])
        return RetryReport(retried=len(rows), results=results, still_pending=len(rows) - len(results))

    # ---- steps ------------------------------------------------------------------------------

    def _prepare(
        self,
        scope: Scope,
        session_id: str | None,
        turns: Sequence[Turn],
        pending: Mapping[str, Any] | None,
        generation: str | None,
    ) -> _Job | LearnResult:
        usage = Usage(extractor=self.extractor)
        scopes = self._write_scopes(scope, session_id)
        kept_in = next((s.session_id for s in scopes.values() if s.session_id is not None), None)
        key = pending["key"] if pending else input_key(scope, turns, kept_in)
        if not self.layers:
            usage.skipped = "no layer is enabled for extraction"
        elif (reason := salience(turns)) is not None:
            usage.skipped = reason
        else:
            with self.store.reading() as conn:  # one connection and snapshot for every read before the call
                if self.store.was_learned(scope, key, conn=conn):
                    usage.skipped = "this input was already learned"
                else:
                    return self._job(scope, session_id, key, turns, usage, pending, generation, scopes, conn)
        return LearnResult({layer.name: [] for layer in self.layers}, usage)

    def _job(
        self,
        scope: Scope,
        session_id: str | None,
        key: str,
        turns: Sequence[Turn],
        usage: Usage,
        pending: Mapping[str, Any] | None,
        generation: str | None,
        scopes: Mapping[str, Scope],
        conn: Connection,
    ) -> _Job:
        # A retried input keeps the watermark of when it was first read: what the user changed since
        # then is newer than anything this old input says. Its claim (that the user was not deleted
        # meanwhile) is its pending row; a new input's is the generation, taken first.
        if pending:
            claim = _Claim(pending_id=pending["id"])
            watermark, read_at = pending["watermark"] or 0, pending["read_at"] or pending["created_at"]
        else:
            current, watermark = self.store.watermark(scope, conn=conn)
            claim = _Claim(generation=generation or current or self.store.generation(scope))
            read_at = self.store.now()
        shown = self._shown(scopes, turns, conn)
        return _Job(
            scope, session_id, key, list(turns), usage, shown, watermark, read_at, claim, dict(scopes)
        )

    def _write_scopes(self, scope: Scope, session_id: str | None) -> dict[str, Scope]:
        """Where each layer's extracted changes go: user-wide, or the session for a session-scoped layer
        (``LayerConfig(session_scoped=True)``); its merge then sees only that session's items."""
        return {name: layer.write_scope(scope, session_id) for name, layer in self.all_layers.items()}

    def _shown(
        self, scopes: Mapping[str, Scope], turns: Sequence[Turn], conn: Connection
    ) -> dict[str, list[MemoryItem]]:
        """The items the model sees (and may refer to by number), oldest first: all of a layer's
        items, or, where the layer bounds them (``Layer.prompt_items``), the most relevant to what the
        user said plus the most recent ones, read through the index without reading the others. Each
        layer's come from where its changes go."""
        said = " ".join(t["content"] for t in turns if t["role"] == "user")
        whole: dict[str, list[MemoryItem]] = {}
        for scope in dict.fromkeys(scopes.values()):
            small = [
                layer.name
                for layer in self.layers
                if layer.prompt_items is None and scopes[layer.name] == scope
            ]
            whole |= self.store.live_exact(scope, small, conn=conn) if small else {}
        return {
            layer.name: whole[layer.name]
            if layer.prompt_items is None
            else self._bounded(conn, scopes[layer.name], layer.name, layer.prompt_items, said)
            for layer in self.layers
        }

    def _bounded(self, conn: Connection, scope: Scope, layer: str, limit: int, said: str) -> list[MemoryItem]:
        keep = self.store.recent_ids(scope, layer, limit + 1, conn=conn)  # newest first
        if len(keep) > limit:  # more than the prompt shows: the relevant ones first, then the newest
            relevant = int(limit * RELEVANCE_SHARE)
            hits = (
                self.store.search(scope, said[:2000], [layer], relevant, conn=conn)
                if said and relevant
                else []
            )
            chosen = [
                hit.item.id
                for hit in hits
                if (hit.item.agent_id or "") == scope.agent_key
                and (hit.item.session_scope or "") == scope.session_key
            ]
            keep = list(dict.fromkeys([*chosen, *keep]))[:limit]
        return self.store.live_ids(scope, layer, keep, conn=conn)

    def _request(
        self,
        layers: Sequence[Layer],
        current: Mapping[str, list[MemoryItem]],
        turns: Sequence[Turn],
        output: ReplyFormat,
    ) -> ModelRequest:
        assert self.caller is not None
        native = self.caller.supports_json_schema()
        items = {
            layer.name: [
                {"alias": i + 1, "text": layer.prompt_text(item)}
                for i, item in enumerate(current[layer.name])
            ]
            for layer in layers
        }
        schema = "" if native else output.schema_text
        today = self.store.now().date().isoformat()
        # Secrets never leave for the model either: it cannot store what it never sees.
        shown = [{"role": t["role"], "content": redact(t["content"])} for t in turns]
        system = self.prompts.render(layers, items, shown, today, schema)
        messages: list[Message] = [
            {"role": "system", "content": system},
            {"role": "user", "content": "Reply with the JSON object now."},
        ]
        return ModelRequest(
            messages, response_format=output.response_format if native else {"type": "json_object"}
        )

    def _parser(self, output: ReplyFormat) -> Any:
        def parse(raw: str) -> BaseModel:
            try:
                return output.model.model_validate_json(_json_text(raw))
            except ValidationError as exc:
                problems = [
                    f"{'.'.join(str(p) for p in e['loc']) or 'output'}: {e['msg']}" for e in exc.errors()[:3]
                ]
                raise Invalid("; ".join(problems)) from None

        return parse

    def _groups(self) -> list[tuple[str | None, list[Layer]]]:
        if self.per_layer:
            return [(layer.name, [layer]) for layer in self.layers]
        return [(None, self.layers)]

    def _extract(
        self, current: Mapping[str, list[MemoryItem]], turns: Sequence[Turn], usage: Usage
    ) -> Sections:
        if self.caller is None:
            return self._offline(turns)
        return run_sync(self._ask(self._requests(current, turns), usage))

    async def _aextract(
        self, current: Mapping[str, list[MemoryItem]], turns: Sequence[Turn], usage: Usage
    ) -> Sections:
        if self.caller is None:
            return self._offline(turns)
        return await self._ask(await asyncio.to_thread(self._requests, current, turns), usage)

    def _requests(
        self, current: Mapping[str, list[MemoryItem]], turns: Sequence[Turn]
    ) -> list[tuple[str | None, list[Layer], ModelRequest]]:
        """One request per group of layers, built before any is sent: they go out in layer order."""
        return [
            (name, layers, self._request(layers, current, turns, self.outputs[name]))
            for name, layers in self._groups()
        ]

    async def _ask(
        self, requests: list[tuple[str | None, list[Layer], ModelRequest]], usage: Usage
    ) -> Sections:
        assert self.caller is not None
        caller = self.caller

        async def one(name: str | None, layers: list[Layer], request: ModelRequest) -> Sections:
            parsed: BaseModel = await caller.ask(request, self._parser(self.outputs[name]), usage, layer=name)
            return {layer.name: getattr(parsed, layer.name) for layer in layers}

        if len(requests) == 1:
            return await one(*requests[0])
        tasks = [asyncio.ensure_future(one(*request)) for request in requests]
        try:
            parts = await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:  # one layer failed: the others' calls are wasted, stop them
                task.cancel()
            raise
        return {name: section for part in parts for name, section in part.items()}

    def _offline(self, turns: Sequence[Turn]) -> Sections:
        """The offline extractor's output, as each layer takes it (a custom schema keeps what it has)."""
        found = extract_offline(turns)
        raw = {layer.name: layer.offline(turns, found.get(layer.name)) for layer in self.layers}
        parsed = self.outputs[None].model.model_validate({k: v for k, v in raw.items() if v is not None})
        return {layer.name: getattr(parsed, layer.name) for layer in self.layers}

    def _apply(self, job: _Job, sections: Sections) -> LearnResult:
        usage = job.usage
        patches = to_patches(self.layers, sections, job.current, job.turns, job.key, usage)
        result = LearnResult({layer.name: [] for layer in self.layers}, usage)
        try:
            with self.store.write(job.scope, generation=job.claim.generation) as writer:
                if writer.learned(job.key):  # a concurrent learn of the same input won the race
                    usage.skipped = "this input was already learned"
                    return result
                if job.claim.pending_id is not None and not writer.has_pending(job.claim.pending_id):
                    usage.skipped = ERASED
                    return result
                # Changes the session's own writes made count as newer too (the session sees them).
                reader = writer.scoped(job.scope.within(job.scope.agent_id, job.session_id))
                newer = reader.newer_than(job.read_at, job.watermark)
                fresh = not_stale(self.all_layers, patches, newer, usage)
                for scope in dict.fromkeys(job.scopes.values()):
                    for change in apply_patches(
                        writer.scoped(scope),
                        self.all_layers,
                        [(name, patch) for name, patch in fresh if job.scopes[name] == scope],
                        source="extracted",
                        session_id=job.session_id,
                        observed_at=job.read_at,
                    ):
                        result.changes[change.layer].append(change)
                if job.scope.agent_memory is not None:
                    result.agent_changes = self._generalise(writer, fresh, job)
                writer.mark_learned(job.key, job.kept_in)
        except ErasedError:
            usage.skipped = ERASED
            return result
        except (SQLAlchemyError, StoreError) as exc:  # the model's work is done: keep the input, not lose it
            error = StoreError(f"could not apply what was learned: {type(exc).__name__}: {exc}")
            self._keep_pending(error, job)
            raise error from exc
        return result

    def _generalise(self, writer: Writer, patches: list[tuple[str, Patch]], job: _Job) -> list[Change]:
        """Apply what layers configured ``learn_for_agent`` learned to the agent's own memory, in the
        same transaction (see ``agent_memory.generalised``)."""
        shared = [
            (name, kept)
            for name, patch in patches
            if self.all_layers[name].config.learn_for_agent and (kept := generalised(patch)) is not None
        ]
        if not shared:
            return []
        return apply_patches(
            writer.for_agent_memory(),
            self.all_layers,
            shared,
            source="extracted",
            session_id=None,
            observed_at=job.read_at,
        )

    def _keep_pending(self, exc: ExtractionError | StoreError, job: _Job) -> None:
        """Keep the failed input for ``retry_pending``. When even that fails, the caller still gets the
        error it is raising (an ExtractionError with no ``pending_id``), not the database's."""
        redacted = [{"role": t["role"], "content": redact(t["content"])} for t in job.turns]
        attempts = exc.attempts if isinstance(exc, ExtractionError) else 0
        error = pending_error(f"{type(exc).__name__}: {exc}")
        pending_id: str | None = job.claim.pending_id
        try:
            if pending_id is None:
                assert job.claim.generation is not None
                pending_id = self.store.save_pending(
                    job.scope,
                    job.session_id,
                    job.key,
                    redacted,
                    error,
                    attempts,
                    job.watermark,
                    job.read_at,
                    generation=job.claim.generation,
                )
            elif not self.store.count_retry(job.scope, pending_id, error, attempts):
                pending_id = None
        except ErasedError:
            return  # the user was deleted meanwhile: their input must not be kept
        except (SQLAlchemyError, StoreError) as db_error:
            log.warning("the failed input could not be kept for retry_pending: %s", type(db_error).__name__)
            return
        if isinstance(exc, ExtractionError):
            exc.pending_id = pending_id


@dataclass
class _Job:
    """One learn between reading and writing."""

    scope: Scope
    session_id: str | None
    key: str
    turns: list[Turn]
    usage: Usage
    current: dict[str, list[MemoryItem]]
    """What the model was shown (and may refer to by alias)."""
    watermark: int
    """The user's newest event id when the input was read (0: none); kept with a pending extraction."""
    read_at: datetime
    """When the input was read: what the user changed after it wins over what it says."""
    claim: _Claim
    """What proves at write time that the user was not deleted since the input was read."""
    scopes: dict[str, Scope]
    """Where each layer's changes are written (see ``Learner._write_scopes``)."""

    @property
    def kept_in(self) -> str | None:
        """The session some of what is learned is kept in (None: all of it is user-wide)."""
        return next((s.session_id for s in self.scopes.values() if s.session_id is not None), None)


@dataclass(frozen=True)
class _Claim:
    """A new input's claim is the user's generation; a retried one's is its pending row."""

    generation: str | None = None
    pending_id: str | None = None
