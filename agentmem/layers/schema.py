"""A layer's dataclass schema: per-field validators and the descriptions the extraction model sees,
and the checks every stored value passes (sizes bounded, secrets refused)."""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import inspect
import itertools
import textwrap
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, create_model
from pydantic import ValidationError as PydanticValidationError

from ..errors import ConfigurationError, InvalidInputError, SecretError
from ..secret_filter import find_secret
from ..text import one_line
from ..validation import MAX_DEPTH, checked_json, checked_text

MAX_TEXT = 2000
MAX_LIST = 50


MAX_KEY = 200


def bounded_key(key: str) -> str:
    """Keys are indexed: keep them short, with a digest standing for an over-long tail."""
    if len(key) <= MAX_KEY:
        return key
    return key[: MAX_KEY - 17] + "#" + hashlib.sha256(key.encode()).hexdigest()[:16]


class _Reply(BaseModel):
    model_config = ConfigDict(extra="ignore")  # tolerate chatty extra keys; validate what is used


def reply_model(name: str, fields: Mapping[str, Any]) -> type[BaseModel]:
    """A pydantic model for a part of the extraction reply (unknown keys ignored)."""
    model: type[BaseModel] = create_model(name, __base__=_Reply, **fields)
    return model


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

    def reply_fields(self, *, optional: bool) -> dict[str, tuple[Any, Any]]:
        """The schema's fields for a reply model, with their descriptions. ``optional``: every field
        may be left out (a document's absent field means "no news"); else defaults as declared."""
        specs: dict[str, tuple[Any, Any]] = {}
        for f in dataclasses.fields(self.cls):
            spec = self.fields[f.name]
            description = spec.description or None
            if optional:
                specs[f.name] = (spec.annotation | None, Field(None, description=description))
            elif f.default is not dataclasses.MISSING:
                specs[f.name] = (spec.annotation, Field(f.default, description=description))
            elif f.default_factory is not dataclasses.MISSING:
                specs[f.name] = (
                    spec.annotation,
                    Field(default_factory=f.default_factory, description=description),
                )
            else:
                specs[f.name] = (spec.annotation, Field(description=description))
        return specs

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
        checked_json(value, f"{layer}.{name}")  # before pydantic, whose serializer recurses
        try:
            typed = spec.adapter.validate_python(value)
        except PydanticValidationError as exc:
            raise InvalidInputError(f"invalid value for {layer}.{name}: {exc.errors()[0]['msg']}") from None
        return check_value(spec.adapter.dump_python(typed, mode="json"), f"{layer}.{name}")

    def validate_entry(self, values: Mapping[str, Any], layer: str) -> dict[str, Any]:
        """Validate a whole collection entry; return its JSON form."""
        self.check_known(list(values), layer)
        checked_json(values, f"{layer} entry")
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


def check_value(value: Any, where: str, *, depth: int = 0) -> Any:
    """Bound sizes and nesting, refuse secrets and unstorable text, recursively over strings, lists
    and objects (their keys too)."""
    if isinstance(value, str):
        checked_text(value, where)
        if len(value) > MAX_TEXT:
            raise InvalidInputError(f"{where} is {len(value)} characters; the limit is {MAX_TEXT}")
        kind = find_secret(value)
        if kind:
            raise SecretError(f"{where} looks like it contains a {kind}; secrets are never stored")
        return value
    if isinstance(value, list | dict) and depth >= MAX_DEPTH:
        raise InvalidInputError(f"{where} nests more than {MAX_DEPTH} lists or objects deep")
    if isinstance(value, list):
        if len(value) > MAX_LIST:
            raise InvalidInputError(f"{where} has {len(value)} elements; the limit is {MAX_LIST}")
        return [check_value(v, where, depth=depth + 1) for v in value]
    if isinstance(value, dict):  # keys too: a secret is as stored in a key as in a value
        return {
            check_value(k, f"{where} key"): check_value(v, f"{where}.{k}", depth=depth + 1)
            for k, v in value.items()
        }
    return value


def is_empty(value: Any) -> bool:
    """``None``, ``""`` and ``[]``: no value (never stored; never erases a stored one)."""
    return value is None or value == "" or value == []


def untitled(node: Any, *, names: bool = False) -> Any:
    """A JSON Schema without pydantic's ``title`` annotations: tokens a model does not need. Keys of a
    ``properties`` map are field names, kept even when a field is called "title"."""
    if isinstance(node, dict):
        return {
            key: untitled(value, names=key in ("properties", "$defs"))
            for key, value in node.items()
            if names or key != "title"
        }
    if isinstance(node, list):
        return [untitled(item) for item in node]
    return node


def display(value: Any) -> str:
    """A stored value as one line of text: lists are comma-separated."""
    if isinstance(value, list):
        return ", ".join(one_line(str(v)) for v in value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    return one_line(str(value))
