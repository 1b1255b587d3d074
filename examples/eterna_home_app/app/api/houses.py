"""Tenant-scoped CRUD for houses: every query filters on the request's tenant, so another tenant's id
answers 404 exactly like an id that does not exist."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Depends, HTTPException, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.api.schemas import HouseIn, HouseOut, HousePatch
from app.db import get_session
from app.models import House
from app.tenancy import current_tenant

router = APIRouter(prefix="/api/v1/houses", tags=["houses"])


def tenant_house(house_id: uuid.UUID, tenant: str, session: Session) -> House:
    house = session.scalar(select(House).where(House.id == house_id, House.tenant_id == tenant))
    if house is None:
        raise HTTPException(status_code=404, detail="house not found")
    return house


@router.get("", response_model=list[HouseOut])
def list_houses(
    limit: int = 100, offset: int = 0, tenant: str = Depends(current_tenant), session: Session = Depends(get_session)
) -> list[House]:
    limit = max(1, min(limit, 500))
    query = select(House).where(House.tenant_id == tenant).order_by(House.created_at, House.id)
    return list(session.scalars(query.limit(limit).offset(max(offset, 0))))


@router.post("", response_model=HouseOut, status_code=201)
def create_house(
    body: HouseIn, tenant: str = Depends(current_tenant), session: Session = Depends(get_session)
) -> House:
    house = House(tenant_id=tenant, name=body.name, address=body.address)
    session.add(house)
    session.commit()
    return house


@router.get("/{house_id}", response_model=HouseOut)
def get_house(
    house_id: uuid.UUID, tenant: str = Depends(current_tenant), session: Session = Depends(get_session)
) -> House:
    return tenant_house(house_id, tenant, session)


@router.patch("/{house_id}", response_model=HouseOut)
def update_house(
    house_id: uuid.UUID,
    body: HousePatch,
    tenant: str = Depends(current_tenant),
    session: Session = Depends(get_session),
) -> House:
    house = tenant_house(house_id, tenant, session)
    for field, value in body.model_dump(exclude_unset=True).items():
        setattr(house, field, value)
    session.commit()
    return house


@router.delete("/{house_id}", status_code=204)
def delete_house(
    house_id: uuid.UUID, tenant: str = Depends(current_tenant), session: Session = Depends(get_session)
) -> Response:
    house = tenant_house(house_id, tenant, session)
    session.delete(house)
    session.commit()
    return Response(status_code=204)
