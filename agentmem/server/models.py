"""What the response models share."""

from __future__ import annotations

from typing import Self

from pydantic import BaseModel, ConfigDict


class FromRecord(BaseModel):
    """A response model read off a library record (a dataclass) by its attributes of the same names:
    the fields a subclass declares are the ones it shows."""

    model_config = ConfigDict(from_attributes=True)

    @classmethod
    def of(cls, record: object) -> Self:
        return cls.model_validate(record)
