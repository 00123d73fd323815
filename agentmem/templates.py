"""Templated instructions: a developer's Jinja text, filled from one scope's memory on each run.

A template is sandboxed Jinja with StrictUndefined, parsed and checked once (``check``): every name it
uses must be a built-in variable of the memory (``Templates.names``: fixed ones, and what each layer
says it fills) or one the developer declared (``variables=[...]``); any other is a ConfigurationError
naming it, raised before any memory is read. Rendering reads only what the template uses.

Every value is data: XML-escaped text, one line per item, handed to Jinja as a value, so memory content
is never parsed as a template (a stored ``{{ user_name }}`` prints as those characters) and can neither
close a tag nor forge a line. A value that is missing (no name stored, no session, an empty layer)
renders as "".
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import TYPE_CHECKING

from jinja2 import StrictUndefined, Template, TemplateError, TemplateSyntaxError, meta
from jinja2.sandbox import SandboxedEnvironment

from .errors import ConfigurationError
from .layers import Layer
from .records import MemoryItem
from .scope import Scope, prefer_agent
from .store.rows import utcnow
from .text import one_line, xml_text

if TYPE_CHECKING:
    from .conversations import Sessions

MEMORY = "memory"
RECENT_CONTEXT = "recent_context"
SESSION_CONTEXT = "session_context"
DATE = "date"
FIXED = (MEMORY, RECENT_CONTEXT, SESSION_CONTEXT, DATE)
"""The built-in variables that come from no layer."""
RECENT_MESSAGES = 10
"""``{{recent_context}}``: at most this many of the session's latest messages (user and assistant)."""
RECENT_CHARS = 500
"""... each cut to this many characters."""
MAX_TEMPLATE_CHARS = 100_000

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_ENV = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False)
_JINJA_NAMES = frozenset(_ENV.globals)  # range, dict, namespace ...: Jinja's own, never memory

NamedVariables = Callable[[Scope, str | None], Mapping[str, str]]
"""The scope's own named values (``{{current_task}}`` ...) for a scope and session (or ``None``)."""
CompileLayers = Callable[[Scope, Sequence[Layer], str | None, int | None, bool], str]
"""``(scope, layers, query, token_budget, tags)`` -> the layers' compiled, escaped lines."""
LiveItems = Callable[[Scope, Sequence[str]], list[MemoryItem]]
"""``(scope, layer names)`` -> the scope's live items of those layers (shared and the agent's)."""


def no_variables(scope: Scope, session_id: str | None) -> Mapping[str, str]:
    """Where memory keeps no named values of its own: every declared variable renders as ""."""
    return {}


@dataclass(frozen=True)
class MemoryTemplate:
    """A parsed template (``MemoryManager.check_template``): what ``render`` and ``Agent`` fill.

    Attributes:
        text: the template as written.
        variables: the developer's own variable names it may use, besides the built-ins.
        names: every variable the template uses.
    """

    text: str
    variables: tuple[str, ...]
    names: frozenset[str]
    _template: Template = field(repr=False, compare=False)

    def fill(self, values: Mapping[str, str]) -> str:
        """The template with ``values`` (already escaped) in place; a failure is ConfigurationError."""
        try:
            return self._template.render(values)
        except TemplateError as exc:
            raise ConfigurationError(f"template failed: {exc}") from None
        except Exception as exc:  # a template's own expression failed, e.g. {{ 1 / 0 }}
            raise ConfigurationError(f"template failed: {type(exc).__name__}: {exc}") from None


def parse_template(text: str, variables: Collection[str] = ()) -> MemoryTemplate:
    """Parse ``text`` and check the declared ``variables``' names (not yet which names exist).

    Raises:
        ConfigurationError: not a str, too long, a Jinja syntax error, or a bad variable name.
    """
    if isinstance(variables, str) or not isinstance(variables, Collection):
        raise ConfigurationError(f"variables must be a list of names, got {variables!r}")
    if not isinstance(text, str):
        raise ConfigurationError(f"a template must be a str, got {type(text).__name__}")
    if len(text) > MAX_TEMPLATE_CHARS:
        raise ConfigurationError(f"the template is {len(text)} characters; the limit is {MAX_TEMPLATE_CHARS}")
    for name in variables:
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise ConfigurationError(
                f"variable name {name!r}: use up to 64 letters, digits or _, not starting with a digit"
            )
    if len(set(variables)) != len(variables):
        raise ConfigurationError(f"variables {list(variables)} name one variable twice")
    return _parsed(text, tuple(variables))


@lru_cache(maxsize=256)  # a template rendered on every run is parsed once
def _parsed(text: str, variables: tuple[str, ...]) -> MemoryTemplate:
    try:
        parsed = _ENV.parse(text)
    except TemplateSyntaxError as exc:
        raise ConfigurationError(f"template line {exc.lineno}: {exc.message}") from None
    if any(True for _ in meta.find_referenced_templates(parsed)):  # there is nothing to load them from
        raise ConfigurationError("a template cannot include, import or extend other templates")
    names = frozenset(meta.find_undeclared_variables(parsed)) - _JINJA_NAMES
    return MemoryTemplate(text, variables, names, _ENV.from_string(parsed))


def _recent(messages: Sequence[Mapping[str, object]]) -> str:
    """The session's latest turns as escaped ``role: text`` lines, each cut short."""
    lines = []
    for message in messages:
        if message["role"] in ("user", "assistant"):
            text = one_line(str(message["content"] or ""))
            cut = text if len(text) <= RECENT_CHARS else text[: RECENT_CHARS - 1] + "…"
            lines.append(f"{message['role']}: {xml_text(cut)}")
    return "\n".join(lines)


@dataclass(frozen=True)
class LayerVariables:
    """The variables the layers fill, each to its layer: the layer's lines (``blocks``, by the layer's
    name and aliases) or one value of it (``fields``, a document's field)."""

    blocks: dict[str, Layer]
    fields: dict[str, Layer]

    @classmethod
    def of(cls, layers: Sequence[Layer]) -> LayerVariables:
        """Ask each layer; two layers (or a layer and a fixed variable) may not fill one name.

        Raises:
            ConfigurationError: a name is taken twice (checked when the manager is created).
        """
        found = cls({}, {})
        taken = dict.fromkeys(FIXED, "built in")
        for layer in layers:
            mine = [(name, found.blocks) for name in (layer.name, *layer.template_aliases)]
            mine += [(name, found.fields) for name in layer.template_variables()]
            for name, kind in mine:
                if name in taken:
                    raise ConfigurationError(
                        f"layer {layer.name!r} would fill the template variable {{{{{name}}}}}, which is "
                        f"{taken[name]}; rename the layer or set its variable_prefix"
                    )
                taken[name] = f"filled by layer {layer.name!r}"
                kind[name] = layer
        return found


class Templates:
    """Checks and renders templates against one memory's layers.

    Args:
        layers: the memory's layers in authority order.
        variables: what each layer fills (``LayerVariables.of(layers)``).
        compile_layers: compiles layers for a scope (the read path of ``compile``).
        live_items: reads a scope's live items of some layers.
        sessions: the memory's sessions (recent messages and summaries).
        named: the scope's own named variables; the default has none, so declared variables render as "".
        now: the memory's clock (``Store.now``), so ``{{date}}`` is the day every write is stamped with.
    """

    def __init__(
        self,
        layers: Sequence[Layer],
        variables: LayerVariables,
        compile_layers: CompileLayers,
        live_items: LiveItems,
        sessions: Sessions,
        named: NamedVariables = no_variables,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        self._layers = list(layers)
        self._blocks, self._fields = variables.blocks, variables.fields
        self._compile, self._live, self._sessions, self._named = compile_layers, live_items, sessions, named
        self._now = now
        self.names = (*FIXED, *self._blocks, *self._fields)
        """Every built-in variable, fixed ones first, then each layer's."""

    def check(self, template: str | MemoryTemplate, variables: Collection[str] = ()) -> MemoryTemplate:
        """``template`` parsed (when text) and checked against this memory's variables.

        Raises:
            ConfigurationError: a syntax error, or a name that is neither built in nor declared.
        """
        if isinstance(template, MemoryTemplate):
            if variables:
                raise ConfigurationError("declare variables when checking the template, not again here")
        else:
            template = parse_template(template, variables)
        clash = sorted(set(template.variables) & set(self.names))
        if clash:
            raise ConfigurationError(f"{{{{{clash[0]}}}}} is a built-in variable; give yours another name")
        unknown = sorted(template.names - set(self.names) - set(template.variables))
        if unknown:
            listed = ", ".join(f"{{{{{name}}}}}" for name in unknown)
            raise ConfigurationError(
                f"the template uses unknown variable(s) {listed}; the built-in ones are "
                f"{', '.join(self.names)} (declare your own with variables=[...])"
            )
        return template

    def render(
        self,
        template: MemoryTemplate,
        scope: Scope,
        session_id: str | None,
        query: str | None,
        token_budget: int | None,
    ) -> str:
        """``template`` (checked) filled from the scope's memory: only what it uses is read."""
        used = template.names
        values: dict[str, str] = {}
        if MEMORY in used:
            injected = [layer for layer in self._layers if layer.config.inject]
            values[MEMORY] = self._compile(scope, injected, query, token_budget, True)
        blocks = {self._blocks[name].name: self._blocks[name] for name in used if name in self._blocks}
        compiled = {
            name: self._compile(scope, [layer], query, token_budget, False) for name, layer in blocks.items()
        }
        values.update({name: compiled[self._blocks[name].name] for name in used if name in self._blocks})
        values.update(self._field_values(scope, used))
        if session_id is not None and used & {RECENT_CONTEXT, SESSION_CONTEXT}:
            values.update(self._session_values(scope, session_id, used))
        if DATE in used:
            values[DATE] = self._now().date().isoformat()
        own = used & set(template.variables)
        if own:
            found = self._named(scope, session_id)
            values.update({name: xml_text(str(found.get(name, ""))) for name in own})
        return template.fill({name: values.get(name, "") for name in used})

    def _field_values(self, scope: Scope, used: frozenset[str]) -> dict[str, str]:
        layers = {self._fields[name].name: self._fields[name] for name in used if name in self._fields}
        if not layers:
            return {}
        items = prefer_agent(self._live(scope, list(layers)))
        values: dict[str, str] = {}
        for layer in layers.values():
            values.update(layer.template_values([item for item in items if item.layer == layer.name]))
        return {name: xml_text(value) for name, value in values.items() if name in used}

    def _session_values(self, scope: Scope, session_id: str, used: frozenset[str]) -> dict[str, str]:
        # Read as the scope reads sessions: with an agent_id only that agent's own session (ScopeError).
        limit = RECENT_MESSAGES if RECENT_CONTEXT in used else 0
        recent = self._sessions.messages(
            session_id, user_id=scope.user_id, agent_id=scope.agent_id, limit=limit
        )
        values = {RECENT_CONTEXT: _recent(recent)}
        if SESSION_CONTEXT in used:
            values[SESSION_CONTEXT] = xml_text(
                self._sessions.summary(session_id, user_id=scope.user_id) or ""
            )
        return values
