"""API keys of the REST server, over a :class:`~agentmem.MemoryManager`'s database: what ``agentmem keys``
and the server use. Storage and the reasons behind it are in ``agentmem.store.keys``; nothing here
imports FastAPI, so the CLI manages keys without the ``server`` extra.
"""

from __future__ import annotations

from ..manager import MemoryManager
from ..store import keys as store
from ..store.keys import ApiKey, NewKey

__all__ = ["ApiKey", "ApiKeys", "NewKey"]


class ApiKeys:
    """Create, list, revoke and check the server's keys in ``memory``'s database.

    Args:
        memory: the memory the server serves; its keys live in the same database.
    """

    def __init__(self, memory: MemoryManager) -> None:
        # The keys are the server's business, not the memory API's: reached through the store here
        # rather than through more methods on MemoryManager.
        self._store = memory._store

    def create(
        self,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        admin: bool = False,
        label: str | None = None,
    ) -> NewKey:
        """A new key; its ``secret`` is returned this once and only its hash is stored.

        Raises:
            InvalidInputError: bad ids or label, an admin key bound to a user, or a key bound to nothing.
        """
        with self._store.writer_engine.begin() as conn:
            return store.create(
                conn, now=self._store.now(), user_id=user_id, agent_id=agent_id, admin=admin, label=label
            )

    def list(self) -> list[ApiKey]:
        """Every key, revoked ones included (never a secret), oldest first."""
        with self._store.engine.connect() as conn:
            return store.list_keys(conn)

    def revoke(self, key_id: str) -> ApiKey:
        """Revoke a key for good.

        Raises:
            NotFoundError: no key has that id.
        """
        with self._store.writer_engine.begin() as conn:
            return store.revoke(conn, key_id, now=self._store.now())

    def find(self, secret: str) -> ApiKey | None:
        """The live key whose secret this is, or ``None`` (unknown, malformed or revoked)."""
        with self._store.engine.connect() as conn:
            return store.find(conn, secret)

    def required(self) -> bool:
        """Whether any key was ever created; until then the server runs open, for local use only."""
        with self._store.engine.connect() as conn:
            return store.keys_required(conn)
