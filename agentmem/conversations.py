"""Conversation history and session summaries: ``MemoryManager.sessions``.

Messages are stored per user and session (secrets redacted, in the text and in ``tool_calls``,
``tool_call_id`` and ``name``). A session summary is written by the model, or, offline, extractively from
the user's own first sentences; with ``enable_session_summaries=True`` it is refreshed whenever enough new
messages have arrived.

A session belongs to the agent that created it: only calls with the same ``agent_id`` may add to it, and
a read that names an ``agent_id`` is refused for another agent's session. A session created without an
``agent_id`` is the user's own (an application's history, say) and no agent may use it either: the rule is
that the session's ``agent_id`` equals the caller's, ``None`` included. Reads without an ``agent_id``
(``messages``, ``list``, summaries, ``delete``) are the user's view and see every
session of the user.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .errors import InvalidInputError, NotFoundError
from .extraction.calls import Invalid
from .extraction.templates import Prompt
from .extraction.turns import message_text
from .records import Usage
from .scope import Scope, check_id
from .store import sessions
from .store.sessions import EXTRA_FIELDS, SessionInfo, checked_extra
from .store.sessions import MAX_MESSAGE_CHARS as MAX_MESSAGE_CHARS
from .store.sessions import ROLES as ROLES

if TYPE_CHECKING:
    from .extraction.calls import ModelCaller
    from .store import Store

SUMMARY_EVERY = 6  # new messages that make a kept-current summary due
OFFLINE_POINTS = 4


def _checked_messages(messages: object) -> list[dict[str, Any]]:
    if isinstance(messages, (str, bytes)) or not isinstance(messages, Sequence):
        raise InvalidInputError("messages must be a list of {'role': ..., 'content': ...} dicts")
    out = []
    for i, message in enumerate(messages):
        if not isinstance(message, Mapping) or message.get("role") not in ROLES:
            raise InvalidInputError(f"messages[{i}] must be a dict with a role in {ROLES}")
        content = message_text(message.get("content"), f"messages[{i}]")
        if len(content) > MAX_MESSAGE_CHARS:
            raise InvalidInputError(
                f"messages[{i}] is {len(content)} characters; the limit is {MAX_MESSAGE_CHARS}"
            )
        extra = checked_extra({k: message.get(k) for k in EXTRA_FIELDS}, f"messages[{i}]")
        out.append({"role": message["role"], "content": content, **extra})
    return out


def clipped(text: str) -> str:
    """``text`` as a stored message: cut to ``MAX_MESSAGE_CHARS`` with a marker when longer."""
    if len(text) <= MAX_MESSAGE_CHARS:
        return text

    def marker(kept: int) -> str:
        return f"\n[truncated: the message was {len(text)} characters; the first {kept} are kept]"

    kept = MAX_MESSAGE_CHARS - len(marker(MAX_MESSAGE_CHARS))  # fewer digits never lengthen the marker
    return text[:kept] + marker(kept)


def offline_summary(messages: Sequence[Mapping[str, Any]]) -> str:
    """A short extractive summary: how long the session was and the user's own opening sentences."""
    said = [str(m["content"]) for m in messages if m["role"] == "user" and str(m["content"]).strip()]
    if not said:
        return f"{len(messages)} messages; the user said nothing yet."
    points = []
    for text in said:
        first = re.split(r"(?<=[.!?])\s+", " ".join(text.split()), maxsplit=1)[0][:160]
        if first not in points:
            points.append(first)
    shown = "; ".join(f'"{p}"' for p in points[:OFFLINE_POINTS])
    more = f" and {len(points) - OFFLINE_POINTS} more" if len(points) > OFFLINE_POINTS else ""
    return f"{len(messages)} messages. The user said: {shown}{more}."


class Sessions:
    """A user's conversations: their messages and summaries (``mem.sessions``).

    Args:
        store: where sessions and messages live.
        caller: the model that writes summaries; ``None``: extractive offline summaries.
        prompt: the summary template.
        summaries: keep each session's summary current as messages arrive
            (``MemoryManager(enable_session_summaries=True)``).
    """

    def __init__(self, store: Store, caller: ModelCaller | None, prompt: Prompt, summaries: bool) -> None:
        self._store, self._caller, self._prompt = store, caller, prompt
        self.summaries = summaries

    def add(
        self,
        session_id: str,
        messages: Sequence[Mapping[str, Any]],
        *,
        user_id: str,
        agent_id: str | None = None,
        refresh_summary: bool = True,
        generation: str | None = None,
    ) -> int:
        """Append messages to a session (created on first use); secrets are redacted. Returns how many.

        When summaries are kept current, the session's summary is refreshed when due (unless
        ``refresh_summary=False``: an agent refreshes it in the background instead). ``generation``
        (``MemoryManager.generation``): store nothing if the user was deleted since it was taken.

        Raises:
            ErasedError: the user was deleted since ``generation``; nothing was stored.
            ScopeError: the session belongs to another agent (or, without ``agent_id``, to an agent).
            InvalidInputError: a message is not valid, its text is over ``MAX_MESSAGE_CHARS`` or its
                ``tool_calls``/``tool_call_id``/``name`` take over ``MAX_EXTRA_CHARS`` as JSON.
        """
        scope = Scope.of(user_id, agent_id)
        session = check_id(session_id, "session_id", required=True)
        assert session is not None
        checked = _checked_messages(messages)
        check_id(generation, "generation", required=False)
        with self._store.write(scope, generation=generation) as writer:
            sessions.ensure_session(writer.conn, scope.user_id, session, scope.agent_key, writer.now)
            sessions.add_messages(writer.conn, scope.user_id, session, checked, writer.now)
        if self.summaries and refresh_summary:
            self.refresh_summary(session, user_id=scope.user_id)
        return len(messages)

    def messages(
        self, session_id: str, *, user_id: str, agent_id: str | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """The session's messages, oldest first; with ``limit``, only the last ``limit``.

        With ``agent_id``, read as that agent: ScopeError when the session belongs to another agent or
        to none. Without it, read as the user, who sees every session.
        """
        if agent_id is None:
            scope, session = self._session_scope(session_id, user_id)
            return self._read_messages(scope, session, limit, as_agent=False)
        return self.history(session_id, user_id=user_id, agent_id=agent_id, limit=limit)

    def history(
        self, session_id: str, *, user_id: str, agent_id: str | None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """The messages as the agent ``agent_id`` (``None``: an agent without an id) reads them: only
        of a session it owns (ScopeError otherwise); a new session has none."""
        scope = Scope.of(user_id, agent_id)
        session = check_id(session_id, "session_id", required=True)
        assert session is not None
        return self._read_messages(scope, session, limit, as_agent=True)

    def _read_messages(
        self, scope: Scope, session: str, limit: int | None, *, as_agent: bool
    ) -> list[dict[str, Any]]:
        if limit is not None and (type(limit) is not int or limit < 0):
            raise InvalidInputError(f"limit must be a non-negative int, got {limit!r}")
        with self._store.engine.connect() as conn:
            if as_agent:
                sessions.check_owner(conn, scope.user_id, session, scope.agent_key)
            return sessions.get_messages(conn, scope.user_id, session, limit)

    def list(self, *, user_id: str, agent_id: str | None = None) -> list[SessionInfo]:
        """The user's sessions, most recently active first (only one agent's, with ``agent_id``)."""
        scope = Scope.of(user_id, agent_id)
        with self._store.engine.connect() as conn:
            return sessions.list_sessions(conn, scope.user_id, scope.agent_id)

    def get(self, session_id: str, *, user_id: str) -> SessionInfo:
        """One session of the user: who owns it, how many messages it holds, its summary.

        Raises:
            NotFoundError: the user has no such session.
        """
        scope, session = self._session_scope(session_id, user_id)
        with self._store.engine.connect() as conn:
            found = sessions.list_sessions(conn, scope.user_id, None, session)
        if not found:
            raise NotFoundError(f"user {scope.user_id!r} has no session {session!r}")
        return found[0]

    def delete(self, session_id: str, *, user_id: str) -> int:
        """Delete a session with its messages, its summary, its variables (of every agent, with their
        history) and its session-scoped memory (each live item with a ``delete`` event), in one
        transaction; returns the number of messages deleted."""
        scope, session = self._session_scope(session_id, user_id)
        with self._store.write(scope) as writer:
            return sessions.delete_session(writer, session)

    def summary(self, session_id: str, *, user_id: str) -> str | None:
        """The session's summary, or ``None`` when it has none yet."""
        scope, session = self._session_scope(session_id, user_id)
        with self._store.engine.connect() as conn:
            found = sessions.summary(conn, scope.user_id, session)
        return None if found is None else found[0]

    def summarize(self, session_id: str, *, user_id: str) -> str:
        """Write (or bring up to date) the session's summary and return it.

        Raises:
            NotFoundError: the user has no such session.
            ErasedError: the user was deleted while the summary was written; nothing was stored.
            ExtractionError: the model failed; the previous summary is kept.
        """
        scope, session = self._session_scope(session_id, user_id)
        # Read under the lock with the user's generation, begun only for a user who has the session:
        # a delete_user during the model call leaves nothing, not even a generation.
        with self._store.write(scope) as writer:
            found = sessions.summary(writer.conn, scope.user_id, session)
            if found is None:
                raise NotFoundError(f"user {scope.user_id!r} has no session {session!r}")
            messages = sessions.get_messages(writer.conn, scope.user_id, session, None)
            generation = writer.begin_generation()
        previous, covered = found
        if previous is not None and covered == len(messages):
            return previous
        text = self._summarize(previous, messages[covered:] if previous else messages, messages)
        with self._store.write(scope, generation=generation) as writer:
            return sessions.set_summary(writer.conn, scope.user_id, session, text, len(messages), writer.now)

    def refresh_summary(self, session_id: str, *, user_id: str) -> str | None:
        """Summarise the session if enough new messages arrived since its summary; return the summary."""
        scope, session = self._session_scope(session_id, user_id)
        with self._store.engine.connect() as conn:
            found = sessions.summary(conn, scope.user_id, session)
            total = sessions.count_messages(conn, scope.user_id, session)
        if found is None:
            return None
        if total - found[1] < SUMMARY_EVERY:
            return found[0]
        try:
            return self.summarize(session, user_id=scope.user_id)
        except NotFoundError:  # the session or its user was deleted meanwhile: it has no summary
            return None

    def _summarize(
        self, previous: str | None, new: Sequence[Mapping[str, Any]], everything: Sequence[Mapping[str, Any]]
    ) -> str:
        if self._caller is None:
            return offline_summary(everything)
        shown = [
            {"role": m["role"], "content": m["content"]} for m in new if m["role"] in ("user", "assistant")
        ]
        prompt = self._prompt.render(
            previous_summary=previous or "", messages=shown, today=self._store.now().date().isoformat()
        )

        def parse(raw: str) -> str:
            if not raw.strip():
                raise Invalid("the summary was empty")
            return raw.strip()

        return self._caller.call_text([{"role": "user", "content": prompt}], parse, Usage(extractor="model"))

    def _session_scope(self, session_id: str, user_id: str) -> tuple[Scope, str]:
        scope = Scope.of(user_id)
        session = check_id(session_id, "session_id", required=True)
        assert session is not None
        return scope, session
