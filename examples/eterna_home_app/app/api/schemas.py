"""Request and response bodies."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class HouseIn(BaseModel):
    name: str = Field(min_length=1, max_length=255)
    address: str = Field(default="", max_length=500)


class HousePatch(BaseModel):
    name: str | None = Field(default=None, min_length=1, max_length=255)
    address: str | None = Field(default=None, max_length=500)


class HouseOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    name: str
    address: str
    created_at: datetime


class DocumentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    house_id: uuid.UUID | None
    filename: str
    content_type: str
    size_bytes: int
    sha256: str
    created_at: datetime


class BIMOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    house_id: uuid.UUID | None
    filename: str
    size_bytes: int
    conversion_status: str
    conversion_requested_at: datetime | None
    conversion_completed_at: datetime | None
    converted_object_key: str | None
    conversion_error: str | None
