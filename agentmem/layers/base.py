"""The layer contract: a schema, a default prompt, a merge policy and a rendering.

A merge policy is pure, deterministic code: given the scope's live items of the layer and a change
(from the manual API, memory tools or extraction), it returns the operations to apply. The store applies
them, with an event per item change, in one transaction.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import itertools
import textwrap
import typing
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Any, ClassVar, Literal

from pydantic import TypeAdapter
from pydantic import ValidationError as PydanticValidationError

from ..errors import ConfigurationError, InvalidInputError, SecretError
from ..records import MemoryItem
from ..secret_filter import find_secret
from ..text import one_line

MAX_TEXT = 2000
MAX_LIST = 50


# ---- operations a merge policy returns -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NewItem:
    key: str
    value: Any
    text: str
    line: str
    confidence: float = 1.0
    count: int = 1
    explicit: bool = True
    meta: Mapping[str, Any] = dataclasses.field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Add:
    item: NewItem


@dataclass(frozen=True, slots=True)
class Update:
    target: MemoryItem
    value: Any
    text: str
    line: str
    count: int
    explicit: bool
    confidence: float
    meta: Mapping[str, Any]
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Supersede:
    """Close ``target`` (valid_to set, superseded_by linked) in favour of ``replacement``.

    The replacement is a new item, or a live one that already says the same thing.
    """

    target: MemoryItem
    replacement: NewItem | MemoryItem
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Expire:
    """Close ``target`` without a replacement (eviction by cap); it stays in history and exports."""

    target: MemoryItem
    reason: str


@dataclass(frozen=True, slots=True)
class Delete:
    target: MemoryItem
    reason: str | None = None


Op = Add | Update | Supersede | Expire | Delete


# ---- changes a merge policy accepts --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FieldPatch:
    """New values for fields of a document layer (profile, policies), already validated."""

    values: Mapping[str, Any]
    remove: tuple[str, ...] = ()
    explicit: bool = True
    confidence: float = 1.0


@dataclass(frozen=True, slots=True)
class Entry:
    """One new entry of a collection layer (knowledge, feedback), already validated.

    ``replaces`` names a live item this entry contradicts; ``occurrence`` identifies where it was
    said, so the same occurrence applied twice counts once.
    """

    value: Mapping[str, Any]
    replaces: str | None = None
    occurrence: str | None = None
    confidence: float = 1.0


@dataclass(frozen=True, slots=True)
class NewEntries:
    entries: tuple[Entry, ...]


Patch = FieldPatch | NewEntries


# ---- schema introspection --------------------------------------------------------------------


@dataclass(frozen=True)
class SchemaField:
    name: str
    annotation: Any
    description: str
    is_list: bool
    adapter: TypeAdapter[Any]


def _attribute_docstrings(cls: type) -> dict[str, str]:
    """Docstrings written under each field (the convention the model's JSON Schema is built from)."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        try:
            source = textwrap.dedent(inspect.getsource(klass))
        except (OSError, TypeError):
            continue
        tree = ast.parse(source)
        body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
        for node, after in itertools.pairwise(body):
            if (
                isinstance(node, ast.AnnAssign)
                and isinstance(node.target, ast.Name)
                and isinstance(after, ast.Expr)
                and isinstance(after.value, ast.Constant)
                and isinstance(after.value.value, str)
            ):
                docs[node.target.id] = inspect.cleandoc(after.value.value)
    return docs


def _is_list(annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    if origin in (list, tuple, set, frozenset):
        return True
    return any(_is_list(arg) for arg in typing.get_args(annotation) if arg is not type(None))


@dataclass(frozen=True)
class Schema:
    """A layer's dataclass schema with per-field validators and descriptions."""

    cls: type

    @classmethod
    def of(cls, schema: object, layer: str) -> Schema:
        if not (isinstance(schema, type) and dataclasses.is_dataclass(schema)):
            raise ConfigurationError(f"the {layer} schema must be a dataclass class, got {schema!r}")
        return cls(schema)

    @cached_property
    def fields(self) -> dict[str, SchemaField]:
        hints = typing.get_type_hints(self.cls)
        docs = _attribute_docstrings(self.cls)
        return {
            f.name: SchemaField(
                name=f.name,
                annotation=hints[f.name],
                description=docs.get(f.name, ""),
                is_list=_is_list(hints[f.name]),
                adapter=TypeAdapter(hints[f.name]),
            )
            for f in dataclasses.fields(self.cls)
        }

    @cached_property
    def adapter(self) -> TypeAdapter[Any]:
        return TypeAdapter(self.cls)

    def check_known(self, names: Sequence[str], layer: str) -> None:
        unknown = sorted(set(names) - set(self.fields))
        if unknown:
            raise ConfigurationError(
                f"unknown {layer} field(s) {', '.join(unknown)} for schema {self.cls.__name__}; "
                f"known fields: {', '.join(self.fields)}"
            )

    def validate_field(self, name: str, value: Any, layer: str) -> Any:
        """Validate one field's value; return its JSON form."""
        spec = self.fields[name]
        try:
            typed = spec.adapter.validate_python(value)
        except PydanticValidationError as exc:
            raise InvalidInputError(f"invalid value for {layer}.{name}: {exc.errors()[0]['msg']}") from None
        return check_value(spec.adapter.dump_python(typed, mode="json"), f"{layer}.{name}")

    def validate_entry(self, values: Mapping[str, Any], layer: str) -> dict[str, Any]:
        """Validate a whole collection entry; return its JSON form."""
        self.check_known(list(values), layer)
        try:
            typed = self.adapter.validate_python(dict(values))
        except PydanticValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"])
            raise InvalidInputError(f"invalid {layer} entry ({where}): {err['msg']}") from None
        dumped: dict[str, Any] = self.adapter.dump_python(typed, mode="json")
        return {k: check_value(v, f"{layer}.{k}") for k, v in dumped.items()}

    def instance(self, values: Mapping[str, Any]) -> Any:
        """Build a schema instance from stored JSON values (unknown keys from older schemas dropped)."""
        known = {k: v for k, v in values.items() if k in self.fields}
        return self.adapter.validate_python(known)


def check_value(value: Any, where: str) -> Any:
    """Bound sizes and refuse secrets, recursively over strings and lists."""
    if isinstance(value, str):
        if "\x00" in value:
            raise InvalidInputError(f"{where} contains a NUL character")
        if len(value) > MAX_TEXT:
            raise InvalidInputError(f"{where} is {len(value)} characters; the limit is {MAX_TEXT}")
        kind = find_secret(value)
        if kind:
            raise SecretError(f"{where} looks like it contains a {kind}; secrets are never stored")
        return value
    if isinstance(value, list):
        if len(value) > MAX_LIST:
            raise InvalidInputError(f"{where} has {len(value)} elements; the limit is {MAX_LIST}")
        return [check_value(v, where) for v in value]
    if isinstance(value, dict):
        return {k: check_value(v, f"{where}.{k}") for k, v in value.items()}
    return value


def display(value: Any) -> str:
    """A stored value as one line of text: lists are comma-separated."""
    if isinstance(value, list):
        return ", ".join(one_line(str(v)) for v in value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    return one_line(str(value))


# ---- the layer contract ----------------------------------------------------------------------


class Layer(ABC):
    """One kind of memory. Subclasses set the class attributes and implement ``merge``."""

    name: ClassVar[str]
    tag: ClassVar[str]
    """The XML element the compiler renders this layer into."""
    kind: ClassVar[Literal["document", "collection"]]
    default_schema: ClassVar[type]
    prompt_template: ClassVar[str]
    """File name of the default extraction prompt in ``prompts/``."""
    default_max_items: ClassVar[int | None] = None

    def __init__(self, schema: type | None = None, max_items: int | None = None) -> None:
        self.schema = Schema.of(schema or self.default_schema, self.name)
        self.max_items = max_items if max_items is not None else self.default_max_items
        self.check_schema()

    def check_schema(self) -> None:  # noqa: B027 - optional hook, most layers add a check
        """Refuse schemas this layer cannot store; raised when the manager is created."""

    @abstractmethod
    def merge(self, current: Sequence[MemoryItem], change: Patch, now: datetime) -> list[Op]:
        """Turn a validated change into operations, given the write scope's live items."""
