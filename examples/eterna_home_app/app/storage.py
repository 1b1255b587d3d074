"""S3 access (boto3), path-style so it works with SeaweedFS and MinIO."""

from __future__ import annotations

import json
import sys
from functools import lru_cache
from typing import Any

import boto3
from botocore.config import Config

from app.config import get_settings


def make_s3_client(access_key_id: str, secret_access_key: str) -> Any:
    """A boto3 S3 client for the configured endpoint and region with the given identity.

    Args:
        access_key_id: the identity's access key (str).
        secret_access_key: its secret key (str).
    Returns:
        a botocore client for S3, path-style, SigV4, verifying TLS with the settings' CA file.
    """
    settings = get_settings()
    verify: bool | str = settings.TLS_CA_FILE if settings.S3_ENDPOINT_URL.startswith("https") else False
    return boto3.client(
        "s3",
        endpoint_url=settings.S3_ENDPOINT_URL,
        region_name=settings.S3_REGION,
        aws_access_key_id=access_key_id,
        aws_secret_access_key=secret_access_key,
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


@lru_cache
def s3_client() -> Any:
    """The application's own S3 client (S3_ACCESS_KEY_ID / S3_SECRET_ACCESS_KEY), one per process."""
    settings = get_settings()
    return make_s3_client(settings.S3_ACCESS_KEY_ID, settings.S3_SECRET_ACCESS_KEY)


class BadIdentity(ValueError):
    """The S3 identity file is unreadable or not {"access_key_id": str, "secret_access_key": str}."""


def identity_client(path: str) -> Any:
    """An S3 client with the identity of a JSON file, for work the application's identity may not do.

    Tenant erasure deletes object versions, which the object store's bucket policy denies to the application's
    identity (history cannot be lost through a compromised app); the operator's playbook hands the object store's
    administrator identity on stdin, the retention job reads it as a systemd credential.

    Args:
        path: the file's path, or "-" for standard input (str).
    Returns:
        a client as make_s3_client's.
    Raises:
        BadIdentity: the file cannot be read, is not JSON, or lacks either key as a non-empty string.
    """
    try:
        if path == "-":
            text = sys.stdin.read()
        else:
            with open(path, encoding="utf-8") as fh:
                text = fh.read()
        identity = json.loads(text)
    except (OSError, ValueError) as exc:
        raise BadIdentity(f"S3 identity {path}: {type(exc).__name__}") from None
    keys = ("access_key_id", "secret_access_key")
    if not isinstance(identity, dict) or not all(isinstance(identity.get(k), str) and identity[k] for k in keys):
        raise BadIdentity(f"S3 identity {path}: needs the strings {' and '.join(keys)}")
    return make_s3_client(identity["access_key_id"], identity["secret_access_key"])
