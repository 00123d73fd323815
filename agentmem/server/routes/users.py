"""Routes of whole users: the user list (admin), export, import, delete (erasure), pending learns and
their retry."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
