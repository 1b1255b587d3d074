"""Documents: upload to S3, list, read, download, delete; tenant-scoped like houses. Object keys carry
the tenant so a bucket listing is partitioned as well."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Depends, File, Form, HTTPException, Request, Response, UploadFile
from fastapi.responses import StreamingResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from app import audit
from app.api.houses import tenant_house
from app.api.schemas import DocumentOut
from app.auth import Principal, require
from app.config import get_settings
from app.db import get_session
from app.models import Document
from app.storage import s3_client
from app.uploads import stream_to_s3

router = APIRouter(prefix="/api/v1/documents", tags=["documents"])


# Bytes per read when a download is streamed from S3 to the client.
DOWNLOAD_CHUNK = 1024 * 1024


def tenant_document(document_id: uuid.UUID, tenant: str, session: Session) -> Document:
    doc = session.scalar(select(Document).where(Document.id == document_id, Document.tenant_id == tenant))
    if doc is None:
        raise HTTPException(status_code=404, detail="document not found")
    return doc


@router.post("", response_model=DocumentOut, status_code=201)
def upload_document(
    file: UploadFile = File(...),
    house_id: uuid.UUID | None = Form(default=None),
    principal: Principal = Depends(require("documents:write")),
    session: Session = Depends(get_session),
) -> Document:
    tenant = principal.tenant
    if house_id is not None:
        tenant_house(house_id, tenant, session)
    doc_id = uuid.uuid4()
    key = f"{tenant}/{doc_id}"
    content_type = file.content_type or "application/octet-stream"
    size, sha256 = stream_to_s3(file.file, get_settings().S3_BUCKET_DOCUMENTS, key, content_type)
    doc = Document(
        id=doc_id,
        tenant_id=tenant,
        house_id=house_id,
        filename=(file.filename or "upload")[:255],
        content_type=content_type,
        size_bytes=size,
        sha256=sha256,
        object_key=key,
    )
    session.add(doc)
    session.commit()
    return doc


@router.get("", response_model=list[DocumentOut])
def list_documents(
    principal: Principal = Depends(require("documents:read")), session: Session = Depends(get_session)
) -> list[Document]:
    query = select(Document).where(Document.tenant_id == principal.tenant).order_by(Document.created_at).limit(500)
    return list(session.scalars(query))


@router.get("/{document_id}", response_model=DocumentOut)
def get_document(
    document_id: uuid.UUID,
    principal: Principal = Depends(require("documents:read")),
    session: Session = Depends(get_session),
) -> Document:
    return tenant_document(document_id, principal.tenant, session)


@router.get("/{document_id}/download")
def download_document(
    document_id: uuid.UUID,
    principal: Principal = Depends(require("documents:read")),
    session: Session = Depends(get_session),
) -> Response:
    doc = tenant_document(document_id, principal.tenant, session)
    obj = s3_client().get_object(Bucket=get_settings().S3_BUCKET_DOCUMENTS, Key=doc.object_key)
    return StreamingResponse(
        obj["Body"].iter_chunks(DOWNLOAD_CHUNK),
        media_type=doc.content_type,
        headers={"Content-Disposition": f'attachment; filename="{doc.filename}"', "X-Content-SHA256": doc.sha256},
    )


@router.delete("/{document_id}", status_code=204)
def delete_document(
    document_id: uuid.UUID,
    request: Request,
    principal: Principal = Depends(require("documents:delete")),
    session: Session = Depends(get_session),
) -> Response:
    doc = tenant_document(document_id, principal.tenant, session)
    s3_client().delete_object(Bucket=get_settings().S3_BUCKET_DOCUMENTS, Key=doc.object_key)
    session.delete(doc)
    audit.record(
        session,
        request,
        action="document_deleted",
        outcome="success",
        tenant_id=principal.tenant,
        actor_user_id=principal.user_id,
        target_type="document",
        target_id=doc.id,
        details={"filename": doc.filename, "sha256": doc.sha256},
    )
    session.commit()
    return Response(status_code=204)
