"""The layer contract: everything that differs from one kind of memory to another lives behind it.

A layer owns its dataclass schema, its extraction prompt, the shape of its part of the extraction reply
and how a validated reply becomes a patch, its merge policy, how its items are ordered and rendered in
``compile``, typed in ``get()`` and listed by the CLI, the arguments its memory tools take, and the
checks an imported item passes. Nothing outside ``agentmem/layers/`` asks which layer it holds.

Two shared kinds implement the contract: :class:`~agentmem.layers.DocumentLayer` (one value per field:
profile, policies) and :class:`~agentmem.layers.CollectionLayer` (entries with ids: knowledge,
feedback). A layer of your own subclasses one of them and is passed as
``MemoryManager(layers={"goals": GoalsLayer()})``.
"""

from __future__ import annotations

import dataclasses
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar

from ..config import LayerConfig
from ..errors import ConfigurationError, InvalidInputError, SecretError
from ..records import MemoryItem, Usage
from ..scope import Scope, check_session_scoped
from ..text import one_line
from .changes import Op, Patch
from .schema import Schema

if TYPE_CHECKING:
    from .handles import Writes

NAME = re.compile(r"[a-z][a-z0-9_]{0,31}")
TAG = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,63}")


class Ranked(Protocol):
    """What ordering a layer's lines for ``compile`` may read of a stored item."""

    @property
    def id(self) -> str: ...
    @property
    def key(self) -> str: ...
    @property
    def updated_at(self) -> Any: ...
    @property
    def times(self) -> int: ...
    @property
    def score(self) -> float: ...


R = TypeVar("R", bound=Ranked)


@dataclass
class ReplyContext:
    """What turning a layer's part of a validated extraction reply into a patch needs.

    Attributes:
        shown: the layer's items the prompt showed, in order: the model calls ``shown[i]`` "i + 1".
        occurrence: the input's key, so the same input applied twice counts once.
        misattributed: whether a value was said only by the assistant, never by the user (always
            ``False`` for a layer whose values need not come from the user: ``from_user_only``).
        usage: where dropped values are counted, by reason.
    """

    shown: Sequence[MemoryItem]
    occurrence: str
    misattributed: Callable[[str], bool]
    usage: Usage

    def item(self, alias: int | None) -> MemoryItem | None:
        """The shown item the model named by its number; an unknown number is counted and ignored."""
        if alias is None:
            return None
        if 1 <= alias <= len(self.shown):
            return self.shown[alias - 1]
        self.usage.drop("unknown_alias")
        return None

    def from_assistant(self, text: str) -> bool:
        """Whether ``text`` was said only by the assistant (then counted as dropped)."""
        if self.misattributed(text):
            self.usage.drop("misattributed")
            return True
        return False

    def checked(self, validate: Callable[..., Any], *args: Any) -> Any:
        """Run a validation; count and swallow what the store would refuse (``None`` then)."""
        try:
            return validate(*args)
        except SecretError:
            self.usage.drop("secret")
        except InvalidInputError:
            self.usage.drop("invalid")
        return None


class LiveItems(Protocol):
    """What a merge may read of the write scope's live items, under the write lock (the store's
    ``Writer``): all of a layer's, or only those a change can touch."""

    def live(self, layer: str) -> list[MemoryItem]:
        """Every live item of ``layer``, oldest first."""
        ...

    def live_count(self, layer: str) -> int:
        """How many items of ``layer`` are live."""
        ...

    def live_matching(
        self,
        layer: str,
        *,
        keys: Collection[str] = (),
        ids: Collection[str] = (),
        similar: Sequence[Sequence[Sequence[str]]] = (),
        first: tuple[Sequence[str], int] | None = None,
    ) -> list[MemoryItem]:
        """Live items of ``layer``, oldest first, that have one of ``keys`` or ``ids``; or whose text
        has (as ``text.words`` splits it) a word of each group of one of ``similar`` (the result may
        hold more); or that are among the ``first[1]`` in the order of the item columns ``first[0]``."""
        ...


@dataclass(frozen=True, slots=True)
class Stored:
    """An item as the layer stores it: what an import recomputes instead of trusting the file."""

    key: str
    value: Any
    text: str
    line: str


def vouched_for(cls: type, attribute: str, method: str) -> bool:
    """Whether the class that sets ``attribute`` (a claim about ``method``) knows the ``method`` ``cls``
    has: it is the class that defines it, or a subclass of that. A subclass or mixin that brings its
    own ``method`` and does not set the claim again must not inherit it."""
    said = next(c for c in cls.__mro__ if attribute in c.__dict__)
    owner = next(c for c in cls.__mro__ if method in c.__dict__)
    return issubclass(said, owner)


class Layer(ABC):
    """One kind of memory. Subclasses set the class attributes and implement the abstract methods;
    most layers subclass :class:`DocumentLayer` or :class:`CollectionLayer`, which implement them.

    Construct with a :class:`~agentmem.LayerConfig` or its fields as keywords:
    ``KnowledgeLayer(max_items=1000)``.
    """

    name: ClassVar[str]
    """The layer's name: a key of the extraction reply, of ``get()`` and of the memory tools."""
    tag: ClassVar[str]
    """The XML element ``compile`` renders this layer into."""
    about: ClassVar[str]
    """What the layer holds, in a few words (memory tools describe the layer with it)."""
    default_schema: ClassVar[type]
    prompt: ClassVar[str | None] = None
    """The default extraction prompt as Jinja text; ``None``: the file ``prompt_file`` in ``prompts/``."""
    default_max_items: ClassVar[int | None] = None
    from_user_only: ClassVar[bool] = True
    """Extracted values must come from the user's words (feedback is about the assistant's answer)."""
    prompt_items: ClassVar[int | None] = None
    """How many stored items the extraction prompt shows at most (``None``: all of them)."""
    pinned: ClassVar[bool] = False
    """Under a token budget, a pinned layer's lines go in first (in authority order) instead of
    competing with other layers' items by relevance."""
    bullets: ClassVar[bool] = True
    """Render items as ``- item`` bullets (else as they are: ``key: value`` lines)."""

    def heading(self, line: str) -> tuple[str, str] | None:
        """A heading the stored ``line`` shares with others, and the rest of it; ``compile`` renders
        the heading once, above the rests of the lines that share it, so a budget is not spent on
        repeating it (default: none)."""
        return None

    ranked_in_sql: ClassVar[bool] = False
    """``order`` is the store's ranked order: score, then count when ``rank_by_count``, then recency,
    then id (each best first). Under a token budget the store then reads only the top rows of this layer
    (paging further when the budget goes through them) instead of all of them. A subclass (or mixin)
    that brings its own ``order`` is read whole unless it sets this again."""
    rank_by_count: ClassVar[bool] = False
    """In ``compile``, among equally relevant items the more often repeated come first."""
    template_aliases: ClassVar[tuple[str, ...]] = ()
    """More names a template may use for this layer's lines, besides ``{{<name>}}``."""

    def __init__(self, config: LayerConfig | None = None, /, **options: Any) -> None:
        try:
            self.config = dataclasses.replace(config or LayerConfig(), **options)
        except TypeError as exc:
            raise ConfigurationError(f"{type(self).__name__}: {exc}") from None
        self.schema = Schema.of(self.config.schema or self.default_schema, self.name)
        self.max_items = (
            self.config.max_items if self.config.max_items is not None else self.default_max_items
        )
        self.check_schema()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        name = cls.__dict__.get("name")
        if name is not None and not NAME.fullmatch(name):
            raise ConfigurationError(f"layer name {name!r}: use 1-32 lowercase letters, digits or _")
        if cls.ranked_in_sql and not vouched_for(cls, "ranked_in_sql", "order"):
            cls.ranked_in_sql = False  # an order of its own: the store cannot know it
        tag = cls.__dict__.get("tag")
        if tag is not None and (not TAG.fullmatch(tag) or tag.lower().startswith("xml")):
            raise ConfigurationError(f"layer tag {tag!r} is not a usable XML element name")

    @property
    def prompt_file(self) -> str:
        """The template's file name, looked up in ``prompts_dir`` (and in ``prompts/`` by default)."""
        return f"{self.name}.jinja"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.config!r})"

    def check_schema(self) -> None:  # noqa: B027 - optional hook
        """Refuse schemas this layer cannot store; raised when the layer is created."""

    # ---- extraction -------------------------------------------------------------------------

    @abstractmethod
    def reply_field(self) -> tuple[Any, Any]:
        """The layer's part of the extraction reply: a pydantic ``(annotation, default)`` pair."""

    @abstractmethod
    def to_patch(self, section: Any, context: ReplyContext) -> Patch | None:
        """The validated reply section as a patch (``None``: nothing to change)."""

    def offline(self, turns: Sequence[Mapping[str, str]], found: Any) -> Any:
        """The layer's reply section without a model. ``found`` is what the built-in offline extractor
        of explicit English statements found under this layer's name (``None`` for other names)."""
        return found

    def prompt_text(self, item: MemoryItem) -> str:
        """How a stored item is shown to the extraction model: one line, so it cannot forge more."""
        return one_line(item.text)

    # ---- merging ----------------------------------------------------------------------------

    @abstractmethod
    def merge(self, current: Sequence[MemoryItem], change: Patch, now: datetime) -> list[Op]:
        """Turn a validated change into operations, given the write scope's live items."""

    def merge_live(self, live: LiveItems, change: Patch, now: datetime) -> list[Op]:
        """``merge``, reading the live items it needs through ``live`` (under the write lock). Default:
        all of the layer's; a layer whose items are many reads only those the change can touch."""
        return self.merge(live.live(self.name), change, now)

    @abstractmethod
    def fresh(self, change: Patch, changed: Collection[str]) -> tuple[Patch | None, int]:
        """``change`` without what targets the keys in ``changed`` (changed by newer information),
        and how many values that dropped."""

    def split(self, key: str, value: Any) -> list[tuple[str, Any]]:
        """An item of an older storage format as the items this layer stores now (default: as is)."""
        return [(key, value)]

    # ---- reading ----------------------------------------------------------------------------

    @abstractmethod
    def order(self, rows: Sequence[R]) -> list[R]:
        """The layer's live items in the order ``compile`` renders them (best first)."""

    @abstractmethod
    def typed(self, items: Sequence[MemoryItem]) -> Any:
        """The layer's part of ``get()``, from the scope's live items (agent's over shared)."""

    def template_variables(self) -> tuple[str, ...]:
        """Names of the single values this layer fills in templates (a document's fields); default:
        none. Its lines as a whole are ``{{<name>}}`` (and ``template_aliases``) for every layer."""
        return ()

    def template_values(self, items: Sequence[MemoryItem]) -> dict[str, str]:
        """Each of ``template_variables`` as plain one-line text ("" when unset), from the scope's
        live items of this layer (agent's over shared). The caller escapes them."""
        return {}

    @abstractmethod
    def columns(self, items: Sequence[MemoryItem]) -> tuple[list[str], list[tuple[MemoryItem, list[str]]]]:
        """Headers, and each item with its cells in display order, for a plain-text table (``show``)."""

    # ---- memory tools and manual writes ------------------------------------------------------

    @abstractmethod
    def tool_hint(self) -> str:
        """How the memory tools describe this layer to a model."""

    @abstractmethod
    def tool_arguments(self) -> dict[str, dict[str, Any]]:
        """Arguments ``memory_remember`` takes for this layer besides ``layer`` and ``value``, as
        JSON-Schema properties."""

    @abstractmethod
    def remembered(self, value: str, arguments: Mapping[str, Any], occurrence: str | None) -> Patch:
        """The patch for ``memory_remember(layer=<this>, value=..., **arguments)``."""

    @abstractmethod
    def revised(self, item: MemoryItem, text: str | None, fields: Mapping[str, Any]) -> Any:
        """The value ``item`` has after an update in place (``memory.update``, ``memory_update``):
        ``text`` its new text, ``fields`` new values of other schema fields. Need not be checked:
        the update passes it through :meth:`stored`, which validates it and derives key, text and line.

        Raises:
            InvalidInputError: the layer's items cannot change that way (e.g. fields it lacks).
        """

    def write_scope(self, scope: Scope, session_id: str | None, session_scoped: bool | None = None) -> Scope:
        """Where a write of this layer with ``session_id`` (its provenance) goes: into that session when
        ``session_scoped`` says so (``None``: this layer's ``config.session_scoped``), else user-wide.

        Raises:
            ScopeError: ``session_scoped`` is not a bool, or ``True`` without a ``session_id``.
        """
        chosen = check_session_scoped(session_scoped, session_id)
        keep = self.config.session_scoped if chosen is None else chosen
        return scope.within(scope.agent_id, session_id if keep else None)

    @abstractmethod
    def handle(self, writes: Writes) -> Any:
        """The layer's manual API (``mem.profile``, ``mem.layer("goals")`` ...)."""

    # ---- import -----------------------------------------------------------------------------

    @abstractmethod
    def stored(self, key: str, value: Any, count: int, created_at: datetime) -> Stored:
        """An imported item checked like a new one, with what is derived from its value recomputed.

        Raises:
            InvalidInputError: the value does not fit the schema, is empty, or is too large.
            SecretError: the value contains a secret.
        """
