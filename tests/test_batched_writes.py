"""Writer.apply batches its writes: one statement per kind of write, whatever the number of changes,
with the same items, events (in order) and full-text rows as applying the changes one by one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from agentmem.layers.changes import Add, Delete, Expire, NewItem, Op, Supersede, Update
from agentmem.scope import Scope
from agentmem.store import Store
from agentmem.store.search import owner_tag, owner_token, tagged

SCOPE = Scope("ada")
LAYER = "knowledge"


def new(key: str, text: str) -> NewItem:
    return NewItem(key=key, value={"text": text}, text=text, line=f"- {text}")


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    made = Store(db_url)
    yield made
    made.close()


def seed(store: Store, *texts: str) -> dict[str, Any]:
    """Items with keys k0, k1, ... holding ``texts``; returned by key."""
    with store.write(SCOPE) as writer:
        writer.apply(
            LAYER, [Add(new(f"k{i}", t)) for i, t in enumerate(texts)], source="api", session_id=None
        )
    return {item.key: item for item in store.live(SCOPE, [LAYER])}


def found(store: Store, query: str) -> set[str]:
    return {hit.item.text for hit in store.search(SCOPE, query, [LAYER], 50)}


def test_every_kind_of_change_in_one_apply_keeps_its_order_and_events(store: Store) -> None:
    items = seed(store, "likes tea", "lives in Oslo", "works at Acme", "owns a cat", "plays chess")
    before = {e.id for e in store.history(SCOPE)}
    k0, k1, k2, k3, k4 = (items[f"k{i}"] for i in range(5))
    ops: list[Op] = [
        Delete(k3, reason="forgotten"),
        Add(new("k5", "speaks Dutch")),
        Update(
            k0, {"text": "likes green tea"}, "likes green tea", "- likes green tea", 2, True, 0.9, {"n": 1}
        ),
        Supersede(k1, new("k6", "lives in Bergen"), reason="moved"),
        Expire(k2, reason="cap"),
        Supersede(k4, items["k0"], reason="same"),
    ]
    with store.write(SCOPE) as writer:
        changes = writer.apply(LAYER, ops, source="extracted", session_id="s1")

    assert [(c.op, c.key) for c in changes] == [
        ("delete", "k3"),
        ("add", "k5"),
        ("update", "k0"),
        ("add", "k6"),
        ("supersede", "k1"),
        ("expire", "k2"),
        ("supersede", "k4"),
    ]
    events = [e for e in store.history(SCOPE) if e.id not in before]
    assert [e.id for e in events] == sorted(e.id for e in events)  # ids ascend in apply order
    assert [(e.op, e.item_id, e.old, e.new, e.reason) for e in events] == [
        (c.op, c.item_id, c.old, c.new, r)
        for c, r in zip(changes, ["forgotten", None, None, None, "moved", "cap", "same"], strict=True)
    ]
    assert {e.source for e in events} == {"extracted"}
    assert {e.session_id for e in events} == {"s1"}

    live = {item.key: item for item in store.live(SCOPE, [LAYER])}
    assert sorted(live) == ["k0", "k5", "k6"]
    assert (live["k0"].text, live["k0"].count, live["k0"].confidence, live["k0"].meta) == (
        "likes green tea",
        2,
        0.9,
        {"n": 1},
    )
    assert live["k5"].source == "extracted"
    assert live["k5"].session_id == "s1"
    closed = {e.item_id for e in events if e.op in ("supersede", "expire")}
    assert closed == {k1.id, k2.id, k4.id}
    links = {e.item_id: e for e in store.history(SCOPE) if e.op == "supersede"}
    assert links[k1.id].new == live["k6"].value
    assert links[k4.id].new == k0.value


def test_search_finds_what_a_batch_added_and_edited_not_what_it_removed(store: Store) -> None:
    items = seed(store, "likes tea", "lives in Oslo", "owns a cat")
    ops: list[Op] = [
        Add(new("k3", "collects stamps")),
        Add(new("k4", "grows tomatoes")),
        Update(items["k0"], {"text": "likes coffee"}, "likes coffee", "- likes coffee", 1, True, 1.0, {}),
        Delete(items["k1"]),
        Expire(items["k2"], reason="cap"),
    ]
    with store.write(SCOPE) as writer:
        writer.apply(LAYER, ops, source="api", session_id=None)

    assert found(store, "stamps tomatoes") == {"collects stamps", "grows tomatoes"}
    assert found(store, "coffee") == {"likes coffee"}
    assert found(store, "tea") == set()  # the old text of an edited item is no longer indexed
    assert found(store, "Oslo") == set()
    assert found(store, "cat") == set()


def test_the_sqlite_text_index_holds_one_row_per_stored_item_with_its_current_text(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'fts.db'}")  # the FTS5 index is SQLite's own
    items = seed(store, "likes tea", "lives in Oslo", "owns a cat")
    ops: list[Op] = [
        Add(new("k3", "collects stamps")),
        Update(items["k0"], {"text": "likes coffee"}, "likes coffee", "- likes coffee", 1, True, 1.0, {}),
        Delete(items["k1"]),
    ]
    with store.write(SCOPE) as writer:
        writer.apply(LAYER, ops, source="api", session_id=None)
    with store.engine.connect() as conn:
        indexed = conn.exec_driver_sql("SELECT rowid, text FROM agentmem_items_fts ORDER BY rowid").all()
        stored = conn.exec_driver_sql("SELECT pk, text FROM agentmem_items ORDER BY pk").all()
    store.close()
    tag = owner_tag(owner_token(SCOPE.owner))  # the index holds each text's words under its owner's tag
    assert [tuple(r) for r in indexed] == [(pk, tagged(tag, text)) for pk, text in stored]
    assert {r[1] for r in stored} == {"likes coffee", "owns a cat", "collects stamps"}


def test_statements_per_apply_do_not_grow_with_its_changes(store: Store) -> None:
    seed(store, *(f"old fact {i}" for i in range(60)))
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    def applied(n: int, offset: int) -> int:
        statements.clear()
        with store.write(SCOPE) as writer:
            event.listen(writer.conn, "before_cursor_execute", count)
            live = writer.live(LAYER)
            statements.clear()
            ops: list[Op] = [Add(new(f"a{offset + i}", f"fact number {offset + i}")) for i in range(n)]
            ops += [Expire(item, reason="cap") for item in live[:n]]
            writer.apply(LAYER, ops, source="api", session_id=None)
            event.remove(writer.conn, "before_cursor_execute", count)
        return len(statements)

    one = applied(1, 0)
    assert applied(12, 100) == one
    assert applied(40, 200) == one
    assert len(store.live(SCOPE, [LAYER])) == 60


def test_an_add_may_take_the_key_of_an_item_closed_by_the_same_apply(store: Store) -> None:
    """Closing goes before adding whatever the operations' order, so the live-key index never sees the
    same key twice."""
    items = seed(store, "lives in Oslo")
    with store.write(SCOPE) as writer:
        writer.apply(
            LAYER,
            [Add(new("k0", "lives in Bergen")), Expire(items["k0"], reason="moved")],
            source="api",
            session_id=None,
        )
    assert [(i.key, i.text) for i in store.live(SCOPE, [LAYER])] == [("k0", "lives in Bergen")]
