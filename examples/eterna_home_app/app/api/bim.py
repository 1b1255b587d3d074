"""BIM models: upload, then request an asynchronous conversion that a Celery worker completes."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Depends, File, Form, HTTPException, Request, Response, UploadFile
from sqlalchemy import select
from sqlalchemy.orm import Session

from app import audit
from app.api.houses import tenant_house
from app.api.schemas import BIMOut
from app.auth import Principal, require
from app.config import get_settings
from app.db import get_session
from app.models import BIMModel, utcnow
from app.storage import s3_client
from app.uploads import stream_to_s3

router = APIRouter(prefix="/api/v1/bim-models", tags=["bim"])


def tenant_bim(bim_id: uuid.UUID, tenant: str, session: Session) -> BIMModel:
    bim = session.scalar(select(BIMModel).where(BIMModel.id == bim_id, BIMModel.tenant_id == tenant))
    if bim is None:
        raise HTTPException(status_code=404, detail="BIM model not found")
    return bim


@router.post("", response_model=BIMOut, status_code=201)
def upload_bim(
    file: UploadFile = File(...),
    house_id: uuid.UUID | None = Form(default=None),
    principal: Principal = Depends(require("bim:write")),
    session: Session = Depends(get_session),
) -> BIMModel:
    tenant = principal.tenant
    if house_id is not None:
        tenant_house(house_id, tenant, session)
    bim_id = uuid.uuid4()
    key = f"{tenant}/{bim_id}/{(file.filename or 'model.ifc')[:200]}"
    size, _ = stream_to_s3(file.file, get_settings().S3_BUCKET_BIM, key, "application/octet-stream")
    bim = BIMModel(
        id=bim_id,
        tenant_id=tenant,
        house_id=house_id,
        filename=file.filename or "model.ifc",
        object_key=key,
        size_bytes=size,
    )
    session.add(bim)
    session.commit()
    return bim


@router.get("", response_model=list[BIMOut])
def list_bims(
    principal: Principal = Depends(require("bim:read")), session: Session = Depends(get_session)
) -> list[BIMModel]:
    query = select(BIMModel).where(BIMModel.tenant_id == principal.tenant).order_by(BIMModel.created_at).limit(500)
    return list(session.scalars(query))


@router.get("/{bim_id}", response_model=BIMOut)
def get_bim(
    bim_id: uuid.UUID, principal: Principal = Depends(require("bim:read")), session: Session = Depends(get_session)
) -> BIMModel:
    return tenant_bim(bim_id, principal.tenant, session)


@router.delete("/{bim_id}", status_code=204)
def delete_bim(
    bim_id: uuid.UUID,
    request: Request,
    principal: Principal = Depends(require("bim:delete")),
    session: Session = Depends(get_session),
) -> Response:
    bim = tenant_bim(bim_id, principal.tenant, session)
    bucket = get_settings().S3_BUCKET_BIM
    for key in filter(None, (bim.object_key, bim.converted_object_key)):
        s3_client().delete_object(Bucket=bucket, Key=key)
    session.delete(bim)
    audit.record(
        session,
        request,
        action="bim_model_deleted",
        outcome="success",
        tenant_id=principal.tenant,
        actor_user_id=principal.user_id,
        target_type="bim_model",
        target_id=bim.id,
        details={"filename": bim.filename},
    )
    session.commit()
    return Response(status_code=204)


@router.post("/{bim_id}/convert", response_model=BIMOut, status_code=202)
def request_conversion(
    bim_id: uuid.UUID, principal: Principal = Depends(require("bim:write")), session: Session = Depends(get_session)
) -> BIMModel:
    from app.tasks import convert_bim

    tenant = principal.tenant
    bim = tenant_bim(bim_id, tenant, session)
    if bim.conversion_status in ("queued", "processing"):
        raise HTTPException(status_code=409, detail=f"conversion already {bim.conversion_status}")
    bim.conversion_status = "queued"
    bim.conversion_requested_at = utcnow()
    bim.conversion_completed_at = None
    bim.conversion_error = None
    session.commit()
    convert_bim.delay(str(bim.id), tenant)
    return bim
