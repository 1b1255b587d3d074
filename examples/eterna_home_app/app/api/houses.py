"""Tenant-scoped CRUD for houses: every query filters on the tenant of the caller's verified token, so
another tenant's id answers 404 exactly like an id that does not exist."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from app import audit
from app.api.schemas import HouseIn, HouseOut, HousePatch
from app.auth import Principal, require
from app.db import get_session
from app.models import House

router = APIRouter(prefix="/api/v1/houses", tags=["houses"])


def tenant_house(house_id: uuid.UUID, tenant: str, session: Session) -> House:
    house = session.scalar(select(House).where(House.id == house_id, House.tenant_id == tenant))
    if house is None:
        raise HTTPException(status_code=404, detail="house not found")
    return house


@router.get("", response_model=list[HouseOut])
def list_houses(
    limit: int = 100,
    offset: int = 0,
    principal: Principal = Depends(require("houses:read")),
    session: Session = Depends(get_session),
) -> list[House]:
    tenant = principal.tenant
    limit = max(1, min(limit, 500))
    query = select(House).where(House.tenant_id == tenant).order_by(House.created_at, House.id)
    return list(session.scalars(query.limit(limit).offset(max(offset, 0))))


@router.post("", response_model=HouseOut, status_code=201)
def create_house(
    body: HouseIn, principal: Principal = Depends(require("houses:write")), session: Session = Depends(get_session)
) -> House:
    house = House(tenant_id=principal.tenant, name=body.name, address=body.address)
    session.add(house)
    session.commit()
    return house


@router.get("/{house_id}", response_model=HouseOut)
def get_house(
    house_id: uuid.UUID, principal: Principal = Depends(require("houses:read")), session: Session = Depends(get_session)
) -> House:
    return tenant_house(house_id, principal.tenant, session)


@router.patch("/{house_id}", response_model=HouseOut)
def update_house(
    house_id: uuid.UUID,
    body: HousePatch,
    principal: Principal = Depends(require("houses:write")),
    session: Session = Depends(get_session),
) -> House:
    house = tenant_house(house_id, principal.tenant, session)
    for field, value in body.model_dump(exclude_unset=True).items():
        setattr(house, field, value)
    session.commit()
    return house


@router.delete("/{house_id}", status_code=204)
def delete_house(
    house_id: uuid.UUID,
    request: Request,
    principal: Principal = Depends(require("houses:delete")),
    session: Session = Depends(get_session),
) -> Response:
    house = tenant_house(house_id, principal.tenant, session)
    session.delete(house)
    audit.record(
        session,
        request,
        action="house_deleted",
        outcome="success",
        tenant_id=principal.tenant,
        actor_user_id=principal.user_id,
        target_type="house",
        target_id=house.id,
        details={"name": house.name},
    )
    session.commit()
    return Response(status_code=204)
