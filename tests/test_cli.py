"""The ``agentmem`` command, run in-process through ``main([...])`` and once as the installed script."""

from __future__ import annotations

import io
import json
import os
import shlex
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from agentmem import MemoryManager
from agentmem.cli import format_table, main


@pytest.fixture
def backend() -> str:
    """SQLite only: the command line; the store is tested on both backends elsewhere."""
    return "sqlite"


class _Tty(io.StringIO):
    """A stdin that claims to be a terminal, with a typed answer."""

    def isatty(self) -> bool:
        return True


@pytest.fixture
def stored(db_url: str) -> dict[str, str]:
    """Memory for sarah (shared and one agent-private item) and a little for marco; returns item ids."""
    with MemoryManager(db=db_url) as mem:
        mem.profile.update(user_id="sarah", name="Sarah", role="data scientist", expertise=["pandas", "sql"])
        mem.policies.update(user_id="sarah", response_style="concise", rules=["no emojis"])
        fact = mem.knowledge.add("Builds a churn model for Acme", user_id="sarah", topics=["work"])
        liked = mem.feedback.add(
            "Liked the pandas examples", user_id="sarah", sentiment="positive", target="code"
        )
        mem.feedback.add("Liked the pandas examples", user_id="sarah", sentiment="positive", target="code")
        private = mem.knowledge.add("Reviews <script> & SQL carefully", user_id="sarah", agent_id="review")
        marco = mem.knowledge.add("Runs Kubernetes clusters", user_id="marco")
    return {"fact": fact, "liked": liked, "private": private, "marco": marco}


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# ---- show ------------------------------------------------------------------------------------


def test_show_prints_one_aligned_table_per_layer(
    capsys: pytest.CaptureFixture[str], db_url: str, stored: dict[str, str]
) -> None:
    code, out, err = run(capsys, "--db", db_url, "show", "sarah")
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == "memory of sarah shared by all agents"
    shared = lines[: lines.index("memory of sarah private to agent review")]
    for title in ("policies (2)", "profile (3)", "knowledge (1)", "feedback (1)"):
        assert title in shared
    assert not any("Reviews" in line for line in shared)
    feedback_row = next(line for line in lines if stored["liked"] in line)
    assert feedback_row.split() == [
        stored["liked"],
        "positive",
        "2",
        "Liked",
        "the",
        "pandas",
        "examples",
        "code",
    ]
    # Profile rows follow the schema's field order, and every column of a table starts at one offset.
    profile = lines[lines.index("profile (3)") + 1 : lines.index("profile (3)") + 6]
    assert [row.split()[1] for row in profile[2:]] == ["name", "role", "expertise"]
    assert len({row.index(row.split()[2]) for row in profile[2:]}) == 1
    assert "pandas, sql" in out


def test_show_lists_each_agents_private_memory_after_the_shared(
    capsys: pytest.CaptureFixture[str], db_url: str, stored: dict[str, str]
) -> None:
    with MemoryManager(db=db_url) as mem:
        mem.policies.update(user_id="sarah", agent_id="chat", response_style="one line")
    code, out, err = run(capsys, "--db", db_url, "show", "sarah")
    assert (code, err) == (0, "")
    titles = [line for line in out.splitlines() if line.startswith("memory of")]
    assert titles == [
        "memory of sarah shared by all agents",
        "memory of sarah private to agent chat",
        "memory of sarah private to agent review",
    ]
    chat, review = out.split("memory of sarah private to agent ")[1:]
    assert "one line" in chat
    assert "Reviews" not in chat
    assert review.splitlines()[2:4] == ["knowledge (1)", "  id                          text"]
    assert stored["private"] in review
    assert "Reviews <script> & SQL carefully" in review


def test_show_finds_memory_an_agent_keeps_only_privately(
    capsys: pytest.CaptureFixture[str], db_url: str
) -> None:
    with MemoryManager(db=db_url) as mem:  # what an Agent(agent_id="tutor") learns is private to it
        mem.profile.update(user_id="kim", agent_id="tutor", name="Kim")
    code, out, _ = run(capsys, "--db", db_url, "show", "kim")
    assert code == 0
    assert out.splitlines()[0] == "memory of kim private to agent tutor"
    assert "Kim" in out
    assert run(capsys, "--db", db_url, "context", "kim") == (
        0,
        "",
        "no memory for kim shared by all agents (private memory: tutor; pass --agent)\n",
    )
    assert "name: Kim" in run(capsys, "--db", db_url, "context", "kim", "--agent", "tutor")[1]


def test_show_with_agent_adds_private_items_and_an_agent_column(
    capsys: pytest.CaptureFixture[str], db_url: str, stored: dict[str, str]
) -> None:
    code, out, _ = run(capsys, "--db", db_url, "show", "sarah", "--agent", "review")
    assert code == 0
    assert out.splitlines()[0] == "memory of sarah, as seen by agent review"
    row = next(line for line in out.splitlines() if stored["private"] in line)
    assert row.split()[1] == "review"
    assert "knowledge (2)" in out


def test_show_unknown_user(capsys: pytest.CaptureFixture[str], db_url: str) -> None:
    assert run(capsys, "--db", db_url, "show", "nobody") == (0, "no memory for nobody\n", "")


def test_show_uses_the_env_url_when_no_db_is_given(
    capsys: pytest.CaptureFixture[str], db_url: str, stored: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGENTMEM_DB_URL", db_url)
    code, out, _ = run(capsys, "show", "sarah")
    assert code == 0
    assert stored["fact"] in out


def test_variables_lists_what_a_scope_sees_and_where_each_was_set(
    capsys: pytest.CaptureFixture[str], db_url: str
) -> None:
    with MemoryManager(db=db_url) as mem:
        mem.variables.set("goal", "a churn model", user_id="sarah")
        mem.variables.set("task", "clean data", user_id="sarah", agent_id="coder")
        mem.variables.set("task", "pick features", user_id="sarah", agent_id="coder", session_id="s7")
    code, out, _ = run(capsys, "--db", db_url, "variables", "sarah", "--agent", "coder", "--session", "s7")
    assert code == 0
    assert out.splitlines()[0].split() == ["name", "value", "set", "for", "agent", "set", "for", "session"]
    assert [line.split()[-2:] for line in out.splitlines()[2:]] == [["-", "-"], ["coder", "s7"]]
    assert "pick features" in out
    assert "clean data" not in out  # the session's own value wins
    code, out, _ = run(capsys, "--db", db_url, "variables", "sarah")
    assert (code, "task" in out) == (0, False)
    assert run(capsys, "--db", db_url, "variables", "marco") == (
        0,
        "no variables for marco in this scope\n",
        "",
    )
    assert run(capsys, "--db", db_url, "variables", "sarah", "--session", " s")[0] == 1  # a bad id


def test_format_table_aligns_wide_characters() -> None:
    lines = format_table(["a", "b"], [["日本", "x"], ["abc", "y\nz"]], indent="")
    assert lines == ["a     b", "----  ---", "日本  x", "abc   y z"]


# ---- context ---------------------------------------------------------------------------------


def test_context_is_parseable_xml(
    capsys: pytest.CaptureFixture[str], db_url: str, stored: dict[str, str]
) -> None:
    code, out, _ = run(
        capsys, "--db", db_url, "context", "sarah", "--agent", "review", "--query", "churn", "--budget", "500"
    )
    assert code == 0
    root = ET.fromstring(f"<memory>{out}</memory>")
    assert [child.tag for child in root] == [
        "user_policies",
        "user_profile",
        "user_knowledge",
        "user_feedback",
    ]
    knowledge = root.find("user_knowledge")
    assert knowledge is not None
    assert knowledge.text is not None
    assert "Reviews <script> & SQL carefully" in knowledge.text  # escaped in the output, intact once parsed


def test_context_budget_limits_the_output(
    capsys: pytest.CaptureFixture[str], db_url: str, stored: dict[str, str]
) -> None:
    _, full, _ = run(capsys, "--db", db_url, "context", "sarah")
    _, small, _ = run(capsys, "--db", db_url, "context", "sarah", "--budget", "20")
    assert len(small) < len(full)
    ET.fromstring(f"<memory>{small}</memory>")


def test_context_without_memory_prints_nothing_on_stdout(
    capsys: pytest.CaptureFixture[str], db_url: str
) -> None:
    assert run(capsys, "--db", db_url, "context", "nobody") == (0, "", "no memory for nobody\n")


def test_context_rejects_a_negative_budget_as_usage_error(
    capsys: pytest.CaptureFixture[str], db_url: str
) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--db", db_url, "context", "sarah", "--budget", "-1"])
    assert exc.value.code == 2
    assert "--budget" in capsys.readouterr().err


# ---- export / delete-user / import -----------------------------------------------------------


def test_export_delete_import_round_trips(
    capsys: pytest.CaptureFixture[str], db_url: str, stored: dict[str, str], tmp_path: Path
) -> None:
    code, exported, _ = run(capsys, "--db", db_url, "export", "sarah")
    assert code == 0
    doc = json.loads(exported)
    assert doc["user_id"] == "sarah"
    assert len(doc["items"]) == 8
    dump = tmp_path / "sarah.json"
    dump.write_text(exported, encoding="utf-8")

    assert run(capsys, "--db", db_url, "delete-user", "sarah", "--yes") == (
        0,
        "deleted 8 items of sarah\n",
        "",
    )
    assert run(capsys, "--db", db_url, "show", "sarah")[1] == "no memory for sarah\n"

    assert run(capsys, "--db", db_url, "import", str(dump)) == (0, "imported 8 items for user sarah\n", "")
    assert run(capsys, "--db", db_url, "export", "sarah")[1] == exported


def test_export_to_a_file_keeps_non_ascii(
    capsys: pytest.CaptureFixture[str], db_url: str, tmp_path: Path
) -> None:
    with MemoryManager(db=db_url) as mem:
        mem.profile.update(user_id="aiko", name="愛子", location="Ōsaka")
    target = tmp_path / "aiko.json"
    code, out, _ = run(capsys, "--db", db_url, "export", "aiko", "--output", str(target))
    assert (code, out) == (0, f"exported 2 items of aiko to {target}\n")
    text = target.read_text(encoding="utf-8")
    assert "愛子" in text
    assert "Ōsaka" in text
    assert text.startswith('{\n  "format": "agentmem.export"')


def test_import_from_stdin(
    capsys: pytest.CaptureFixture[str],
    db_url: str,
    stored: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, exported, _ = run(capsys, "--db", db_url, "export", "marco")
    other = f"sqlite:///{tmp_path / 'other.db'}"
    monkeypatch.setattr(sys, "stdin", io.StringIO(exported))
    assert run(capsys, "--db", other, "import", "-") == (0, "imported 1 items for user marco\n", "")
    assert stored["marco"] in run(capsys, "--db", other, "show", "marco")[1]


def test_import_over_existing_memory_is_an_error(
    capsys: pytest.CaptureFixture[str], db_url: str, stored: dict[str, str], tmp_path: Path
) -> None:
    dump = tmp_path / "marco.json"
    assert run(capsys, "--db", db_url, "export", "marco", "-o", str(dump))[0] == 0
    code, out, err = run(capsys, "--db", db_url, "import", str(dump))
    assert (code, out) == (1, "")
    assert err.startswith("error: ")
    assert "already has memory" in err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "expected a JSON object"),
        ('{"user_id": "x"}', "not an agentmem export"),
    ],
)
def test_import_rejects_bad_documents(
    capsys: pytest.CaptureFixture[str], db_url: str, tmp_path: Path, content: str, message: str
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(content, encoding="utf-8")
    code, _, err = run(capsys, "--db", db_url, "import", str(bad))
    assert code == 1
    assert err.startswith("error: ")
    assert message in err


def test_import_of_a_missing_file_is_an_error(
    capsys: pytest.CaptureFixture[str], db_url: str, tmp_path: Path
) -> None:
    code, _, err = run(capsys, "--db", db_url, "import", str(tmp_path / "missing.json"))
    assert code == 1
    assert err.startswith("error: cannot read")


def test_delete_user_without_yes_refuses_when_stdin_is_not_a_tty(
    capsys: pytest.CaptureFixture[str],
    db_url: str,
    stored: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("sarah\n"))  # piped input is never a confirmation
    code, out, err = run(capsys, "--db", db_url, "delete-user", "sarah")
    assert (code, out) == (2, "")
    assert "--yes" in err
    assert "refusing" in err
    with MemoryManager(db=db_url) as mem:
        assert len(mem.get(user_id="sarah").items) == 7


def test_delete_user_asks_on_a_terminal(
    capsys: pytest.CaptureFixture[str],
    db_url: str,
    stored: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sys, "stdin", _Tty("no\n"))
    code, _, err = run(capsys, "--db", db_url, "delete-user", "sarah")
    assert code == 2
    assert "nothing deleted" in err
    monkeypatch.setattr(sys, "stdin", _Tty("sarah\n"))
    code, out, _ = run(capsys, "--db", db_url, "delete-user", "sarah")
    assert code == 0
    assert "Type the user id to confirm" in out
    assert out.endswith("deleted 8 items of sarah\n")


# ---- forget ----------------------------------------------------------------------------------


def test_forget_removes_one_item(
    capsys: pytest.CaptureFixture[str], db_url: str, stored: dict[str, str]
) -> None:
    code, out, _ = run(capsys, "--db", db_url, "forget", "sarah", stored["fact"])
    assert (code, out) == (
        0,
        f"forgot {stored['fact']} (knowledge: Builds a churn model for Acme) of sarah\n",
    )
    assert stored["fact"] not in run(capsys, "--db", db_url, "show", "sarah")[1]


def test_forget_of_a_private_item_needs_the_agent(
    capsys: pytest.CaptureFixture[str], db_url: str, stored: dict[str, str]
) -> None:
    assert run(capsys, "--db", db_url, "forget", "sarah", stored["private"])[0] == 1
    code, _, _ = run(capsys, "--db", db_url, "forget", "sarah", stored["private"], "--agent", "review")
    assert code == 0


def test_forget_of_another_users_item_is_an_error(
    capsys: pytest.CaptureFixture[str], db_url: str, stored: dict[str, str]
) -> None:
    code, out, err = run(capsys, "--db", db_url, "forget", "sarah", stored["marco"])
    assert (code, out) == (1, "")
    assert err == f"error: no live memory item {stored['marco']!r} for user 'sarah'\n"
    with MemoryManager(db=db_url) as mem:
        assert [i.id for i in mem.knowledge.list(user_id="marco")] == [stored["marco"]]


# ---- errors and usage ------------------------------------------------------------------------


def test_library_errors_exit_1_with_a_message(capsys: pytest.CaptureFixture[str], db_url: str) -> None:
    assert run(capsys, "--db", "not-a-url", "show", "sarah")[:2] == (1, "")
    code, _, err = run(capsys, "--db", db_url, "show", " sarah")
    assert code == 1
    assert err.startswith("error: user_id")


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in ([], ["show"], ["frobnicate"]):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2
    capsys.readouterr()


def test_global_options_work_before_or_after_the_subcommand(
    capsys: pytest.CaptureFixture[str], db_url: str, stored: dict[str, str], tmp_path: Path
) -> None:
    dump = tmp_path / "sarah.json"
    for args in (
        ["show", "sarah"],
        ["show", "sarah", "--agent", "review"],
        ["context", "sarah", "--query", "churn"],
        ["export", "sarah"],
        ["export", "sarah", "-o", str(dump)],
    ):
        before = run(capsys, "--db", db_url, *args)
        after = run(capsys, *args, "--db", db_url)
        assert before == after
        assert before[0] == 0
        assert before[1]
    assert run(capsys, "delete-user", "sarah", "--yes", "--db", db_url)[:2] == (
        0,
        "deleted 8 items of sarah\n",
    )
    assert run(capsys, "import", str(dump), "--db", db_url)[:2] == (0, "imported 8 items for user sarah\n")
    code, out, _ = run(capsys, "forget", "sarah", stored["fact"], "--db", db_url)
    assert (code, out.split()[:2]) == (0, ["forgot", stored["fact"]])
    # A command that opens no database takes --db on either side too.
    assert run(capsys, "prompts", "export", str(tmp_path / "p1"), "--db", db_url)[0] == 0
    assert run(capsys, "--db", db_url, "prompts", "export", str(tmp_path / "p2"))[0] == 0
    # Given on both sides, the one after the subcommand wins.
    other = f"sqlite:///{tmp_path / 'other.db'}"
    assert run(capsys, "--db", other, "show", "marco", "--db", db_url)[1].startswith("memory of marco")
    assert run(capsys, "--db", db_url, "show", "marco", "--db", other)[1] == "no memory for marco\n"


# ---- demo ------------------------------------------------------------------------------------


def test_demo_shows_three_users_and_isolation(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    code, out, err = run(capsys, "demo", "--db", url)
    assert (code, err) == (0, "")
    blocks = out.split("\n-- ")
    for user in ("sarah", "marco", "aiko"):
        block = next(b for b in blocks if b.startswith(user))
        xml = block[block.index("<user_policies>") :].strip()
        root = ET.fromstring(f"<memory>{xml}</memory>")
        profile = root.find("user_profile")
        assert profile is not None
        assert profile.text is not None
        assert f"name: {user.capitalize()}" in profile.text
    assert "never use emojis" in out
    assert "nothing to learn (acknowledgement or greeting only; 0 model calls)" in out
    assert "(about: Use df.fillna" in out  # feedback knows which answer it is about
    assert "in sarah's memory: nothing" in out
    assert "NotFoundError: no live memory item" in out
    assert "see it: no" in out
    assert out.rstrip().endswith(f"agentmem show marco --db {url}")


def test_demo_is_repeatable_and_keeps_other_users(capsys: pytest.CaptureFixture[str], db_url: str) -> None:
    with MemoryManager(db=db_url) as mem:
        mem.profile.update(user_id="someone", name="Someone")
    first = run(capsys, "--db", db_url, "demo")
    second = run(capsys, "demo", "--db", db_url)
    assert first[0] == second[0] == 0
    with MemoryManager(db=db_url) as mem:
        assert len(mem.knowledge.list(user_id="sarah")) == 1  # replaced, not duplicated
        assert mem.profile.get(user_id="someone").name == "Someone"


def test_the_demo_prints_a_command_that_works_from_any_folder_for_a_relative_db(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    there, elsewhere = tmp_path / "demo", tmp_path / "elsewhere"
    there.mkdir()
    elsewhere.mkdir()
    monkeypatch.chdir(there)
    code, out, _ = run(capsys, "demo", "--db", "sqlite:///rel dir/demo.db")
    assert code == 0
    printed = shlex.split(out.splitlines()[-1].removeprefix("Inspect it: "))
    monkeypatch.chdir(elsewhere)
    assert run(capsys, *printed[1:])[1].startswith("memory of marco")


# ---- the installed script --------------------------------------------------------------------


@pytest.mark.parametrize("venv_on_path", [True, False], ids=["venv-on-PATH", "venv-not-on-PATH"])
def test_the_command_the_demo_prints_shows_the_demo_users_memory(tmp_path: Path, venv_on_path: bool) -> None:
    """``agentmem demo`` then exactly the command it prints, typed into a shell in another folder."""
    home, there, elsewhere = tmp_path / "home", tmp_path / "demo", tmp_path / "elsewhere"
    for folder in (home, there, elsewhere):
        folder.mkdir()
    script = Path(sys.executable).parent / "agentmem"
    path = os.environ.get("PATH", "").split(os.pathsep)
    path = [p for p in path if p and Path(p).resolve() != script.parent.resolve()]
    if venv_on_path:
        path.insert(0, str(script.parent))
    env = {
        **os.environ,
        "HOME": str(home),
        "PATH": os.pathsep.join(path),
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    }
    env.pop("AGENTMEM_DB_URL", None)
    demo = subprocess.run([script, "demo"], cwd=there, env=env, capture_output=True, text=True, timeout=120)
    assert demo.returncode == 0, demo.stderr
    hint = demo.stdout.strip().splitlines()[-1]
    assert hint.startswith("Inspect it: ")
    command = hint.removeprefix("Inspect it: ")
    assert command.split()[0] == ("agentmem" if venv_on_path else str(script))

    show = subprocess.run(
        ["sh", "-c", command], cwd=elsewhere, env=env, capture_output=True, text=True, timeout=120
    )
    assert show.returncode == 0, show.stderr
    assert show.stdout.startswith("memory of marco shared by all agents\n")
    assert "backend engineer" in show.stdout
    assert "Finly" in show.stdout
    private = show.stdout.split("memory of marco private to agent code-review\n")[1]
    assert "always number review comments" in private
    assert not (home / ".agentmem").exists()  # the demo's database, not the default one
    assert not list(elsewhere.iterdir())


def test_cli_never_imports_litellm(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'd.db'}"
    code = (
        "import sys\n"
        "from agentmem.cli import main\n"
        f"assert main(['demo', '--db', {url!r}]) == 0\n"
        f"assert main(['--db', {url!r}, 'context', 'marco', '--query', 'go', '--budget', '50']) == 0\n"
        "assert 'litellm' not in sys.modules, 'litellm was imported'\n"
    )
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


# ---- users -------------------------------------------------------------------------------------


def test_the_users_command_prints_a_table(db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--db", db_url, "users"]) == 0
    assert capsys.readouterr().out == "no users with memory\n"
    with MemoryManager(db=db_url) as mem:
        mem.knowledge.add("Lives in York", user_id="sarah")
        mem.sessions.add("s1", [{"role": "user", "content": "hi"}], user_id="bob")
        last = {u.user_id: u.last_activity for u in mem.list_users()}

    assert main(["users", "--db", db_url]) == 0

    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "users (2)"
    assert lines[1].split() == ["user", "items", "sessions", "last", "activity", "(UTC)"]
    assert set(lines[2].replace(" ", "")) == {"-"}
    assert lines[3].split() == ["bob", "0", "1", *f"{last['bob']:%Y-%m-%d %H:%M:%S}".split()]
    assert lines[4].split() == ["sarah", "1", "0", *f"{last['sarah']:%Y-%m-%d %H:%M:%S}".split()]
    assert lines[3].index("0") == lines[1].index("items")  # aligned columns


# ---- backup and restore ----------------------------------------------------------------------------


def test_backup_then_restore_into_a_new_database(
    capsys: pytest.CaptureFixture[str], db_url: str, stored: dict[str, str], tmp_path: Path
) -> None:
    backup, target = tmp_path / "nightly.db", f"sqlite:///{tmp_path / 'restored.db'}"
    with MemoryManager(db=db_url) as mem:
        mem.knowledge.add("Reviewers want the diff first", agent_id="review")  # the agent's own memory

    assert run(capsys, "--db", db_url, "backup", str(backup)) == (
        0,
        f"backed up 2 users and 1 agents to {backup} (a SQLite database file)\n",
        "",
    )
    code, out, err = run(capsys, "--db", db_url, "backup", str(backup))
    assert (code, out) == (1, "")
    assert err.startswith(f"error: {backup} already exists; nothing written")
    assert run(capsys, "--db", db_url, "backup", str(backup), "--force")[0] == 0

    assert run(capsys, "restore", str(backup), "--db", target) == (0, f"restored 2 users from {backup}\n", "")
    code, out, err = run(capsys, "restore", str(backup), "--db", target)
    assert (code, out) == (1, "")
    assert "restore needs an empty database" in err
    with MemoryManager(db=db_url) as source, MemoryManager(db=target) as restored:
        for user in ("sarah", "marco"):
            assert restored.export_user(user) == source.export_user(user)
        assert restored.export_agent("review") == source.export_agent("review")


# ---- cleanup ---------------------------------------------------------------------------------


def test_cleanup_deletes_what_is_older_than_the_period_and_prints_the_counts(
    capsys: pytest.CaptureFixture[str], db_url: str
) -> None:
    from datetime import UTC, datetime, timedelta

    long_ago = datetime.now(UTC) - timedelta(days=40)
    with MemoryManager(db=db_url, clock=lambda: long_ago) as mem:
        for user in ("sarah", "marco"):
            mem.sessions.add("old", [{"role": "user", "content": "hi"}], user_id=user)
            mem.knowledge.add("At a conference", user_id=user, expires_at=long_ago + timedelta(days=1))
    with MemoryManager(db=db_url) as mem:
        mem.sessions.add("new", [{"role": "user", "content": "hello"}], user_id="sarah")

    code, out, err = run(capsys, "--db", db_url, "cleanup", "--older-than", "30d", "--user", "sarah")
    assert (code, err) == (0, "")
    assert out == "deleted 0 messages, 1 sessions, 0 pending, 1 expired of sarah\n"
    code, out, _ = run(capsys, "cleanup", "--db", db_url, "--older-than", "720h", "--what", "expired,closed")
    assert (code, out) == (0, "deleted 0 closed, 1 expired\n")
    with MemoryManager(db=db_url) as mem:
        assert [s.session_id for s in mem.sessions.list(user_id="sarah")] == ["new"]
        assert [s.session_id for s in mem.sessions.list(user_id="marco")] == ["old"]  # not asked for
        assert [e.reason for e in mem.history(user_id="marco") if e.op == "delete"] == ["expired"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--older-than", "30"], "not a duration: '30'"),
        (["--older-than", "thirty days"], "not a duration"),
        (["--older-than=-3d"], "not a duration"),
        (["--older-than", "999999999w"], "longer than any date goes back"),
        (["--older-than", "30d", "--what", "messages,facts"], "unknown kind(s) facts"),
        ([], "--older-than"),
    ],
)
def test_cleanup_refuses_a_bad_period_or_kind(
    capsys: pytest.CaptureFixture[str], db_url: str, argv: list[str], message: str
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--db", db_url, "cleanup", *argv])
    assert exited.value.code == 2
    assert message in capsys.readouterr().err
