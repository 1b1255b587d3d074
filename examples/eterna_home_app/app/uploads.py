"""Uploads: bounded in size before they are read, and streamed to S3 without holding the file in memory.

The edge refuses bodies larger than MAX_UPLOAD_BYTES on the upload paths (the same variable sets both); this is
the app's own bound for clients that reach it directly or send a chunked body. Starlette spools the multipart
file to a temporary file (1 MiB in memory, the rest on disk); ``stream_to_s3`` then sends it to S3 in parts of
``PART_BYTES``, one part in memory at a time, hashing it on the way.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, BinaryIO

from boto3.s3.transfer import TransferConfig
from fastapi import HTTPException

from app.config import get_settings
from app.storage import s3_client

# Multipart part size (S3's minimum is 5 MiB): the largest piece of an upload the worker holds in memory.
PART_BYTES = 8 * 1024 * 1024
_TRANSFER = TransferConfig(
    multipart_threshold=PART_BYTES, multipart_chunksize=PART_BYTES, max_concurrency=1, use_threads=False
)


class UploadTooLarge(Exception):
    """The file is larger than MAX_UPLOAD_BYTES."""


class BodyTooLarge(HTTPException):
    """The request body grew past MAX_UPLOAD_BYTES while it was read: 413 (an HTTPException, so the body parser
    passes it on instead of turning it into a 400)."""

    def __init__(self, limit: int) -> None:
        super().__init__(status_code=413, detail=f"request body larger than {limit} bytes")


class _HashingReader:
    """A read-only, non-seekable view of ``source`` that counts and hashes what is read and raises
    UploadTooLarge once more than ``limit`` bytes were read (boto3 aborts the multipart upload then)."""

    def __init__(self, source: BinaryIO, limit: int) -> None:
        self._source = source
        self._limit = limit
        self.size = 0
        self.sha256 = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        chunk = self._source.read(size if size is not None and size >= 0 else PART_BYTES)
        self.size += len(chunk)
        if self.size > self._limit:
            raise UploadTooLarge(f"file larger than {self._limit} bytes")
        self.sha256.update(chunk)
        return chunk


def stream_to_s3(source: BinaryIO, bucket: str, key: str, content_type: str) -> tuple[int, str]:
    """Copy ``source`` (a file object, read in parts) to ``bucket``/``key``.

    Returns (size in bytes, SHA-256 hex digest). Raises HTTPException 413 when the file exceeds
    MAX_UPLOAD_BYTES (nothing is left in the bucket); S3 errors propagate (botocore exceptions).
    """
    reader = _HashingReader(source, get_settings().MAX_UPLOAD_BYTES)
    try:
        s3_client().upload_fileobj(reader, bucket, key, ExtraArgs={"ContentType": content_type}, Config=_TRANSFER)
    except UploadTooLarge as exc:
        raise HTTPException(status_code=413, detail=str(exc)) from None
    return reader.size, reader.sha256.hexdigest()


class UploadLimitMiddleware:
    """ASGI middleware: a request whose Content-Length exceeds MAX_UPLOAD_BYTES is answered 413 before its body
    is read; a body without Content-Length (chunked) is counted as it arrives and refused once it exceeds it."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS", "DELETE"):
            await self.app(scope, receive, send)
            return
        limit = get_settings().MAX_UPLOAD_BYTES
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            await _refuse(send, limit)
            return
        received = 0
        started = False

        async def counting_receive() -> dict:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        async def tracking_send(message: dict) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if started:
                raise
            await _refuse(send, limit)


async def _refuse(send: Any, limit: int) -> None:
    body = json.dumps({"detail": f"request body larger than {limit} bytes"}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 413, "headers": headers + [(b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})
