"""The ``agentmem`` command: list users, inspect, export, import and delete their memory, list their
memory variables; delete what is older than a retention period; back up and restore the whole database;
run the offline demo; copy the default extraction prompts into a folder to customise them; run the REST
server and manage its API keys; serve one user's memory to an MCP client over stdio (``mcp``); embed
items for semantic search after a change of embedding model (``reembed``).

Stdlib ``argparse`` only. Nothing here (or anything it imports) loads litellm, so every command
starts fast and works without an API key or network; ``serve`` alone imports FastAPI and uvicorn,
``mcp`` the MCP SDK's server, and ``reembed`` litellm and numpy.
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import json
import os
import re
import shlex
import shutil
import sys
import unicodedata
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy.exc import SQLAlchemyError

from . import __version__
from .errors import AgentMemError
from .manager import MemoryManager
from .prompts import default_prompts_dir
from .records import MemoryItem
from .server.keys import ApiKeys
from .store.retention import CLEANUP_KINDS, DEFAULT_CLEANUP, CleanupKind

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_REFUSED = 2  # the same code argparse uses for usage errors: the command as given is not acceptable


class CliError(Exception):
    """A user-facing failure outside the library's error family (bad file, invalid JSON)."""


# ---- plain-text tables -----------------------------------------------------------------------


def _cell(value: object) -> str:
    # A memory may hold newlines or tabs; one row per item keeps the table aligned.
    text = " ".join(str(value).split())
    return "".join(ch if ch.isprintable() else "?" for ch in text)


def _width(text: str) -> int:
    # Wide (e.g. CJK) characters take two terminal columns; combining marks take none.
    return sum(
        0 if unicodedata.combining(ch) else 2 if unicodedata.east_asian_width(ch) in "WF" else 1
        for ch in text
    )


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]], indent: str = "  ") -> list[str]:
    """Render rows as aligned plain-text lines under a header and a dashed rule.

    Args:
        headers: the column titles.
        rows: the cells, one sequence per row, as many as ``headers``.
        indent: prefix for every line.

    Returns:
        The lines, without trailing whitespace.
    """
    table = [list(headers), *([_cell(c) for c in row] for row in rows)]
    widths = [max(_width(row[i]) for row in table) for i in range(len(headers))]
    table.insert(1, ["-" * w for w in widths])
    lines = []
    for row in table:
        padded = [cell + " " * (w - _width(cell)) for cell, w in zip(row, widths, strict=True)]
        lines.append((indent + "  ".join(padded)).rstrip())
    return lines


def _layer_tables(mem: MemoryManager, items: list[MemoryItem], agent_column: bool) -> list[list[str]]:
    """One table per layer that has items, in authority order (the order compile renders)."""
    blocks = []
    for name in mem.layers:
        layer_items = [i for i in items if i.layer == name]
        if not layer_items:
            continue
        headers, rows = mem.layers[name].columns(layer_items)
        scope = ["agent"] if agent_column else []
        cells = [[item.id, *([item.agent_id or "-"] if agent_column else []), *row] for item, row in rows]
        blocks.append([f"{name} ({len(layer_items)})", *format_table(["id", *scope, *headers], cells)])
    return blocks


# ---- commands --------------------------------------------------------------------------------


def _show(mem: MemoryManager, args: argparse.Namespace, out: TextIO) -> int:
    if args.agent is not None:  # what that agent sees: shared and private items, told apart by a column
        items = mem.get(user_id=args.user, agent_id=args.agent).items
        sections = [(f"memory of {args.user}, as seen by agent {args.agent}", items, True)]
    else:  # everything: the shared memory, then each agent's private memory
        sections = [(f"memory of {args.user} shared by all agents", mem.get(user_id=args.user).items, False)]
        for agent in mem.agents(args.user):
            private = [i for i in mem.get(user_id=args.user, agent_id=agent).items if i.agent_id == agent]
            sections.append((f"memory of {args.user} private to agent {agent}", private, False))
    blocks = []
    for title, items, agent_column in sections:
        if items:
            blocks += [[title], *_layer_tables(mem, items, agent_column)]
    if not blocks:
        print(f"no memory for {args.user}", file=out)
        return EXIT_OK
    print("\n\n".join("\n".join(block) for block in blocks), file=out)
    return EXIT_OK


def _variables(mem: MemoryManager, args: argparse.Namespace, out: TextIO) -> int:
    found = mem.variables.list(user_id=args.user, agent_id=args.agent, session_id=args.session)
    if not found:
        print(f"no variables for {args.user} in this scope", file=out)
        return EXIT_OK
    rows = [[v.name, v.value, v.agent_id or "-", v.session_id or "-"] for v in found]
    print("\n".join(format_table(["name", "value", "set for agent", "set for session"], rows)), file=out)
    return EXIT_OK


def _context(mem: MemoryManager, args: argparse.Namespace, out: TextIO) -> int:
    xml = mem.compile(user_id=args.user, agent_id=args.agent, query=args.query, token_budget=args.budget)
    if xml:
        print(xml, file=out)
    else:
        # stdout stays empty (it is meant for a prompt); say why on stderr.
        agents = mem.agents(args.user) if args.agent is None else []
        hint = f" shared by all agents (private memory: {', '.join(agents)}; pass --agent)" if agents else ""
        print(f"no memory for {args.user}{hint}", file=sys.stderr)
    return EXIT_OK


def _export(mem: MemoryManager, args: argparse.Namespace, out: TextIO) -> int:
    data = mem.export_user(args.user)
    text = json.dumps(data, indent=2, ensure_ascii=False)
    if not data["items"]:
        print(f"note: no memory for {args.user}; the export is empty", file=sys.stderr)
    if args.output is None:
        print(text, file=out)
        return EXIT_OK
    try:
        Path(args.output).write_text(text + "\n", encoding="utf-8")
    except OSError as exc:
        raise CliError(f"cannot write {args.output}: {exc.strerror or exc}") from exc
    print(f"exported {len(data['items'])} items of {args.user} to {args.output}", file=out)
    return EXIT_OK


def _read_json(source: str) -> Any:
    try:
        raw = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except OSError as exc:
        raise CliError(f"cannot read {source}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise CliError(f"{source} is not UTF-8 text: {exc}") from exc
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        name = "stdin" if source == "-" else source
        raise CliError(f"{name} is not valid JSON: {exc}") from exc


def _import(mem: MemoryManager, args: argparse.Namespace, out: TextIO) -> int:
    data = _read_json(args.file)
    if not isinstance(data, dict):
        # Checked here for a clearer message than the validator gives for a non-object document.
        name = "stdin" if args.file == "-" else args.file
        raise CliError(f"{name} is not an agentmem export: expected a JSON object")
    count = mem.import_user(data)
    # import_user has validated the document, so it is a mapping with a user_id.
    print(f"imported {count} items for user {data['user_id']}", file=out)
    return EXIT_OK


def _forget(mem: MemoryManager, args: argparse.Namespace, out: TextIO) -> int:
    change = mem.forget(args.item_id, user_id=args.user, agent_id=args.agent)
    # Collection keys are normalised text; the entry's own text is what a person recognises.
    what = change.old.get("text", change.key) if isinstance(change.old, dict) else change.key
    print(f"forgot {change.item_id} ({change.layer}: {_cell(what)}) of {args.user}", file=out)
    return EXIT_OK


def _users(mem: MemoryManager, args: argparse.Namespace, out: TextIO) -> int:
    found = mem.list_users()
    if not found:
        print("no users with memory", file=out)
        return EXIT_OK
    rows = [
        [
            user.user_id,
            str(user.items),
            str(user.sessions),
            "-" if user.last_activity is None else f"{user.last_activity:%Y-%m-%d %H:%M:%S}",
        ]
        for user in found
    ]
    headers = ["user", "items", "sessions", "last activity (UTC)"]
    print("\n".join([f"users ({len(found)})", *format_table(headers, rows)]), file=out)
    return EXIT_OK


def _backup(mem: MemoryManager, args: argparse.Namespace, out: TextIO) -> int:
    made = mem.backup(args.path, overwrite=args.force)
    what = "a SQLite database file" if made.kind == "sqlite" else "JSON lines, one export per user or agent"
    print(f"backed up {made.users} users and {made.agents} agents to {made.path} ({what})", file=out)
    return EXIT_OK


def _restore(mem: MemoryManager, args: argparse.Namespace, out: TextIO) -> int:
    count = mem.restore(args.path)
    print(f"restored {count} users from {args.path}", file=out)
    return EXIT_OK


def _confirm_delete(user: str, out: TextIO) -> bool:
    print(f"Delete all memory of {user!r}, history included? This cannot be undone.", file=out)
    print("Type the user id to confirm: ", end="", file=out, flush=True)
    return sys.stdin.readline().strip() == user  # "" at end of input: not confirmed


def _delete_user(mem: MemoryManager, args: argparse.Namespace, out: TextIO) -> int:
    if not args.yes:
        interactive = sys.stdin is not None and sys.stdin.isatty()
        if not interactive:
            # Scripts must opt in explicitly: never delete a user because nobody could answer.
            print(
                f"error: refusing to delete {args.user!r} without confirmation; pass --yes to delete",
                file=sys.stderr,
            )
            return EXIT_REFUSED
        if not _confirm_delete(args.user, out):
            print("not confirmed; nothing deleted", file=sys.stderr)
            return EXIT_REFUSED
    count = mem.delete_user(args.user)
    print(f"deleted {count} items of {args.user}", file=out)
    return EXIT_OK


def _cleanup(mem: MemoryManager, args: argparse.Namespace, out: TextIO) -> int:
    kinds = args.what or DEFAULT_CLEANUP
    report = mem.cleanup(older_than=args.older_than, what=kinds, user_id=args.user)
    counts = ", ".join(f"{count} {kind}" for kind, count in report if kind in kinds)
    print(f"deleted {counts}{f' of {args.user}' if args.user else ''}", file=out)
    return EXIT_OK


def _reembed(args: argparse.Namespace, out: TextIO) -> int:
    options = {"api_base": args.api_base} if args.api_base else None
    with MemoryManager(db=args.db, embedding_model=args.model, embedding_options=options) as mem:
        count = mem.reembed(user_id=args.user, everything=args.all)
    print(f"embedded {count} items{f' of {args.user}' if args.user else ''} with {args.model}", file=out)
    return EXIT_OK


def _program() -> str:
    """How to run this command again as typed: ``agentmem`` when that name on PATH is the script
    running now, else the script's own path (e.g. ``.venv/bin/agentmem`` outside the venv)."""
    script = Path(sys.argv[0]).absolute()
    if script.name != "agentmem" or not script.is_file():  # called in-process, e.g. main([...])
        return "agentmem"
    on_path = shutil.which("agentmem")
    return "agentmem" if on_path and Path(on_path).samefile(script) else shlex.quote(str(script))


def _demo(args: argparse.Namespace, out: TextIO) -> int:
    from .demo import run_demo

    run_demo(args.db, out, program=_program())
    return EXIT_OK


def _prompts_export(args: argparse.Namespace, out: TextIO) -> int:
    """Copy every default template into ``args.dir``; nothing is written if that would overwrite a
    file and ``--force`` was not given."""
    sources = sorted(p for p in default_prompts_dir().iterdir() if p.is_file())
    target = Path(args.dir).expanduser()
    if target.exists() and not target.is_dir():
        raise CliError(f"{args.dir} exists and is not a folder")
    existing = [target / p.name for p in sources if (target / p.name).exists()]
    if existing and not args.force:
        names = ", ".join(p.name for p in existing)
        print(
            f"error: {args.dir} already has {names}; nothing written (pass --force to overwrite)",
            file=sys.stderr,
        )
        return EXIT_REFUSED
    try:
        target.mkdir(parents=True, exist_ok=True)
        for source in sources:
            shutil.copyfile(source, target / source.name)
            print(f"wrote {target / source.name}", file=out)
    except OSError as exc:
        raise CliError(f"cannot write to {args.dir}: {exc.strerror or exc}") from exc
    print(f"use them with MemoryManager(prompts_dir={str(target)!r})", file=out)
    return EXIT_OK


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reachable only from this machine (``localhost``, 127.0.0.0/8, ``::1``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _embedding(args: argparse.Namespace) -> dict[str, Any]:
    """``MemoryManager``'s embedding arguments from ``--embedding-model`` and ``--embedding-api-base``."""
    if args.embedding_api_base and not args.embedding_model:
        raise CliError("--embedding-api-base needs --embedding-model")
    options = {"api_base": args.embedding_api_base} if args.embedding_api_base else None
    return {"embedding_model": args.embedding_model, "embedding_options": options}


def _serve(args: argparse.Namespace, out: TextIO) -> int:
    try:
        import uvicorn

        from .server.agents import load_agents
        from .server.app import create_app
    except ImportError as exc:
        raise CliError(
            f"agentmem serve needs the server extra ({exc.name} is missing): "
            "pip install 'agentmem-layers[server]'"
        ) from exc
    with MemoryManager(db=args.db, model=args.model, **_embedding(args)) as mem:
        open_mode = not ApiKeys(mem).required()
        if open_mode and not is_loopback(args.host):
            print(
                f"error: refusing to bind to {args.host}: no API key exists yet, so every request would be "
                "served as admin. Create one first (agentmem keys create --admin), or bind to 127.0.0.1.",
                file=sys.stderr,
            )
            return EXIT_REFUSED
        if args.agents is not None and os.getcwd() not in sys.path:
            sys.path.insert(0, os.getcwd())  # --agents names a module of the project it is started in
        agents = load_agents(args.agents, mem) if args.agents is not None else None
        app = create_app(
            mem,
            agents=agents,
            inspector_writes=args.inspector_writes,
            allowed_hosts=[args.host, *args.allowed_host],
        )
        shown = f"[{args.host}]" if ":" in args.host else args.host
        mode = "open mode: no API key exists, loopback only" if open_mode else "API keys required"
        print(f"agentmem serving on http://{shown}:{args.port} ({mode})", file=out, flush=True)
        uvicorn.run(
            app,
            host=args.host,
            port=args.port,
            access_log=args.access_log,
            log_config=_uvicorn_logging(args.access_log),
        )
    return EXIT_OK


def _mcp(args: argparse.Namespace, out: TextIO) -> int:
    """Serve one user's memory over stdio: stdout carries the protocol, so nothing else is printed there
    (log records go to stderr, at ``--log-level``)."""
    import logging

    import anyio

    from .mcp import memory_server, run_stdio

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s: %(name)s: %(message)s"))
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(args.log_level)
    try:
        with MemoryManager(db=args.db, model=args.model, **_embedding(args)) as mem:
            server = memory_server(mem, user_id=args.user_id, agent_id=args.agent_id)
            with contextlib.suppress(KeyboardInterrupt):
                anyio.run(run_stdio, server)
    finally:  # main() may run in a process of the caller's (tests do): leave its logging as it was
        root.removeHandler(handler)
        root.setLevel(level)
    return EXIT_OK


def _uvicorn_logging(access_log: bool) -> dict[str, Any]:
    """uvicorn's logging for ``serve``: its warnings and errors on stderr; one line per request on
    stderr only with ``--access-log`` (serve's own startup line says where it listens)."""
    handler = {"class": "logging.StreamHandler", "formatter": "plain", "stream": "ext://sys.stderr"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"plain": {"format": "%(levelname)s: %(message)s"}},
        "handlers": {"stderr": handler},
        "loggers": {
            "uvicorn": {"handlers": ["stderr"], "level": "WARNING", "propagate": False},
            "uvicorn.error": {"level": "WARNING"},
            "uvicorn.access": {
                "handlers": ["stderr"],
                "level": "INFO" if access_log else "WARNING",
                "propagate": False,
            },
        },
    }


def _keys(mem: MemoryManager, args: argparse.Namespace, out: TextIO) -> int:
    keys = ApiKeys(mem)
    if args.keys_command == "create":
        made = keys.create(user_id=args.user, agent_id=args.agent, admin=args.admin, label=args.label)
        reach = (
            "admin" if made.key.admin else f"user {made.key.user_id}" if made.key.user_id else "every user"
        )
        agent = f", as agent {made.key.agent_id}" if made.key.agent_id else ""
        # The key itself last, alone on its line: KEY=$(agentmem keys create ... | tail -n1)
        print(f"created API key {made.key.id} ({reach}{agent}); it is shown only this once:", file=out)
        print(made.secret, file=out)
        return EXIT_OK
    if args.keys_command == "revoke":
        revoked = keys.revoke(args.key_id)
        print(f"revoked API key {revoked.id}", file=out)
        return EXIT_OK
    found = keys.list()
    if not found:
        print("no API keys (the server runs open, on loopback only)", file=out)
        return EXIT_OK
    rows = [
        [
            k.id,
            "admin" if k.admin else k.user_id or "every user",
            k.agent_id or "-",
            k.label or "-",
            f"{k.created_at:%Y-%m-%d %H:%M:%S}",
            "-" if k.revoked_at is None else f"{k.revoked_at:%Y-%m-%d %H:%M:%S}",
        ]
        for k in found
    ]
    headers = ["id", "reaches", "agent", "label", "created (UTC)", "revoked (UTC)"]
    print("\n".join([f"API keys ({len(found)})", *format_table(headers, rows)]), file=out)
    return EXIT_OK


# ---- parser and entry point ------------------------------------------------------------------


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


_DURATION = re.compile(r"(\d{1,9})([smhdw])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(text: str) -> timedelta:
    """A duration as a whole number and a unit: ``30d``, ``12h``, ``45m``, ``90s``, ``2w``."""
    found = _DURATION.fullmatch(text.strip())
    if found is None:
        raise argparse.ArgumentTypeError(
            f"not a duration: {text!r}; give a whole number and a unit (s, m, h, d, w), e.g. 30d or 12h"
        )
    try:
        return timedelta(**{_UNITS[found[2]]: int(found[1])})
    except OverflowError:
        raise argparse.ArgumentTypeError(f"{text!r} is longer than any date goes back") from None


def _port(text: str) -> int:
    value = _non_negative_int(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"a port is at most 65535, got {value}")
    return value


def _kinds(text: str) -> list[CleanupKind]:
    given = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [kind for kind in given if kind not in CLEANUP_KINDS]
    if unknown or not given:
        raise argparse.ArgumentTypeError(
            f"unknown kind(s) {', '.join(unknown) or repr(text)}; choose from {', '.join(CLEANUP_KINDS)}"
        )
    return [kind for kind in CLEANUP_KINDS if kind in given]


def build_parser() -> argparse.ArgumentParser:
    """The ``agentmem`` argument parser (exposed for documentation and tests).

    Returns:
        The parser, with one sub-command per action.
    """
    db_help = "database URL (default: $AGENTMEM_DB_URL, else sqlite:///~/.agentmem/memory.db)"
    parser = argparse.ArgumentParser(
        prog="agentmem",
        description="Inspect and manage agentmem memory of users.",
    )
    parser.add_argument("--db", metavar="URL", default=None, help=db_help)
    parser.add_argument("--version", action="version", version=f"agentmem {__version__}")
    # Global options are accepted after the sub-command too. SUPPRESS: when absent there, the value
    # given before the sub-command (or the default) stays.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--db", metavar="URL", default=argparse.SUPPRESS, help=db_help)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    show = sub.add_parser(
        "show",
        parents=[common],
        help="print a user's memory as tables: the shared part, then each agent's private part",
    )
    show.add_argument("user", metavar="USER")
    show.add_argument("--agent", metavar="A", help="only what this agent sees: shared and its private memory")

    variables = sub.add_parser(
        "variables", parents=[common], help="list the memory variables a scope sees, and where each was set"
    )
    variables.add_argument("user", metavar="USER")
    variables.add_argument("--agent", metavar="A", help="as this agent sees them (its own win)")
    variables.add_argument("--session", metavar="S", help="in this session (its own win)")

    context = sub.add_parser(
        "context", parents=[common], help="print the XML memory block for a system message"
    )
    context.add_argument("user", metavar="USER")
    context.add_argument("--agent", metavar="A", help="include this agent's private memory")
    context.add_argument("--query", metavar="Q", help="rank knowledge and feedback by relevance to Q")
    context.add_argument("--budget", metavar="N", type=_non_negative_int, help="at most N tokens")

    export = sub.add_parser("export", parents=[common], help="print everything stored for a user as JSON")
    export.add_argument("user", metavar="USER")
    export.add_argument("--output", "-o", metavar="FILE", help="write to FILE instead of stdout")

    imp = sub.add_parser(
        "import", parents=[common], help="restore a user from an export (the user must have no memory)"
    )
    imp.add_argument("file", metavar="FILE", help="the export JSON, or - for stdin")

    forget = sub.add_parser("forget", parents=[common], help="delete one live item (it stays in the history)")
    forget.add_argument("user", metavar="USER")
    forget.add_argument("item_id", metavar="ITEM_ID")
    forget.add_argument("--agent", metavar="A", help="the agent whose private item this is")

    delete = sub.add_parser(
        "delete-user", parents=[common], help="delete everything stored for a user, history included"
    )
    delete.add_argument("user", metavar="USER")
    delete.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")

    sub.add_parser(
        "users", parents=[common], help="list the users with memory: items, sessions, last activity"
    )

    backup = sub.add_parser(
        "backup",
        parents=[common],
        help="back up the whole database while it is in use (SQLite: a database file; PostgreSQL: "
        "every user's export and every agent's own memory, as JSON lines)",
    )
    backup.add_argument("path", metavar="PATH", help="the file to write")
    backup.add_argument("--force", action="store_true", help="overwrite PATH if it exists")

    restore = sub.add_parser(
        "restore", parents=[common], help="restore a backup into an empty database (either backend)"
    )
    restore.add_argument("path", metavar="PATH", help="a file written by agentmem backup")

    cleanup = sub.add_parser(
        "cleanup",
        parents=[common],
        help="delete old messages, sessions, pending inputs, closed and expired items (history stays)",
        description="Delete what is older than the period, of every user or of one. Expired items are "
        "those past their own expires_at: layer ttls are your application's configuration, so run "
        "MemoryManager.cleanup() from it to apply them.",
    )
    cleanup.add_argument(
        "--older-than", metavar="AGE", required=True, type=parse_duration, help="e.g. 30d, 12h, 45m, 2w"
    )
    cleanup.add_argument(
        "--what",
        metavar="KINDS",
        type=_kinds,
        help=f"comma-separated, of {', '.join(CLEANUP_KINDS)} "
        f"(default: {', '.join(k for k in CLEANUP_KINDS if k in DEFAULT_CLEANUP)})",
    )
    cleanup.add_argument("--user", metavar="USER", help="only this user's (default: every user's)")

    reembed = sub.add_parser(
        "reembed",
        parents=[common],
        help="embed the live items that have no vector of an embedding model (after a model change: all)",
        description="Embed, in batches, every live item without a vector of MODEL: after a change of "
        "embedding model, every item. The model's API key is read from its usual environment variable "
        "(OPENAI_API_KEY ...).",
    )
    reembed.add_argument("--model", metavar="MODEL", required=True, help="the litellm embedding model id")
    reembed.add_argument("--api-base", metavar="URL", help="the model server's URL (a local server)")
    reembed.add_argument("--user", metavar="USER", help="only this user's items (default: everyone's)")
    reembed.add_argument(
        "--all", action="store_true", help="re-embed items that already have a vector of MODEL too"
    )

    demo = sub.add_parser(
        "demo",
        help="learn from three users' conversations and print their context (offline, no API key)",
    )
    # SUPPRESS: an absent sub-command --db must not overwrite a global --db given before "demo".
    demo.add_argument(
        "--db",
        metavar="URL",
        default=argparse.SUPPRESS,
        help="use this database and replace only the demo users in it "
        "(default: a fresh ./agentmem-demo.db, recreated on every run)",
    )

    embedding = argparse.ArgumentParser(add_help=False)
    embedding.add_argument(
        "--embedding-model",
        metavar="MODEL",
        help="litellm embedding model id for semantic search (default: none, words only); its API key "
        "is read from its usual environment variable",
    )
    embedding.add_argument(
        "--embedding-api-base", metavar="URL", help="the embedding model server's URL (a local server)"
    )

    serve = sub.add_parser(
        "serve",
        parents=[common, embedding],
        help="run the REST server and web inspector (needs the server extra)",
        description="Serve the memory over HTTP: /v1 routes, /inspector, /docs. Until an API key exists "
        "the server runs open (every request is admin) and binds to loopback only.",
    )
    serve.add_argument("--host", default="127.0.0.1", help="the address to bind to (default: 127.0.0.1)")
    serve.add_argument("--port", type=_port, default=8000, help="the port (default: 8000)")
    serve.add_argument(
        "--model", metavar="MODEL", help="litellm model id for extraction (default: the offline extractor)"
    )
    serve.add_argument(
        "--agents", metavar="MODULE:ATTR", help="the agents to serve runs for, e.g. myapp.agents:agents"
    )
    serve.add_argument("--inspector-writes", action="store_true", help="let the web inspector change memory")
    serve.add_argument(
        "--allowed-host",
        metavar="NAME",
        action="append",
        default=[],
        help="in open mode, also answer requests for this host name (repeatable; the loopback names "
        "and --host are always answered; others are refused against DNS rebinding)",
    )
    serve.add_argument(
        "--access-log", action="store_true", help="log one line per request to stderr (default: off)"
    )

    mcp = sub.add_parser(
        "mcp",
        parents=[common, embedding],
        help="serve one user's memory to an MCP client over stdio",
        description="Serve one user's memory as an MCP server over stdin/stdout: tools, resources and a "
        "prompt. The user (and agent) are fixed here; no tool call can reach another user's memory.",
    )
    mcp.add_argument("--user-id", metavar="U", required=True, help="the user whose memory is served")
    mcp.add_argument("--agent-id", metavar="A", help="act as this agent (its private memory of the user too)")
    mcp.add_argument(
        "--model", metavar="MODEL", help="litellm model id for memory_learn (default: the offline extractor)"
    )
    mcp.add_argument(
        "--log-level",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        default="WARNING",
        help="log records at this level and above go to stderr (default: WARNING)",
    )

    keys = sub.add_parser("keys", help="create, list and revoke the REST server's API keys")
    keys_sub = keys.add_subparsers(dest="keys_command", metavar="ACTION", required=True)
    create = keys_sub.add_parser(
        "create", parents=[common], help="create a key and print it (only this once; only its hash is kept)"
    )
    create.add_argument("--user", metavar="U", help="the key reaches only this user")
    create.add_argument("--agent", metavar="A", help="the key acts only as this agent")
    create.add_argument(
        "--admin", action="store_true", help="the key reaches every user and the admin routes"
    )
    create.add_argument("--label", metavar="L", help="a note for the key list, e.g. who holds it")
    keys_sub.add_parser("list", parents=[common], help="list the keys (never their secrets)")
    revoke = keys_sub.add_parser("revoke", parents=[common], help="revoke a key for good")
    revoke.add_argument("key_id", metavar="ID", help="the key's id, as keys list shows it")

    prompts = sub.add_parser("prompts", help="work with the extraction prompt templates")
    prompts_sub = prompts.add_subparsers(dest="prompts_command", metavar="ACTION", required=True)
    prompts_export = prompts_sub.add_parser(
        "export",
        parents=[common],  # no database is opened, but --db is accepted here as before "prompts"
        help="copy the default templates into DIR (created if missing), to edit and pass as prompts_dir",
    )
    prompts_export.add_argument("dir", metavar="DIR", help="the folder to write the templates into")
    prompts_export.add_argument("--force", action="store_true", help="overwrite files already in DIR")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the ``agentmem`` command.

    Args:
        argv: the arguments without the program name; ``None`` reads ``sys.argv``.

    Returns:
        The exit code: 0 on success, 1 on an error, 2 on a usage error or a refused deletion.
    """
    args = build_parser().parse_args(argv)
    out = sys.stdout
    try:
        if args.command == "demo":
            return _demo(args, out)
        if args.command == "prompts":  # no database needed
            return _prompts_export(args, out)
        if args.command == "serve":  # its own MemoryManager, with the model
            return _serve(args, out)
        if args.command == "mcp":  # its own MemoryManager, with the model
            return _mcp(args, out)
        if args.command == "reembed":  # its own MemoryManager, with the embedding model
            return _reembed(args, out)
        handlers = {
            "show": _show,
            "variables": _variables,
            "context": _context,
            "export": _export,
            "import": _import,
            "forget": _forget,
            "delete-user": _delete_user,
            "users": _users,
            "backup": _backup,
            "restore": _restore,
            "cleanup": _cleanup,
            "keys": _keys,
        }
        with MemoryManager(db=args.db) as mem:
            return handlers[args.command](mem, args, out)
    except (AgentMemError, CliError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    # The store lets these through (unreachable server, unwritable path); a traceback helps no one.
    except SQLAlchemyError as exc:
        print(f"error: database error: {getattr(exc, 'orig', None) or exc}", file=sys.stderr)
        return EXIT_ERROR
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
