"""Extraction prompts: sandboxed Jinja with StrictUndefined, checked when the manager is created.

Each layer's template comes from, in order: ``LayerConfig.extraction_prompt`` (template text), the file
``Layer.prompt_file`` in ``prompts_dir``, the layer's own ``Layer.prompt`` text, or the default file in
``prompts/``. The combining template (``extract.jinja``) comes from ``prompts_dir`` or the default.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateError, UndefinedError
from jinja2.sandbox import SandboxedEnvironment

from ..errors import ConfigurationError
from ..layers import Layer
from ..prompts import default_template

COMBINING_TEMPLATE = "extract.jinja"

_ENV = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False)


def _tojson(value: Any) -> str:
    """JSON text that stays readable (no ASCII escapes) but cannot close a tag: <, > and & escaped."""
    text = json.dumps(value, ensure_ascii=False)
    return text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")


_ENV.filters["tojson"] = _tojson

_SAMPLE_MESSAGES = [
    {"role": "user", "content": "I'm Sam, a nurse in Leeds. Please keep answers short."},
    {"role": "assistant", "content": "Noted, Sam."},
]


@dataclass(frozen=True)
class Prompt:
    """A compiled template and where it came from (for error messages)."""

    name: str
    source: str
    text: str

    @cached_property
    def template(self) -> Template:
        try:
            return _ENV.from_string(self.text)
        except TemplateError as exc:
            raise ConfigurationError(f"prompt template {self.name} ({self.source}): {exc}") from None

    def render(self, **context: Any) -> str:
        template = self.template  # compiled once
        try:
            return template.render(**context).strip()
        except UndefinedError as exc:
            raise ConfigurationError(f"prompt template {self.name} ({self.source}): {exc.message}") from None
        except TemplateError as exc:
            raise ConfigurationError(f"prompt template {self.name} ({self.source}): {exc}") from None


def load_prompt(name: str, prompts_dir: str | Path | None, override: str | None = None) -> Prompt:
    """One template: the override text, else ``prompts_dir/name``, else the default."""
    folder = _folder(prompts_dir)
    return _load(name, folder, override)


def _folder(prompts_dir: str | Path | None) -> Path | None:
    if prompts_dir is not None and not isinstance(prompts_dir, str | Path):
        raise ConfigurationError(f"prompts_dir must be a folder path, got {prompts_dir!r}")
    folder = Path(prompts_dir).expanduser() if prompts_dir is not None else None
    if folder is not None and not folder.is_dir():
        raise ConfigurationError(f"prompts_dir {str(folder)!r} is not a folder")
    return folder


def _load(name: str, prompts_dir: Path | None, override: str | None, builtin: str | None = None) -> Prompt:
    if override is not None:
        return Prompt(name, "extraction_prompt", override)
    if prompts_dir is not None and (prompts_dir / name).is_file():
        path = prompts_dir / name
        return Prompt(name, str(path), path.read_text(encoding="utf-8"))
    if builtin is not None:
        return Prompt(name, "the layer's prompt", builtin)
    return Prompt(name, "default", default_template(name))


def layer_context(
    layer: Layer, items: Sequence[Mapping[str, Any]], today: str, messages: Any
) -> dict[str, Any]:
    fields = [
        {"name": f.name, "description": f.description, "is_list": f.is_list}
        for f in layer.schema.fields.values()
    ]
    return {"layer": layer.name, "fields": fields, "items": list(items), "today": today, "messages": messages}


class PromptSet:
    """Every prompt extraction uses, validated up front."""

    def __init__(self, layers: Sequence[Layer], prompts_dir: str | Path | None) -> None:
        folder = _folder(prompts_dir)
        self.layers = {
            layer.name: _load(layer.prompt_file, folder, layer.config.extraction_prompt, layer.prompt)
            for layer in layers
        }
        self.combining = _load(COMBINING_TEMPLATE, folder, None)
        self._check(layers)

    def _check(self, layers: Sequence[Layer]) -> None:
        """Render everything once with sample data: a missing variable is an error now, not later."""
        items = [{"alias": 1, "text": "Works night shifts"}]
        sections = [
            {
                "layer": layer.name,
                "text": self.layers[layer.name].render(
                    **layer_context(layer, items, "2026-01-01", _SAMPLE_MESSAGES)
                ),
            }
            for layer in layers
        ]
        self.combining.render(
            sections=sections, messages=_SAMPLE_MESSAGES, today="2026-01-01", json_schema="{}"
        )

    def render(
        self,
        layers: Sequence[Layer],
        items: Mapping[str, Sequence[Mapping[str, Any]]],
        messages: Sequence[Mapping[str, str]],
        today: str,
        json_schema: str,
    ) -> str:
        sections = [
            {
                "layer": layer.name,
                "text": self.layers[layer.name].render(
                    **layer_context(layer, items[layer.name], today, messages)
                ),
            }
            for layer in layers
        ]
        return self.combining.render(
            sections=sections, messages=messages, today=today, json_schema=json_schema
        )
