"""Background work: BIM conversion. The "conversion" reads the uploaded model from S3 and writes a
JSON summary beside it; what matters for the deployment is the asynchronous round trip."""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from datetime import timedelta

from celery import Task
from celery.exceptions import SoftTimeLimitExceeded, TimeLimitExceeded
from sqlalchemy import select

from app.celery_app import celery_app
from app.config import get_settings
from app.db import session_scope
from app.logging_setup import tenant_id_var
from app.models import BIMModel, utcnow
from app.storage import s3_client

log = logging.getLogger("app.tasks")


# Bytes read from S3 at a time: a model of any size is converted in constant memory.
READ_CHUNK = 1024 * 1024


def _soft_limit(exc: BaseException) -> bool:
    """True when ``exc`` is the soft time limit, also as the cause botocore wraps it in (HTTPClientError(error=...))."""
    seen = 0
    while exc is not None and seen < 5:
        if isinstance(exc, SoftTimeLimitExceeded):
            return True
        exc = getattr(exc, "kwargs", {}).get("error") or exc.__cause__ or exc.__context__
        seen += 1
    return False


def _record_failure(bim_id: str, tenant_id: str, error: str) -> None:
    """Mark one conversion failed in its own session (the row is the task's only record)."""
    with session_scope() as session:
        bim = session.scalar(select(BIMModel).where(BIMModel.id == uuid.UUID(bim_id), BIMModel.tenant_id == tenant_id))
        if bim is not None and bim.conversion_status in ("queued", "processing"):
            bim.conversion_status = "failed"
            bim.conversion_error = error
            session.commit()


class ConversionTask(Task):
    """A task whose hard time limit is recorded too: Celery kills the process running it, then calls on_failure in
    the worker's main process with TimeLimitExceeded (and acknowledges the message: it is not delivered again)."""

    def on_failure(self, exc, task_id, args, kwargs, einfo) -> None:  # noqa: ANN001 - celery's signature
        if isinstance(exc, TimeLimitExceeded) and len(args) >= 2:
            limit = get_settings().CELERY_TASK_TIME_LIMIT
            _record_failure(args[0], args[1], f"time limit exceeded (hard, {limit} s)")
            log.error("BIM conversion of %s stopped at its hard time limit (%s s)", args[0], limit)


@celery_app.task(name="app.tasks.convert_bim", bind=True, max_retries=3, base=ConversionTask)
def convert_bim(self, bim_id: str, tenant_id: str) -> str:  # noqa: ANN001 - celery's bound task
    """Convert one BIM model. Any failure, a soft time limit (SoftTimeLimitExceeded) included, is recorded on the
    row (status "failed", the reason in conversion_error) and re-raised: Celery acknowledges a failed task, so the
    broker does not deliver it again. A hard time limit is recorded by ConversionTask.on_failure."""
    tenant_id_var.set(tenant_id)
    settings = get_settings()
    with session_scope() as session:
        bim = session.scalar(select(BIMModel).where(BIMModel.id == uuid.UUID(bim_id), BIMModel.tenant_id == tenant_id))
        if bim is None:
            log.warning("BIM model %s not found", bim_id)
            return "missing"
        log.info("BIM conversion of %s started (delivery %s)", bim_id, self.request.id)
        try:
            bim.conversion_status = "processing"
            session.commit()
            body = s3_client().get_object(Bucket=settings.S3_BUCKET_BIM, Key=bim.object_key)["Body"]
            digest, size, lines = hashlib.sha256(), 0, 0
            for chunk in body.iter_chunks(READ_CHUNK):
                digest.update(chunk)
                size += len(chunk)
                lines += chunk.count(b"\n")
            summary = {"source": bim.object_key, "bytes": size, "sha256": digest.hexdigest(), "lines": lines}
            key = f"{bim.object_key}.converted.json"
            s3_client().put_object(
                Bucket=settings.S3_BUCKET_BIM,
                Key=key,
                Body=json.dumps(summary).encode(),
                ContentType="application/json",
            )
        except Exception as exc:
            session.rollback()
            bim.conversion_status = "failed"
            if _soft_limit(exc):
                bim.conversion_error = f"time limit exceeded (soft, {settings.CELERY_TASK_SOFT_TIME_LIMIT} s)"
            else:
                bim.conversion_error = str(exc)[:2000]
            session.commit()
            log.exception("BIM conversion of %s failed", bim_id)
            raise
        bim.conversion_status = "completed"
        bim.converted_object_key = key
        bim.conversion_completed_at = utcnow()
        bim.conversion_error = None
        session.commit()
        log.info("BIM conversion of %s completed", bim_id)
        return "completed"


@celery_app.task(name="app.tasks.requeue_stale_conversions")
def requeue_stale_conversions() -> int:
    """Periodic (beat): re-queue conversions stuck in 'queued' for more than 15 minutes."""
    cutoff = utcnow() - timedelta(minutes=15)
    with session_scope() as session:
        stale = session.scalars(
            select(BIMModel).where(BIMModel.conversion_status == "queued", BIMModel.conversion_requested_at < cutoff)
        ).all()
        for bim in stale:
            convert_bim.delay(str(bim.id), bim.tenant_id)
        return len(stale)
