"""Settings, read from the environment names promised in docs/contract.md."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_SQLITE_URL = f"sqlite+aiosqlite:///{Path.cwd() / 'corti-usage.db'}"


class Settings(BaseSettings):
    """Flat settings object; every field maps to one environment variable."""

    model_config = SettingsConfigDict(
        env_prefix="", case_sensitive=False, extra="ignore"
    )

    database_url: str = DEFAULT_SQLITE_URL
    # PostgreSQL connections per process: kept open in the pool, and opened
    # beyond it under load (closed again when returned).
    # 40 kept (opened as needed, then kept) and none beyond: the same bound
    # of 40 per process as 20 plus 20 overflow, without opening and closing
    # an overflow connection per request whenever more than 20 requests are
    # in flight (bench: p99 164 -> 104 ms at concurrency 32, 0.1-0.3 ms less
    # CPU per webhook).
    database_pool_size: int = Field(default=40, ge=1)
    database_max_overflow: int = Field(default=0, ge=0)

    # Corti credentials and hosts (the SDK's `base`, `wss`, `login`).
    corti_environment: str = "eu"
    corti_tenant_name: str | None = None
    corti_client_id: str | None = None
    corti_client_secret: SecretStr | None = None
    corti_base_url: str | None = None
    corti_wss_url: str | None = None
    corti_login_url: str | None = None
    corti_timeout_seconds: float = 60.0

    # HTTP API.
    webhook_secret: SecretStr | None = None
    max_body_bytes: int = 4 * 1024 * 1024
    max_upload_bytes: int = 150 * 1024 * 1024
    request_timeout_seconds: float = 30.0
    statement_timeout_ms: int = 15_000
    rate_limit_per_minute: int = 0
    # How often an open websocket re-checks that its key is not revoked.
    ws_key_recheck_seconds: float = 5.0
    # A request body that brings no bytes for this long is answered 408.
    body_read_timeout_seconds: float = 10.0
    # A request line and headers not complete this long after the connection opened
    # (or after the request's first byte, on a keep-alive connection) get 408.
    header_read_timeout_seconds: float = 10.0
    # After SIGTERM: how long requests in flight may take to finish (the listener is
    # closed at once) before their connections are closed and the process exits.
    shutdown_timeout_seconds: float = 60.0
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # GET /metrics on the API (Prometheus text format, no key).
    metrics_enabled: bool = True

    # Background worker.
    worker_concurrency: int = 32
    job_lease_seconds: int = 60
    job_max_attempts: int = 8
    # Retry delay: base * 2^(attempt-1), capped, with +-20 % jitter.
    job_retry_base_seconds: float = 2.0
    job_retry_max_seconds: float = 300.0
    # How often an idle worker looks for new jobs; how long SIGTERM waits for
    # running jobs to finish before releasing them to other workers.
    worker_poll_seconds: float = 1.0
    worker_shutdown_seconds: float = 30.0
    upload_dir: Path = Path("var/uploads")

    # Outgoing webhooks (budget alerts).
    webhook_allow_private_urls: bool = False
    webhook_max_attempts: int = 8
    webhook_timeout_seconds: float = 10.0

    @property
    def corti_base(self) -> str:
        """REST base URL, from the override or the environment."""
        return (
            self.corti_base_url or f"https://api.{self.corti_environment}.corti.app/v2"
        )

    @property
    def corti_wss(self) -> str:
        """WebSocket base URL, from the override or the environment."""
        return (
            self.corti_wss_url
            or f"wss://api.{self.corti_environment}.corti.app/audio-bridge/v2"
        )

    @property
    def corti_login(self) -> str:
        """OAuth login base URL, from the override or the environment."""
        return (
            self.corti_login_url
            or f"https://auth.{self.corti_environment}.corti.app/realms"
        )


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
