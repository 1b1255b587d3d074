"""Settings read from the environment (the app role renders them into an env file)."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from functools import cached_property, lru_cache

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.tenancy import TENANT_RE

KID_RE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
SECRET_RE = re.compile(r"^[A-Za-z0-9]{32,}$")
# HMAC algorithms only (the edge verifies the same tokens with the same shared keys). RFC 7518 3.2:
# the key must be at least as long as the hash output.
JWT_ALGORITHMS = {"HS256": 32, "HS384": 48, "HS512": 64}
DEFAULT_INTERNAL_NETWORKS = "127.0.0.0/8,::1/128,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fc00::/7"


def _split(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


class SettingsError(ValueError):
    """A setting has a bad value; the message names the setting, never a secret."""


@dataclass(frozen=True)
class SigningKey:
    """One entry of JWT_KEYS: ``kid``, the shared secret (ASCII, used as the HMAC key bytes) and
    ``not_after`` (Unix epoch seconds after which tokens signed with it are refused; None: no end)."""

    kid: str
    secret: str = field(repr=False)
    not_after: int | None = None


def parse_jwt_keys(value: str) -> dict[str, SigningKey]:
    """Parse JWT_KEYS: comma-separated ``kid:secret`` or ``kid:secret:not_after`` entries.

    Returns a dict kid -> SigningKey, in the order given. Raises SettingsError naming JWT_KEYS and
    the entry's position or kid (never the secret) on any malformed entry or duplicate kid.
    """
    keys: dict[str, SigningKey] = {}
    for position, entry in enumerate(value.split(","), start=1):
        entry = entry.strip()
        if not entry:
            continue
        parts = entry.split(":")
        if len(parts) not in (2, 3):
            raise SettingsError(f"JWT_KEYS entry {position}: expected kid:secret or kid:secret:not_after")
        kid, secret = parts[0], parts[1]
        if not KID_RE.match(kid):
            raise SettingsError(f"JWT_KEYS entry {position}: kid must match {KID_RE.pattern}")
        if kid in keys:
            raise SettingsError(f"JWT_KEYS: kid {kid!r} appears twice")
        if not SECRET_RE.match(secret):
            raise SettingsError(f"JWT_KEYS kid {kid!r}: the secret must be at least 32 characters of [A-Za-z0-9]")
        not_after = None
        if len(parts) == 3:
            if not re.fullmatch(r"[0-9]{1,12}", parts[2]):
                raise SettingsError(f"JWT_KEYS kid {kid!r}: not_after must be Unix epoch seconds")
            not_after = int(parts[2])
        keys[kid] = SigningKey(kid, secret, not_after)
    return keys


def parse_networks(value: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """Parse INTERNAL_NETWORKS (comma-separated CIDRs). Raises SettingsError naming the bad entry."""
    networks = []
    for item in _split(value):
        try:
            networks.append(ipaddress.ip_network(item))
        except ValueError as exc:
            raise SettingsError(f"INTERNAL_NETWORKS: {item!r} is not a network ({exc})") from None
    return tuple(networks)


def parse_latency_tenants(value: str) -> frozenset[str] | None:
    """Parse METRICS_LATENCY_TENANTS (comma-separated tenant ids, or "*").

    Returns None when the list holds "*" (every tenant keeps its label), else the set of ids (empty: none does).
    Raises SettingsError naming METRICS_LATENCY_TENANTS and the entry that is not a tenant id.
    """
    entries = _split(value)
    if "*" in entries:
        return None
    for entry in entries:
        if not TENANT_RE.fullmatch(entry):
            raise SettingsError(f"METRICS_LATENCY_TENANTS: {entry!r} is not a tenant id ([a-z0-9][a-z0-9-]{{0,62}})")
    return frozenset(entries)


class Settings(BaseSettings):
    # hide_input_in_errors: a validation error never echoes a value (JWT_KEYS holds secrets).
    model_config = SettingsConfigDict(env_file=None, extra="ignore", case_sensitive=True, hide_input_in_errors=True)

    ENVIRONMENT: str = "development"
    DEBUG: bool = False
    SECRET_KEY: str = Field(default="", repr=False)
    DATABASE_URL: str = "postgresql+psycopg://eterna@localhost/eterna"
    REDIS_URL: str = "redis://localhost:6379/0"
    CELERY_BROKER_URL: str = "amqp://guest@localhost:5672//"
    # CA bundle used to verify TLS to the broker, Redis and S3 (the system store by default).
    TLS_CA_FILE: str = "/etc/ssl/certs/ca-certificates.crt"
    S3_ENDPOINT_URL: str = "http://localhost:8333"
    S3_REGION: str = "us-east-1"
    S3_ACCESS_KEY_ID: str = Field(default="", repr=False)
    S3_SECRET_ACCESS_KEY: str = Field(default="", repr=False)
    S3_BUCKET_DOCUMENTS: str = "documents"
    S3_BUCKET_BIM: str = "bim-models"
    # Comma-separated lists.
    CORS_ORIGINS: str = ""
    ALLOWED_HOSTS: str = "localhost,127.0.0.1"
    # Seconds each dependency check of /health/ready may take.
    READY_TIMEOUT: float = 3.0
    # Seconds a /health/ready result is reused (0: computed on every call).
    READY_CACHE_SECONDS: float = Field(default=5.0, ge=0)
    # Clients (request.client.host) allowed to read /health/ready and /metrics; others get 404.
    INTERNAL_NETWORKS: str = DEFAULT_INTERNAL_NETWORKS
    LOG_LEVEL: str = "INFO"
    # Largest request body of an upload in bytes (the edge's client_max_body_size on the upload paths is the same
    # value, set by the roles from one variable). Larger bodies are refused with 413 before they are read.
    MAX_UPLOAD_BYTES: int = Field(default=512 * 1024 * 1024, gt=0)
    # Celery task time limits in seconds: the soft one raises inside the task (which records the failure), the
    # hard one kills the worker process. Both below RabbitMQ's consumer_timeout, or a long task is redelivered.
    CELERY_TASK_SOFT_TIME_LIMIT: int = Field(default=1350, gt=0)
    CELERY_TASK_TIME_LIMIT: int = Field(default=1500, gt=0)
    # Seconds a client is told to wait (Retry-After) when a dependency is unavailable (503).
    DEPENDENCY_RETRY_AFTER: int = Field(default=30, gt=0)
    # Database connections of each process's SQLAlchemy pool, and the extra ones it may open beyond them at peak: a
    # process holds at most DB_POOL_SIZE + DB_MAX_OVERFLOW and keeps those it opened (app.db; the app role's
    # preflight checks that every process of every app host together fits PostgreSQL's max_connections).
    DB_POOL_SIZE: int = Field(default=5, ge=1)
    DB_MAX_OVERFLOW: int = Field(default=5, ge=0)
    # Tenants whose latency histogram keeps a label of its own: "*" every tenant; "" none (tenant="_all"); or a
    # comma-separated list of tenant ids (the others share tenant="_other"). Bounds the histogram's series.
    METRICS_LATENCY_TENANTS: str = "*"

    # Access tokens (JWT, HMAC). JWT_KEYS: "kid:secret[:not_after],..."; JWT_ACTIVE_KID signs.
    JWT_KEYS: str = Field(default="", repr=False)
    JWT_ACTIVE_KID: str = ""
    JWT_ALGORITHM: str = "HS256"
    JWT_ISSUER: str = "eterna-home"
    JWT_AUDIENCE: str = "eterna-api"
    # Seconds.
    JWT_ACCESS_TTL: int = Field(default=900, gt=0)
    JWT_REFRESH_TTL: int = Field(default=1_209_600, gt=0)
    JWT_LEEWAY: int = Field(default=30, ge=0)

    @property
    def cors_origins(self) -> list[str]:
        return _split(self.CORS_ORIGINS)

    @property
    def allowed_hosts(self) -> list[str]:
        return _split(self.ALLOWED_HOSTS)

    @cached_property
    def jwt_keys(self) -> dict[str, SigningKey]:
        """kid -> SigningKey parsed from JWT_KEYS (validated when the settings were built)."""
        return parse_jwt_keys(self.JWT_KEYS)

    @cached_property
    def latency_tenants(self) -> frozenset[str] | None:
        """METRICS_LATENCY_TENANTS parsed: None for every tenant ("*"), else the set of tenants labelled alone."""
        return parse_latency_tenants(self.METRICS_LATENCY_TENANTS)

    @cached_property
    def internal_networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        """INTERNAL_NETWORKS parsed (validated when the settings were built)."""
        return parse_networks(self.INTERNAL_NETWORKS)

    @model_validator(mode="after")
    def _check_tokens_and_networks(self) -> Settings:
        if self.JWT_ALGORITHM not in JWT_ALGORITHMS:
            raise SettingsError(f"JWT_ALGORITHM must be one of {', '.join(JWT_ALGORITHMS)}")
        keys = parse_jwt_keys(self.JWT_KEYS)
        minimum = JWT_ALGORITHMS[self.JWT_ALGORITHM]
        for key in keys.values():
            if len(key.secret) < minimum:
                raise SettingsError(
                    f"JWT_KEYS kid {key.kid!r}: {self.JWT_ALGORITHM} needs a secret of at least {minimum} characters"
                )
        if keys or self.JWT_ACTIVE_KID:
            active = keys.get(self.JWT_ACTIVE_KID)
            if active is None:
                raise SettingsError("JWT_ACTIVE_KID must name a kid of JWT_KEYS")
            if active.not_after is not None:
                raise SettingsError("JWT_ACTIVE_KID must name a key without not_after (a retired key cannot sign)")
        parse_networks(self.INTERNAL_NETWORKS)
        parse_latency_tenants(self.METRICS_LATENCY_TENANTS)
        if self.CELERY_TASK_SOFT_TIME_LIMIT >= self.CELERY_TASK_TIME_LIMIT:
            raise SettingsError("CELERY_TASK_SOFT_TIME_LIMIT must be below CELERY_TASK_TIME_LIMIT")
        return self

    @model_validator(mode="after")
    def _production_guard(self) -> Settings:
        if self.ENVIRONMENT == "production":
            problems = []
            if self.DEBUG:
                problems.append("DEBUG must be false")
            if "*" in self.cors_origins:
                problems.append("CORS_ORIGINS must not contain '*'")
            if "*" in self.allowed_hosts:
                problems.append("ALLOWED_HOSTS must not contain '*'")
            if len(self.SECRET_KEY) < 32:
                problems.append("SECRET_KEY must be at least 32 characters")
            if self.JWT_ACTIVE_KID not in self.jwt_keys:
                problems.append("JWT_KEYS must hold the key named by JWT_ACTIVE_KID")
            if problems:
                raise ValueError("unsafe production settings: " + "; ".join(problems))
        return self


@lru_cache
def get_settings() -> Settings:
    """The process's settings, read once from the environment (raises pydantic.ValidationError)."""
    return Settings()
