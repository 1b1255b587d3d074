"""Engine and sessions (SQLAlchemy 2, psycopg 3)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from functools import lru_cache

from sqlalchemy import Engine, create_engine
from sqlalchemy.orm import Session, sessionmaker

from app.config import get_settings
from app.metrics import instrument_pool


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
    engine = create_engine(
        settings.DATABASE_URL,
        pool_pre_ping=True,
        pool_size=settings.DB_POOL_SIZE,
        max_overflow=settings.DB_MAX_OVERFLOW,
        connect_args=connect_args,
    )
    # Saturation metrics of this process's pool (checked out now, at most DB_POOL_SIZE + DB_MAX_OVERFLOW).
    instrument_pool(engine, settings.DB_POOL_SIZE + settings.DB_MAX_OVERFLOW)
    return engine


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
