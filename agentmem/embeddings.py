"""The embedder: texts in, unit-length float32 vectors out, from a litellm embedding model or a function.

Opt-in: only a ``MemoryManager(embedding_model=...)`` makes one. numpy (the ``embeddings`` extra) and
litellm are imported only then, so without an embedding model nothing here runs, and the read path
stays offline and network-free.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .errors import ConfigurationError, EmbeddingError

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    Vectors = npt.NDArray[np.float32]

EmbeddingModel = str | Callable[[Sequence[str]], Sequence[Sequence[float]]]
"""A litellm embedding model id (``"text-embedding-3-small"``, ``"ollama/nomic-embed-text"``,
``"openai/<name>"`` with an ``api_base``), or a function from texts to one vector per text."""

BATCH_SIZE = 64
"""Texts sent in one embedding call: providers cap a request's inputs (OpenAI at 2048, many local
servers far lower), and a failed call then loses one batch's work, not a whole re-embedding's."""

MAX_NAME = 255
"""The longest model name the vectors' ``model`` column holds."""

_INSTALL_HINT = "pip install 'agentmem-layers[embeddings]'"


def numpy() -> Any:
    """numpy, imported on first use; ConfigurationError naming the extra when it is missing."""
    try:
        import numpy
    except ImportError as exc:  # pragma: no cover - the test environment has numpy
        raise ConfigurationError(f"embedding_model needs numpy: {_INSTALL_HINT}") from exc
    return numpy


class Embedder:
    """Embeds texts with one model, in batches of :data:`BATCH_SIZE`, as unit-length float32 vectors.

    ``model``: see :data:`EmbeddingModel`. ``options``: passed through to ``litellm.embedding``
    (``api_base``, ``api_key``, ``dimensions`` ...), for a model id only.

    ``name`` identifies the model's vectors in the database: the model id, or for a function its
    ``name`` attribute if it has one, else its qualified name. Vectors of another name are pending
    (``agentmem reembed`` replaces them).
    """

    def __init__(self, model: EmbeddingModel, options: Mapping[str, Any] | None = None) -> None:
        if isinstance(model, str):
            if not model.strip():
                raise ConfigurationError("embedding_model must be a non-empty model id or a function")
            self.name = model
        elif callable(model):
            if options:
                raise ConfigurationError("embedding_options are for a litellm model id, not a function")
            named = getattr(model, "name", None)
            self.name = named if isinstance(named, str) and named else _qualified_name(model)
        else:
            raise ConfigurationError(
                f"embedding_model must be a litellm model id or a function, got {type(model).__name__}"
            )
        if len(self.name) > MAX_NAME:
            raise ConfigurationError(
                f"the embedding model's name is {len(self.name)} characters; at most {MAX_NAME}"
            )
        if options is not None and not isinstance(options, Mapping):
            raise ConfigurationError(f"embedding_options must be a dict, got {type(options).__name__}")
        self._model = model
        self._options = dict(options or {})
        self._np = numpy()  # fails now, at configuration, when the extra is missing
        self.dimensions: int | None = None
        """The vectors' length, once the model answered (every later answer must have it)."""

    def __repr__(self) -> str:
        return f"Embedder({self.name!r})"

    def embed(self, texts: Sequence[str]) -> Vectors:
        """One unit-length float32 vector per text (a 2-d array, a row each), in order.

        Raises:
            EmbeddingError: the model failed, or answered with a wrong number of vectors, vectors of
                different or changed lengths, or values that are not finite numbers.
        """
        np = self._np
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dimensions or 0), dtype=np.float32)  # type: ignore[no-any-return]
        parts = [self._batch(texts[i : i + BATCH_SIZE]) for i in range(0, len(texts), BATCH_SIZE)]
        return np.concatenate(parts) if len(parts) > 1 else parts[0]

    def _batch(self, texts: list[str]) -> Vectors:
        np = self._np
        try:
            raw = self._call(texts)
        except EmbeddingError:
            raise
        except Exception as exc:
            raise EmbeddingError(
                f"embedding model {self.name!r} failed: {type(exc).__name__}: {exc}"
            ) from exc
        try:
            vectors = np.asarray([list(v) for v in raw], dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise EmbeddingError(
                f"embedding model {self.name!r} answered with something other than equal-length "
                f"lists of numbers: {exc}"
            ) from exc
        if vectors.ndim != 2 or vectors.shape[0] != len(texts) or vectors.shape[1] == 0:
            raise EmbeddingError(
                f"embedding model {self.name!r} answered {vectors.shape[0] if vectors.ndim else 0} "
                f"vectors of shape {vectors.shape[1:]} for {len(texts)} texts"
            )
        if self.dimensions is not None and vectors.shape[1] != self.dimensions:
            raise EmbeddingError(
                f"embedding model {self.name!r} changed its vectors' length from {self.dimensions} to "
                f"{vectors.shape[1]}; give the new model a new name and run `agentmem reembed`"
            )
        if not np.isfinite(vectors).all():
            raise EmbeddingError(f"embedding model {self.name!r} answered a value that is not finite")
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        if (norms == 0).any():
            raise EmbeddingError(f"embedding model {self.name!r} answered an all-zero vector")
        self.dimensions = int(vectors.shape[1])
        return (vectors / norms).astype(np.float32)  # type: ignore[no-any-return]

    def _call(self, texts: list[str]) -> Sequence[Sequence[float]]:
        if callable(self._model):
            return self._model(texts)
        from .extraction.model import _litellm  # lazily: importing litellm takes seconds

        reply = _litellm().embedding(model=self._model, input=texts, **self._options)
        data = sorted(reply.data, key=lambda d: _field(d, "index"))  # providers may answer out of order
        return [_field(d, "embedding") for d in data]


def _field(entry: Any, name: str) -> Any:
    """A field of one ``data`` entry: litellm gives dicts or objects, depending on the provider."""
    return entry[name] if isinstance(entry, Mapping) else getattr(entry, name)


def _qualified_name(function: Callable[..., Any]) -> str:
    kind = function if hasattr(function, "__qualname__") else type(function)
    return f"{getattr(kind, '__module__', '')}.{getattr(kind, '__qualname__', repr(kind))}"


def to_blob(vector: Any) -> bytes:
    """A vector as stored: float32, little-endian, no header."""
    np = numpy()
    return bytes(np.asarray(vector, dtype="<f4").tobytes())


def unit_query(vector: Sequence[float] | Any, dimensions: int) -> Vectors:
    """A query vector as ``dense_hits`` scores with it: float32 of ``dimensions``, unit length."""
    np = numpy()
    query = np.asarray(vector, dtype=np.float32).reshape(-1)
    if query.shape[0] != dimensions:
        raise EmbeddingError(
            f"the query vector has {query.shape[0]} values; stored vectors have {dimensions}"
        )
    norm = float(np.linalg.norm(query))
    if not math.isfinite(norm) or norm == 0:
        raise EmbeddingError("the query vector is all zeros or not finite")
    return query / norm  # type: ignore[no-any-return]
