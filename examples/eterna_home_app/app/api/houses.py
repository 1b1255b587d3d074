"""Tenant-scoped CRUD for houses: every query filters on the tenant of the caller's verified token, so
another tenant's id answers 404 exactly like an id that does not exist."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from pydantic_core import to_json
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from app import audit, db
from app.api.schemas import HouseIn, HouseOut, HousePatch
from app.auth import Principal, require
from app.db import database_slot, get_session, in_database_thread
from app.models import House

router = APIRouter(prefix="/api/v1/houses", tags=["houses"])
# The columns the house list reads: the fields of HouseOut, in its order.
HOUSE_FIELDS = tuple(HouseOut.model_fields)
_HOUSES = House.__table__.c
# One Core statement for every page of every tenant, built once: SQLAlchemy finds its compiled form without
# building and hashing a new statement, and skips the ORM layer. The tenant is always a bound parameter.
HOUSE_PAGE = (
    select(*(_HOUSES[field] for field in HOUSE_FIELDS))
    .where(_HOUSES.tenant_id == bindparam("tenant"))
    .order_by(_HOUSES.created_at, _HOUSES.id)
    .limit(bindparam("limit"))
    .offset(bindparam("offset"))
)


def tenant_house(house_id: uuid.UUID, tenant: str, session: Session) -> House:
    house = session.scalar(select(House).where(House.id == house_id, House.tenant_id == tenant))
    if house is None:
        raise HTTPException(status_code=404, detail="house not found")
    return house


@router.get("", response_model=list[HouseOut])
async def list_houses(
    limit: int = 100,
    offset: int = 0,
    principal: Principal = Depends(require("houses:read")),
) -> Response:
    """The caller's tenant's houses, oldest first: ``limit`` (1 to 500, clamped) rows from ``offset``.

    One of the worker's database slots is held in the event loop while the query and the JSON encoding run in
    one hop to the slots' own threads (``in_database_thread``). ``response_model`` documents the body.
    """
    async with database_slot():
        body = await in_database_thread(house_list_json, principal.tenant, limit, offset)
    return Response(body, media_type="application/json")


def house_list_json(tenant: str, limit: int, offset: int) -> bytes:
    """The JSON list of ``HouseOut`` for ``tenant``'s houses ordered by creation time then id.

    One SELECT of HouseOut's columns on a pooled connection in autocommit mode: no ORM session or objects, no
    BEGIN and no ROLLBACK (one round trip). The connection goes back to the pool before this returns, so before
    the caller frees its slot; giving back an autocommit connection sends nothing to the server.

    :param tenant: the tenant of the verified token; the only tenant whose rows are read.
    :param limit: rows wanted, clamped to 1..500.
    :param offset: rows skipped, negative counts as 0.
    :returns: UTF-8 JSON bytes, identical to FastAPI's encoding of ``list[HouseOut]`` (without validating the rows).
    :raises sqlalchemy.exc.SQLAlchemyError: the query failed (app.outages answers 503 for an outage).
    """
    params = {"tenant": tenant, "limit": max(1, min(limit, 500)), "offset": max(offset, 0)}
    with db.get_engine().connect() as connection:  # read through the module: tests swap the engine
        connection.execution_options(isolation_level="AUTOCOMMIT")
        rows = connection.execute(HOUSE_PAGE, params).all()
    return house_rows_json(rows)


def house_rows_json(rows: Sequence[Sequence[Any]]) -> bytes:
    """Rows of ``HOUSE_PAGE`` as the JSON list FastAPI would send for ``list[HouseOut]``, without validating them.

    The columns are HouseOut's fields with its types (NOT NULL, UUID, text, timestamptz), so validation would
    change nothing: pydantic-core encodes UUIDs and datetimes (naive or aware, any offset) as the response model
    does (tests/test_db_sessions.py compares the bytes).

    :param rows: tuples in ``HOUSE_FIELDS`` order.
    :returns: UTF-8 JSON bytes.
    :raises ValueError: a row with another number of columns.
    """
    return to_json([dict(zip(HOUSE_FIELDS, row, strict=True)) for row in rows])


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
