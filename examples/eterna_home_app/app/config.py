"""Settings read from the environment (the app role renders them into an env file)."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def _split(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=None, extra="ignore", case_sensitive=True)

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
    LOG_LEVEL: str = "INFO"
    MAX_UPLOAD_BYTES: int = 50 * 1024 * 1024

    @property
    def cors_origins(self) -> list[str]:
        return _split(self.CORS_ORIGINS)

    @property
    def allowed_hosts(self) -> list[str]:
        return _split(self.ALLOWED_HOSTS)

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
            if problems:
                raise ValueError("unsafe production settings: " + "; ".join(problems))
        return self


@lru_cache
def get_settings() -> Settings:
    return Settings()
