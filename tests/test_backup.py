"""``memory.backup`` and ``memory.restore``: a whole database copied while in use, restored into an empty
one exactly (every user's export before == after). Both backends."""

from __future__ import annotations

import json
import shutil
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from test_transfer import everything, managers  # noqa: F401 - a fixture, used by name

from agentmem import (
    Backup,
    ConfigurationError,
    ConflictError,
    ExtractionError,
    InvalidInputError,
    MemoryManager,
    SecretError,
)

FIXTURES = Path(__file__).parent / "fixtures"


def all_exports(mem: MemoryManager) -> list[dict[str, Any]]:
    return [mem.export_user(user.user_id) for user in mem.list_users()]


def sqlite_path(url: str) -> Path:
    return Path(url.removeprefix("sqlite:///"))


def integrity(path: Path) -> str:
    with sqlite3.connect(path) as conn:
        verdict = conn.execute("PRAGMA integrity_check").fetchone()[0]
    conn.close()
    return str(verdict)


def test_every_user_round_trips_exactly(
    managers: dict[str, MemoryManager],  # noqa: F811
    new_db_url: Callable[[], str],
    backend: str,
    tmp_path: Path,
) -> None:
    everything(managers, "sam")
    everything(managers, "kim")
    mem = managers["offline"]
    before = all_exports(mem)

    made = mem.backup(tmp_path / "nightly.backup")

    assert made == Backup(tmp_path / "nightly.backup", "sqlite" if backend == "sqlite" else "logical", 2)
    assert [p.name for p in tmp_path.iterdir() if "nightly" in p.name] == ["nightly.backup"]  # no leftovers
    with MemoryManager(db=new_db_url()) as restored:
        assert restored.restore(made.path) == 2
        assert all_exports(restored) == before
        assert [(u.user_id, u.items, u.sessions) for u in restored.list_users()] == [
            (u.user_id, u.items, u.sessions) for u in mem.list_users()
        ]
        # The restored memory is live: what was learned stays learned, and it takes new writes.
        again = restored.learn([{"role": "user", "content": "Hi, I'm Sam, a nurse in Leeds."}], user_id="sam")
        assert again.usage.skipped == "this input was already learned"
        restored.knowledge.add("Moved to Hull", user_id="sam")
    assert all_exports(mem) == before  # the source is untouched


def agent_memory(managers: dict[str, MemoryManager], agent: str) -> None:  # noqa: F811
    """An agent's own memory with a history, a learned input and a failed extraction."""
    mem = managers["offline"]
    old = mem.knowledge.add("Viewers search by game title first", agent_id=agent)
    mem.knowledge.add("Viewers search by genre first", agent_id=agent, replaces=old)
    mem.learn([{"role": "user", "content": "Hi, I'm Sam, a nurse in Leeds."}], agent_id=agent)
    with pytest.raises(ExtractionError):
        managers["failing"].learn([{"role": "user", "content": "Titles sell."}], agent_id=agent)


def all_agent_exports(mem: MemoryManager, agents: tuple[str, ...]) -> list[dict[str, Any]]:
    return [mem.export_agent(agent) for agent in agents]


def test_users_and_agent_memory_round_trip_exactly(
    managers: dict[str, MemoryManager],  # noqa: F811
    new_db_url: Callable[[], str],
    backend: str,
    tmp_path: Path,
) -> None:
    everything(managers, "sam")
    everything(managers, "kim")
    agents = ("tagger", "writer")
    for agent in agents:
        agent_memory(managers, agent)
    mem = managers["offline"]
    before = (all_exports(mem), all_agent_exports(mem, agents))
    assert all(doc["items"] and doc["events"] and doc["learned"] and doc["pending"] for doc in before[1])

    made = mem.backup(tmp_path / "nightly.backup")

    kind = "sqlite" if backend == "sqlite" else "logical"
    assert made == Backup(tmp_path / "nightly.backup", kind, users=2, agents=2)
    with MemoryManager(db=new_db_url()) as restored:
        assert restored.restore(made.path) == 2
        assert (all_exports(restored), all_agent_exports(restored, agents)) == before
        assert [h.item.text for h in restored.search("genre", agent_id="tagger")] == [
            h.item.text for h in mem.search("genre", agent_id="tagger")
        ]  # the search index holds the restored agent memory
        restored.knowledge.add("Short titles win", agent_id="tagger")  # it takes new writes
    assert (all_exports(mem), all_agent_exports(mem, agents)) == before


def test_a_logical_backup_refuses_an_agent_export_holding_another_agents_memory(
    mem: MemoryManager, tmp_path: Path
) -> None:
    mem.knowledge.add("Viewers search by game title first", agent_id="tagger")
    doc = mem.export_agent("tagger")
    lines = [
        {"format": "agentmem.backup", "version": 2, "users": 0, "agents": 1},
        {**doc, "agent_id": "writer"},
    ]
    backup = tmp_path / "tampered"
    backup.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    mem.delete_agent_memory("tagger")

    with pytest.raises(InvalidInputError, match="holds records of agent 'tagger'"):
        mem.restore(backup)

    assert mem.export_agent("tagger")["items"] == mem.export_agent("writer")["items"] == []


def test_a_backup_path_and_overwrite_are_checked(mem: MemoryManager, tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="path must be a str"):
        mem.backup(123)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="path must be a str"):
        mem.restore(None)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="overwrite must be a bool"):
        mem.backup(tmp_path / "b", overwrite="no")  # type: ignore[arg-type]
    assert not (tmp_path / "b").exists()


@pytest.mark.postgres
def test_a_backup_restores_into_the_other_backend(
    db_url: str, backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    other = (
        request.getfixturevalue("pg_schemas").new_url()
        if backend == "sqlite"
        else f"sqlite:///{tmp_path / 'other.db'}"
    )
    with MemoryManager(db=db_url) as mem, MemoryManager(db=other) as target:
        mem.profile.update(user_id="sam", name="Sam", languages=["English"])
        mem.knowledge.add("Lives in York", user_id="sam", agent_id="coach")
        mem.sessions.add("s1", [{"role": "user", "content": "hi"}], user_id="sam")
        mem.knowledge.add("Viewers search by game title first", agent_id="tagger")
        assert mem.backup(tmp_path / "move").agents == 1
        assert target.restore(tmp_path / "move") == 1
        assert all_exports(target) == all_exports(mem)
        assert target.export_agent("tagger") == mem.export_agent("tagger")


def test_restore_refuses_a_database_that_holds_memory(
    mem: MemoryManager, new_db_url: Callable[[], str], tmp_path: Path
) -> None:
    mem.knowledge.add("Lives in York", user_id="sam")
    mem.backup(tmp_path / "b")
    with MemoryManager(db=new_db_url()) as target:
        target.sessions.add("s1", [{"role": "user", "content": "hi"}], user_id="ana")  # a session is memory
        before = all_exports(target)
        with pytest.raises(ConflictError, match="empty database"):
            target.restore(tmp_path / "b")
        assert all_exports(target) == before
    with pytest.raises(ConflictError, match="empty database"):
        mem.restore(tmp_path / "b")  # into itself


def test_a_failed_restore_writes_nothing(mem: MemoryManager, tmp_path: Path) -> None:
    """The second user's export holds a secret: the first user, already imported, goes too."""
    mem.knowledge.add("Lives in York", user_id="sam")
    good = mem.export_user("sam")
    bad = {**good, "user_id": "eve", "items": [{**good["items"][0], "id": "m_eve"}], "events": []}
    bad["items"][0]["value"]["text"] = "My API key is sk-proj-4f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c"
    backup = tmp_path / "tampered"
    lines = [{"format": "agentmem.backup", "version": 1, "users": 2}, good, bad]
    backup.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    mem.delete_user("sam")

    with pytest.raises(SecretError):
        mem.restore(backup)

    assert mem.list_users() == []


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read"),
        (b"", "not an agentmem backup"),
        (b"hello\n", "not an agentmem backup"),
        (b"\xff\xfe\x00garbage", "not an agentmem backup"),
        (b'{"format": "agentmem.backup", "version": 9, "users": 0}\n', "unknown agentmem backup version"),
        (b'{"format": "agentmem.backup", "version": 1, "users": 2}\n{"format": ', "not valid JSON"),
        (b'{"format": "agentmem.backup", "version": 1, "users": 1}\n', "holds 0 of its 1 users"),
        (
            b'{"format": "agentmem.backup", "version": 1, "users": 1}\n{"user_id": "x"}\n',
            "not an agentmem export",
        ),
    ],
    ids=["missing", "empty", "text", "binary", "version", "bad-json", "truncated", "not-an-export"],
)
def test_a_file_that_is_not_a_whole_backup_is_refused(
    mem: MemoryManager, tmp_path: Path, content: bytes | None, message: str
) -> None:
    path = tmp_path / "file"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(InvalidInputError, match=message):
        mem.restore(path)
    assert mem.list_users() == []


def test_a_backup_never_overwrites_by_accident(mem: MemoryManager, tmp_path: Path) -> None:
    mem.knowledge.add("Lives in York", user_id="sam")
    path = tmp_path / "b"
    path.write_text("an older backup")
    with pytest.raises(ConflictError, match="already exists"):
        mem.backup(path)
    assert path.read_text() == "an older backup"
    assert mem.backup(path, overwrite=True).users == 1
    assert path.read_bytes() != b"an older backup"


def test_a_sqlite_backup_written_by_an_older_agentmem_restores(db_url: str, tmp_path: Path) -> None:
    """A SQLite backup is a database file: one of schema version 1 restores (migrated on a copy), and
    the backup file itself is left as it was."""
    backup = tmp_path / "v1-backup.db"
    shutil.copyfile(FIXTURES / "v1.db", backup)
    original = backup.read_bytes()
    with MemoryManager(db=db_url) as target:
        assert target.restore(backup) >= 1
        assert target.list_users()
        assert all(export["items"] for export in all_exports(target))
    assert backup.read_bytes() == original


# ---- while writers run -----------------------------------------------------------------------------

WRITERS = 4


class Writer(threading.Thread):
    """Adds numbered facts for its own user, one write at a time, noting each id once it is acknowledged
    (the write committed and returned)."""

    def __init__(self, url: str, number: int) -> None:
        super().__init__(daemon=True)
        self.user = f"writer-{number}"
        self.mem = MemoryManager(db=url)
        self.acknowledged: list[str] = []
        self.stop = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                n = len(self.acknowledged)
                self.acknowledged.append(
                    self.mem.knowledge.add(f"{self.user} wrote fact {n}", user_id=self.user)
                )
        except BaseException as exc:  # reported by the test
            self.error = exc
        finally:
            self.mem.close()


def wait_until(condition: Callable[[], bool]) -> None:
    while not condition():
        threading.Event().wait(0.005)


def test_a_backup_taken_while_four_writers_run_holds_every_acknowledged_write(
    mem: MemoryManager, new_db_url: Callable[[], str], backend: str, tmp_path: Path
) -> None:
    mem.knowledge.add_many([f"Background fact number {i}" for i in range(200)], user_id="bulk")
    writers = [Writer(mem.db_url, n) for n in range(WRITERS)]
    for writer in writers:
        writer.start()
    wait_until(lambda: all(len(w.acknowledged) >= 5 or w.error for w in writers))
    acknowledged_before = {w.user: list(w.acknowledged) for w in writers}  # before the backup begins

    made = mem.backup(tmp_path / "live.backup")

    # Each writer was writing before the backup began and still is after it ended: all four ran across it.
    after = {w.user: len(w.acknowledged) for w in writers}
    wait_until(lambda: all(len(w.acknowledged) > after[w.user] or w.error for w in writers))
    for writer in writers:
        writer.stop.set()
    for writer in writers:
        writer.join()
    assert [w.error for w in writers] == [None] * WRITERS
    if backend == "sqlite":
        assert integrity(made.path) == "ok"

    target_url = new_db_url()
    with MemoryManager(db=target_url) as restored:
        assert restored.restore(made.path) == WRITERS + 1
        if backend == "sqlite":
            assert integrity(sqlite_path(target_url)) == "ok"
        assert len(restored.get(user_id="bulk").knowledge) == 200
        for writer in writers:
            facts = restored.get(user_id=writer.user).knowledge
            ids = [fact.id for fact in facts]
            # Every write acknowledged before the backup began is there, and what is there is one
            # snapshot: each writer's first k writes, in order, with no gap (k at least those acknowledged).
            assert ids[: len(acknowledged_before[writer.user])] == acknowledged_before[writer.user]
            assert ids == writer.acknowledged[: len(ids)]
            assert [f.text for f in facts] == [f"{writer.user} wrote fact {n}" for n in range(len(ids))]
            assert f"{writer.user} wrote fact {len(ids) - 1}" in restored.compile(user_id=writer.user)
            assert len(restored.history(user_id=writer.user)) == len(ids)
