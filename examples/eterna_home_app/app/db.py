"""Engine and sessions (SQLAlchemy 2, psycopg 3)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from functools import lru_cache

from sqlalchemy import Engine, create_engine
from sqlalchemy.orm import Session, sessionmaker

from app.config import get_settings


@lru_cache
def get_engine() -> Engine:
    settings = get_settings()
    # A host that does not answer fails the request after READY_TIMEOUT (libpq's minimum is 2 s), answered 503
    # by app.outages, instead of holding the API worker for the kernel's TCP timeout.
    connect_args = (
        {"connect_timeout": max(2, math.ceil(settings.READY_TIMEOUT))}
        if settings.DATABASE_URL.startswith("postgresql")
        else {}
    )
    return create_engine(
        settings.DATABASE_URL, pool_pre_ping=True, pool_size=5, max_overflow=5, connect_args=connect_args
    )


@lru_cache
def _factory() -> sessionmaker[Session]:
    return sessionmaker(bind=get_engine(), expire_on_commit=False)


def session_scope() -> Session:
    return _factory()()


def get_session() -> Iterator[Session]:
    session = session_scope()
    try:
        yield session
    finally:
        session.close()
