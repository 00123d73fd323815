"""The four memory layers, in authority order (the order the compiler renders them)."""

from __future__ import annotations

from .base import Layer
from .feedback import FeedbackEntry, FeedbackLayer
from .knowledge import Fact, KnowledgeLayer
from .policies import Policies, PoliciesLayer
from .profile import Profile, ProfileLayer

LAYER_TYPES: dict[str, type[Layer]] = {
    layer.name: layer for layer in (PoliciesLayer, ProfileLayer, KnowledgeLayer, FeedbackLayer)
}

__all__ = [
    "LAYER_TYPES",
    "Fact",
    "FeedbackEntry",
    "FeedbackLayer",
    "KnowledgeLayer",
    "Layer",
    "Policies",
    "PoliciesLayer",
    "Profile",
    "ProfileLayer",
]
