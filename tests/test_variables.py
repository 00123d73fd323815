"""Memory variables (``mem.variables``): named values per user, agent and session, on both backends.

Which value a scope reads (the most specific), that no other user, agent or session ever sees one,
names usable in a Jinja template, values checked and bounded, history kept, and variables exported,
imported, and deleted with their user and with their session.
"""

from __future__ import annotations

from typing import Any

import pytest
from jinja2 import StrictUndefined, TemplateSyntaxError
from jinja2.defaults import DEFAULT_NAMESPACE
from jinja2.sandbox import SandboxedEnvironment

from agentmem import (
    ConfigurationError,
    ConflictError,
    InvalidInputError,
    LayerConfig,
    MemoryManager,
    NotFoundError,
    ScopeError,
    SecretError,
    Variable,
)
from agentmem.variables import MAX_NAME, MAX_VALUE, MAX_VARIABLES, RESERVED

USER = "sarah"


def scope(agent: str | None = None, session: str | None = None, user: str = USER) -> dict[str, Any]:
    return {"user_id": user, "agent_id": agent, "session_id": session}


def set_everywhere(mem: MemoryManager) -> None:
    """``task`` in each of the four scopes of one user, and ``theme`` only for the user."""
    mem.variables.set("task", "user-wide", **scope())
    mem.variables.set("task", "the agent's", **scope("coder"))
    mem.variables.set("task", "the session's", **scope(session="s1"))
    mem.variables.set("task", "the agent's in the session", **scope("coder", "s1"))
    mem.variables.set("theme", "warm", **scope())


# ---- set, get, list, delete ---------------------------------------------------------------------


def test_set_get_list_and_delete(mem: MemoryManager) -> None:
    stored = mem.variables.set("current_task", "clean the survey data", user_id=USER)
    assert isinstance(stored, Variable)
    assert (stored.name, stored.value, stored.agent_id, stored.session_id) == (
        "current_task",
        "clean the survey data",
        None,
        None,
    )
    assert mem.variables.get("current_task", user_id=USER) == "clean the survey data"
    assert mem.variables.get("conversation_goal", user_id=USER) is None

    updated = mem.variables.set("current_task", "train the churn model", user_id=USER)
    assert (updated.id, updated.created_at) == (stored.id, stored.created_at)
    assert updated.updated_at >= stored.updated_at
    mem.variables.set("conversation_goal", "a first model by Friday", user_id=USER)
    assert [(v.name, v.value) for v in mem.variables.list(user_id=USER)] == [
        ("conversation_goal", "a first model by Friday"),
        ("current_task", "train the churn model"),
    ]

    deleted = mem.variables.delete("current_task", user_id=USER)
    assert (deleted.id, deleted.value) == (stored.id, "train the churn model")
    assert mem.variables.values(user_id=USER) == {"conversation_goal": "a first model by Friday"}
    with pytest.raises(NotFoundError, match="current_task"):
        mem.variables.delete("current_task", user_id=USER)


def test_an_empty_value_is_a_value(mem: MemoryManager) -> None:
    mem.variables.set("task", "user-wide", **scope())
    mem.variables.set("task", "", **scope("coder"))  # the agent's own, empty, hides the user's
    assert mem.variables.get("task", **scope("coder")) == ""


# ---- which value a scope reads --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("agent", "session", "expected"),
    [
        (None, None, "user-wide"),
        ("coder", None, "the agent's"),
        (None, "s1", "the session's"),
        ("coder", "s1", "the agent's in the session"),
        ("writer", None, "user-wide"),  # another agent: the user's
        ("writer", "s1", "the session's"),  # another agent in the session: the session's
        (None, "s2", "user-wide"),  # another session: the user's
        ("coder", "s2", "the agent's"),  # the agent in another session: the agent's
    ],
)
def test_the_most_specific_value_wins(
    mem: MemoryManager, agent: str | None, session: str | None, expected: str
) -> None:
    set_everywhere(mem)
    assert mem.variables.get("task", **scope(agent, session)) == expected
    assert mem.variables.values(**scope(agent, session)) == {"task": expected, "theme": "warm"}
    (task, _theme) = mem.variables.list(**scope(agent, session))
    assert task.value == expected


def test_list_says_where_each_value_was_set(mem: MemoryManager) -> None:
    set_everywhere(mem)
    listed = {v.name: (v.agent_id, v.session_id) for v in mem.variables.list(**scope("coder", "s1"))}
    assert listed == {"task": ("coder", "s1"), "theme": (None, None)}


def test_deleting_a_specific_value_uncovers_the_next_one(mem: MemoryManager) -> None:
    set_everywhere(mem)
    for expected in ("the session's", "the agent's", "user-wide"):
        (deleted,) = [v for v in mem.variables.list(**scope("coder", "s1")) if v.name == "task"]
        mem.variables.delete("task", **scope(deleted.agent_id, deleted.session_id))
        assert mem.variables.get("task", **scope("coder", "s1")) == expected
    mem.variables.delete("task", **scope())
    assert mem.variables.get("task", **scope("coder", "s1")) is None


# ---- isolation ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "reader"),
    [
        (scope(user="sarah"), scope(user="marco")),
        (scope("coder"), scope()),
        (scope("coder"), scope("writer")),
        (scope("coder"), scope("writer", "s1")),
        (scope(session="s1"), scope()),
        (scope(session="s1"), scope(session="s2")),
        (scope(session="s1"), scope("coder")),
        (scope("coder", "s1"), scope("coder")),
        (scope("coder", "s1"), scope(session="s1")),
        (scope("coder", "s1"), scope("writer", "s1")),
        (scope("coder", "s1", user="sarah"), scope("coder", "s1", user="marco")),
    ],
)
def test_no_other_user_agent_or_session_sees_a_variable(
    mem: MemoryManager, written: dict[str, Any], reader: dict[str, Any]
) -> None:
    mem.variables.set("secret_plan", "surprise party", **written)
    assert mem.variables.get("secret_plan", **reader) is None
    assert mem.variables.list(**reader) == []
    assert mem.variables.values(**reader) == {}
    assert mem.variables.history(**reader) == []
    with pytest.raises(NotFoundError):
        mem.variables.delete("secret_plan", **reader)
    mem.variables.set("secret_plan", "the reader's own", **reader)  # a value of its own changes nothing
    assert mem.variables.get("secret_plan", **written) == "surprise party"
    if reader["user_id"] != written["user_id"]:
        assert mem.export_user(reader["user_id"])["variables"][0]["value"] == "the reader's own"


# ---- names and values -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "",
        "1st_task",
        "_private",
        "current-task",
        "current task",
        "task.name",
        "{{task}}",
        "tâche",
        "x" * (MAX_NAME + 1),
        "none",
        "True",
        "loop",
        "range",
        None,
        7,
    ],
)
def test_a_name_a_template_cannot_use_is_refused(mem: MemoryManager, name: Any) -> None:
    with pytest.raises(InvalidInputError, match="variable name"):
        mem.variables.set(name, "value", user_id=USER)
    with pytest.raises(InvalidInputError, match="variable name"):
        mem.variables.get(name, user_id=USER)
    assert mem.export_user(USER)["variables"] == []


@pytest.mark.parametrize("name", ["user_name", "memory", "knowledge", "policies", "date", "session_context"])
def test_a_built_in_template_variable_is_no_variable_name(mem: MemoryManager, name: str) -> None:
    """Every stored variable is usable as ``{{ name }}``: a built-in one's name is refused, named."""
    assert name in mem.template_variables
    with pytest.raises(InvalidInputError, match=f"{name!r} is a built-in template variable"):
        mem.variables.set(name, "value", **scope("coder", "s1"))
    assert mem.export_user(USER)["variables"] == []
    assert mem.variables.get(name, user_id=USER) is None  # reads still take it: nothing to find


def test_the_names_jinja_gives_a_meaning_are_reserved() -> None:
    assert set(DEFAULT_NAMESPACE) <= RESERVED  # its global functions
    env = SandboxedEnvironment(undefined=StrictUndefined)
    for word in ("true", "false", "none", "True", "False", "None", "not", "self"):
        assert word in RESERVED
        try:  # a literal renders itself; an operator, or the render call's own argument, fails
            rendered = env.from_string(f"{{{{ {word} }}}}").render(**{word: "VALUE"})
        except (TemplateSyntaxError, TypeError):
            continue
        assert rendered != "VALUE", word


def test_every_accepted_name_renders_in_a_jinja_template(mem: MemoryManager) -> None:
    names = ["current_task", "conversationGoal", "x", "step_2", "A" + "b" * (MAX_NAME - 1)]
    for i, name in enumerate(names):
        mem.variables.set(name, f"<value {i}>", user_id=USER)
    values = mem.variables.values(user_id=USER)
    env = SandboxedEnvironment(undefined=StrictUndefined, autoescape=True)
    template = env.from_string(" ".join(f"{{{{ {name} }}}}" for name in names))
    assert template.render(values) == " ".join(f"&lt;value {i}&gt;" for i in range(len(names)))


@pytest.mark.parametrize(
    ("value", "error", "match"),
    [
        (42, InvalidInputError, "must be a str, not int"),
        (None, InvalidInputError, "must be a str, not NoneType"),
        (["a"], InvalidInputError, "must be a str, not list"),
        ("x" * (MAX_VALUE + 1), InvalidInputError, f"{MAX_VALUE + 1} characters; the limit is {MAX_VALUE}"),
        ("bad\x00byte", InvalidInputError, "control character"),
        ("lone \ud800", InvalidInputError, "surrogate"),
        ("deploy with sk_live_4eC39HqLyjWDarjtT1zdp7dc", SecretError, "secrets are never stored"),
        ("the password for the VPN is hunter2-Xq9!", SecretError, "secrets are never stored"),
    ],
)
def test_a_bad_value_is_refused_and_nothing_changes(
    mem: MemoryManager, value: Any, error: type[Exception], match: str
) -> None:
    mem.variables.set("task", "before", user_id=USER)
    before = mem.export_user(USER)
    with pytest.raises(error, match=match):
        mem.variables.set("task", value, user_id=USER)
    with pytest.raises(error, match=match):
        mem.variables.set("other", value, user_id=USER, session_id="s1")
    assert mem.export_user(USER) == before


def test_a_value_of_the_largest_size_is_kept(mem: MemoryManager) -> None:
    mem.variables.set("notes", "n" * MAX_VALUE, user_id=USER)
    assert mem.variables.get("notes", user_id=USER) == "n" * MAX_VALUE


def test_one_scope_holds_at_most_max_variables(mem: MemoryManager) -> None:
    for i in range(MAX_VARIABLES):
        mem.variables.set(f"v{i}", "x", user_id=USER, session_id="s1")
    with pytest.raises(InvalidInputError, match=f"the limit is {MAX_VARIABLES}"):
        mem.variables.set("one_more", "x", user_id=USER, session_id="s1")
    assert mem.variables.get("one_more", user_id=USER, session_id="s1") is None
    mem.variables.set("v0", "changed", user_id=USER, session_id="s1")  # a change is not one more
    mem.variables.set("one_more", "x", user_id=USER, session_id="s2")  # another scope has room
    assert len(mem.variables.list(user_id=USER, session_id="s1")) == MAX_VARIABLES


@pytest.mark.parametrize(
    ("ids", "match"),
    [
        ({"user_id": ""}, "user_id"),
        ({"user_id": None}, "user_id is required"),
        ({"user_id": USER, "agent_id": ""}, "agent_id"),
        ({"user_id": USER, "session_id": " s1"}, "session_id"),
        ({"user_id": USER, "session_id": 5}, "session_id"),
    ],
)
def test_invalid_ids_raise_scope_error(mem: MemoryManager, ids: dict[str, Any], match: str) -> None:
    with pytest.raises(ScopeError, match=match):
        mem.variables.set("task", "x", **ids)
    with pytest.raises(ScopeError, match=match):
        mem.variables.list(**ids)


def test_the_layer_name_variables_is_reserved(db_url: str) -> None:
    with pytest.raises(ConfigurationError, match="'variables' is reserved"):
        MemoryManager(db=db_url, layers={"variables": LayerConfig()})


# ---- history --------------------------------------------------------------------------------------


def test_every_change_is_in_the_history(mem: MemoryManager) -> None:
    first = mem.variables.set("task", "draft", **scope("coder", "s1"))
    mem.variables.set("task", "draft", **scope("coder", "s1"))  # the same value: no change
    mem.variables.set("task", "review", **scope("coder", "s1"))
    mem.variables.delete("task", **scope("coder", "s1"))
    again = mem.variables.set("task", "ship", **scope("coder", "s1"))
    mem.variables.set("theme", "warm", **scope("coder", "s1"))
    mem.variables.set("task", "user-wide", **scope())

    events = mem.variables.history("task", **scope("coder", "s1"))
    assert [(e.op, e.old, e.new) for e in events] == [
        ("add", None, "draft"),
        ("update", "draft", "review"),
        ("delete", "review", None),
        ("add", None, "ship"),
    ]
    assert [e.item_id for e in events] == [first.id] * 3 + [again.id]
    assert {(e.layer, e.key, e.agent_id, e.session_id, e.source) for e in events} == {
        ("variables", "task", "coder", "s1", "manual")
    }
    assert [e.key for e in mem.variables.history(**scope("coder", "s1"))] == ["task"] * 4 + ["theme"]
    assert [e.new for e in mem.variables.history(**scope())] == ["user-wide"]
    # The user's history of everything shows variables beside items.
    mem.knowledge.add("Builds a churn model", user_id=USER)
    layers = [e.layer for e in mem.history(user_id=USER)]
    assert layers == ["variables", "knowledge"]


def test_a_sessions_variable_events_stay_in_the_session(mem: MemoryManager) -> None:
    """A session's variable is the session's: its events are in that session's history only, never
    in the user-wide one nor another session's."""
    mem.variables.set("task", "draft", **scope(session="s1"))
    mem.variables.set("task", "review", **scope(session="s1"))
    mem.variables.delete("task", **scope(session="s1"))
    mem.variables.set("theme", "warm", **scope())
    assert [(e.key, e.op) for e in mem.history(user_id=USER)] == [("theme", "add")]
    assert [(e.key, e.op) for e in mem.history(user_id=USER, session_id="s2")] == [("theme", "add")]
    session = [(e.key, e.op, e.session_id) for e in mem.history(user_id=USER, session_id="s1")]
    assert session == [
        ("task", "add", "s1"),
        ("task", "update", "s1"),
        ("task", "delete", "s1"),
        ("theme", "add", None),
    ]
    assert [e.op for e in mem.variables.history("task", **scope(session="s1"))] == ["add", "update", "delete"]


# ---- deleting sessions and users ------------------------------------------------------------------


def test_deleting_a_session_deletes_its_variables_and_their_history(mem: MemoryManager) -> None:
    set_everywhere(mem)
    mem.variables.set("task", "the writer's in the session", **scope("writer", "s1"))
    mem.variables.set("task", "another session's", **scope(session="s2"))
    mem.sessions.add("s1", [{"role": "user", "content": "Hello"}], user_id=USER, agent_id="coder")

    mem.sessions.delete("s1", user_id=USER)

    assert mem.variables.get("task", **scope("coder", "s1")) == "the agent's"
    assert mem.variables.get("task", **scope("writer", "s1")) == "user-wide"
    assert mem.variables.get("task", **scope(session="s2")) == "another session's"
    assert mem.variables.history(**scope("coder", "s1")) == []
    assert mem.variables.history(**scope(session="s1")) == []
    exported = mem.export_user(USER)
    assert "s1" not in {v["session_id"] for v in exported["variables"]}
    assert "s1" not in {e["session_id"] for e in exported["events"]}
    assert len(exported["variables"]) == 4


def test_a_session_without_messages_is_deleted_with_its_variables(mem: MemoryManager) -> None:
    mem.variables.set("task", "x", **scope(session="s1"))
    assert mem.sessions.delete("s1", user_id=USER) == 0
    assert mem.variables.list(**scope(session="s1")) == []


def test_delete_user_erases_variables_and_their_history(mem: MemoryManager) -> None:
    set_everywhere(mem)
    mem.variables.set("task", "marco's", user_id="marco")
    mem.delete_user(USER)
    exported = mem.export_user(USER)
    assert (exported["variables"], exported["events"]) == ([], [])
    assert mem.variables.list(**scope("coder", "s1")) == []
    assert mem.variables.get("task", user_id="marco") == "marco's"


# ---- export and import ----------------------------------------------------------------------------


def test_export_delete_import_is_exact(mem: MemoryManager) -> None:
    set_everywhere(mem)
    mem.variables.set("theme", "blunt", **scope())
    data = mem.export_user(USER)
    assert data["version"] == 4
    assert {(v["agent_id"], v["session_id"]) for v in data["variables"]} == {
        (None, None),
        ("coder", None),
        (None, "s1"),
        ("coder", "s1"),
    }
    mem.delete_user(USER)
    mem.import_user(data)
    assert mem.export_user(USER) == data
    assert mem.variables.get("task", **scope("coder", "s1")) == "the agent's in the session"
    assert [e.op for e in mem.variables.history("theme", **scope())] == ["add", "update"]
    mem.variables.set("task", "after the import", **scope())  # the imported row takes updates
    assert mem.variables.get("task", **scope("writer")) == "after the import"


def test_a_version_3_document_still_imports(mem: MemoryManager) -> None:
    mem.knowledge.add("Builds a churn model", user_id=USER)
    data = mem.export_user(USER)
    mem.delete_user(USER)
    old = {k: v for k, v in data.items() if k != "variables"} | {"version": 3}
    mem.import_user(old)
    assert mem.export_user(USER) == data


def _document(mem: MemoryManager) -> dict[str, Any]:
    set_everywhere(mem)
    data = mem.export_user(USER)
    mem.delete_user(USER)
    return data


def _first_variable(data: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**data, "variables": [{**data["variables"][0], **changes}, *data["variables"][1:]]}


BAD_IMPORTS: dict[str, tuple[Any, type[Exception], str]] = {
    "bad name": (lambda d: _first_variable(d, name="not-a-name"), InvalidInputError, "variable name"),
    "reserved name": (lambda d: _first_variable(d, name="none"), InvalidInputError, "variable name"),
    "long value": (
        lambda d: _first_variable(d, value="x" * (MAX_VALUE + 1)),
        InvalidInputError,
        "the limit is",
    ),
    "value not text": (lambda d: _first_variable(d, value=3), InvalidInputError, "not an agentmem export"),
    "secret value": (
        lambda d: _first_variable(d, value="key sk_live_4eC39HqLyjWDarjtT1zdp7dc"),
        SecretError,
        "secret",
    ),
    "bad session": (lambda d: _first_variable(d, session_id=""), ScopeError, "session_id"),
    "twice in a scope": (
        lambda d: {**d, "variables": [*d["variables"], {**d["variables"][0], "id": "v_other"}]},
        InvalidInputError,
        "a variable appears twice",
    ),
    "id twice": (
        lambda d: _first_variable(d, id=d["variables"][1]["id"]),
        InvalidInputError,
        "a variable id appears twice",
    ),
    "too many": (
        lambda d: {
            **d,
            "variables": [
                {**d["variables"][0], "id": f"v_{i}", "name": f"v{i}"} for i in range(MAX_VARIABLES + 1)
            ],
        },
        InvalidInputError,
        f"the limit is {MAX_VARIABLES}",
    ),
    "history of a bad name": (
        lambda d: {
            **d,
            "events": [{**e, "key": "a b"} if e["layer"] == "variables" else e for e in d["events"]],
        },
        InvalidInputError,
        "variable name",
    ),
}


@pytest.mark.parametrize("case", list(BAD_IMPORTS))
def test_an_import_checks_variables_like_new_ones(mem: MemoryManager, case: str) -> None:
    change, error, match = BAD_IMPORTS[case]
    data = _document(mem)
    with pytest.raises(error, match=match):
        mem.import_user(change(data))
    assert mem.export_user(USER)["variables"] == []
    mem.import_user(data)  # the document itself is fine
    assert mem.export_user(USER) == data


def test_an_import_refuses_a_variable_id_another_user_has(mem: MemoryManager) -> None:
    data = _document(mem)
    taken = mem.variables.set("task", "marco's", user_id="marco")
    with pytest.raises(ConflictError, match="variable id"):
        mem.import_user(_first_variable(data, id=taken.id))
    assert mem.export_user(USER)["variables"] == []
