"""Request and response bodies."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.rbac import ROLES

# One of app.rbac.ROLES (validated, and listed in the OpenAPI schema).
Role = Literal[ROLES]  # type: ignore[valid-type]


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


class TokenOut(BaseModel):
    access_token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth2 token type, not a secret
    # Seconds until the access token expires.
    expires_in: int
    refresh_token: str
    tenant: str
    role: str


class RefreshIn(BaseModel):
    refresh_token: str = Field(min_length=1, max_length=512)


class MeOut(BaseModel):
    user_id: uuid.UUID
    email: str
    tenant: str
    role: str
    permissions: list[str]


class MemberIn(BaseModel):
    email: str = Field(min_length=3, max_length=255, pattern=r"^[^@\s]+@[^@\s]+$")
    role: Role
    # Only for a user that does not exist yet; an existing user keeps its password.
    password: str | None = Field(default=None, min_length=12, max_length=1024)
    full_name: str = Field(default="", max_length=255)


class MemberPatch(BaseModel):
    role: Role


class MemberOut(BaseModel):
    user_id: uuid.UUID
    email: str
    full_name: str
    role: str
    is_active: bool
    created_at: datetime


class AuditEventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    created_at: datetime
    tenant_id: str | None
    actor_user_id: uuid.UUID | None
    action: str
    target_type: str | None
    target_id: str | None
    outcome: str
    client_ip: str | None
    request_id: str | None
    details: dict

    @field_validator("details", mode="before")
    @classmethod
    def _json(cls, value: object) -> object:
        return json.loads(value) if isinstance(value, str) else value
