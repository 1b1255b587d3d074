"""S3 access (boto3), path-style so it works with SeaweedFS and MinIO."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import boto3
from botocore.config import Config

from app.config import get_settings


@lru_cache
def s3_client() -> Any:
    settings = get_settings()
    verify: bool | str = settings.TLS_CA_FILE if settings.S3_ENDPOINT_URL.startswith("https") else False
    return boto3.client(
        "s3",
        endpoint_url=settings.S3_ENDPOINT_URL,
        region_name=settings.S3_REGION,
        aws_access_key_id=settings.S3_ACCESS_KEY_ID,
        aws_secret_access_key=settings.S3_SECRET_ACCESS_KEY,
        verify=verify,
        config=Config(
            s3={"addressing_style": "path"},
            signature_version="s3v4",
            connect_timeout=settings.READY_TIMEOUT,
            read_timeout=30,
            retries={"max_attempts": 2},
            # Checksums only where S3 requires them: streamed parts are then sent as plain bodies, which every
            # S3 implementation the role supports (SeaweedFS, MinIO) accepts.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        ),
    )
