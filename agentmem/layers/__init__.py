"""Memory layers: the contract (:class:`Layer`), its two shared kinds (:class:`DocumentLayer`,
:class:`CollectionLayer`) and the four built-in layers, in authority order (the order ``compile``
renders them)."""

from __future__ import annotations

from .base import Layer, ReplyContext, Stored
from .changes import Add, Delete, Entry, Expire, FieldPatch, NewEntries, NewItem, Op, Patch, Supersede, Update
from .collection import CollectionLayer
from .document import DocumentLayer
from .feedback import FeedbackEntry, FeedbackLayer
from .handles import CollectionHandle, DocumentHandle
from .knowledge import Fact, KnowledgeLayer
from .policies import Policies, PoliciesLayer
from .profile import Profile, ProfileLayer

LAYER_TYPES: dict[str, type[Layer]] = {
    layer.name: layer for layer in (PoliciesLayer, ProfileLayer, KnowledgeLayer, FeedbackLayer)
}
"""The built-in layers by name, in authority order."""

__all__ = [
    "LAYER_TYPES",
    "Add",
    "CollectionHandle",
    "CollectionLayer",
    "Delete",
    "DocumentHandle",
    "DocumentLayer",
    "Entry",
    "Expire",
    "Fact",
    "FeedbackEntry",
    "FeedbackLayer",
    "FieldPatch",
    "KnowledgeLayer",
    "Layer",
    "NewEntries",
    "NewItem",
    "Op",
    "Patch",
    "Policies",
    "PoliciesLayer",
    "Profile",
    "ProfileLayer",
    "ReplyContext",
    "Stored",
    "Supersede",
    "Update",
]
