"""Configuration, from environment variables (and the CLI, which sets the same fields)."""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

import platformdirs
from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

RUNWARE_URL = "https://api.runware.ai/v1"


def _default_data_dir() -> Path:
    return platformdirs.user_data_path("kling-mcp", appauthor=False)


def _absolute(path: Path) -> Path:
    return Path(os.path.abspath(os.path.expanduser(path)))


def _default_output_dir() -> Path:
    return platformdirs.user_videos_path() / "kling-mcp"


def default_media_roots() -> list[Path]:
    """Where people keep media: the per-user Pictures, Videos, Music, Desktop, Downloads and
    Documents folders. Never the whole home folder, where keys and dotfiles live."""
    return [
        platformdirs.user_pictures_path(), platformdirs.user_videos_path(), platformdirs.user_music_path(),
        platformdirs.user_desktop_path(), platformdirs.user_downloads_path(), platformdirs.user_documents_path(),
    ]  # fmt: skip


class Settings(BaseSettings):
    """Every setting has an environment variable; the README lists them all."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    api_key: SecretStr | None = Field(
        None, validation_alias=AliasChoices("RUNWARE_API_KEY"), description="Runware API key."
    )
    base_url: str = Field(RUNWARE_URL, validation_alias=AliasChoices("RUNWARE_BASE_URL"))
    data_dir: Path = Field(default_factory=_default_data_dir, validation_alias=AliasChoices("KLING_MCP_DATA_DIR"))
    database_url: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices("KLING_MCP_DATABASE_URL"),
        description="A postgresql:// URL: keep the job ledger in PostgreSQL, shared by several instances. "
        "Unset: a SQLite file in the data directory.",
    )
    daily_cap_usd: Decimal | None = Field(
        Decimal("10"),
        ge=0,
        validation_alias=AliasChoices("KLING_MCP_DAILY_CAP_USD"),
        description="Most that may be committed per UTC day (estimates of running jobs + actual costs).",
    )
    total_cap_usd: Decimal | None = Field(None, ge=0, validation_alias=AliasChoices("KLING_MCP_TOTAL_CAP_USD"))
    confirm_above_usd: Decimal = Field(
        Decimal("1.00"),
        ge=0,
        validation_alias=AliasChoices("KLING_MCP_CONFIRM_ABOVE_USD"),
        description="Ask the user to confirm (MCP elicitation) a submission estimated above this.",
    )
    request_timeout_s: float = Field(30.0, gt=0, validation_alias=AliasChoices("KLING_MCP_REQUEST_TIMEOUT"))
    poll_initial_s: float = Field(2.0, gt=0, validation_alias=AliasChoices("KLING_MCP_POLL_INITIAL"))
    # The shortest and the longest gap between two polls of a job once it may be done (and, while a model
    # has no render history, the longest wait for its first poll); in between, the schedule follows each
    # model's recorded render times.
    poll_max_s: float = Field(30.0, gt=0, validation_alias=AliasChoices("KLING_MCP_POLL_MAX"))
    poll_lease_s: float = Field(
        30.0,
        gt=0,
        validation_alias=AliasChoices("KLING_MCP_POLL_LEASE"),
        description="Seconds without a heartbeat after which another instance takes over an instance's jobs "
        "and the storyboards it makes.",
    )
    # Under the ~60 s after which MCP clients commonly cancel a call; the agent calls again to wait longer.
    max_wait_s: float = Field(55.0, gt=0, validation_alias=AliasChoices("KLING_MCP_MAX_WAIT"))
    stalled_after_s: float = Field(
        10800.0,
        gt=0,
        validation_alias=AliasChoices("KLING_MCP_STALLED_AFTER"),
        description="Seconds without a final answer after which a job is marked stalled and no longer polled.",
    )
    public_url: str | None = Field(
        None,
        validation_alias=AliasChoices("KLING_MCP_PUBLIC_URL"),
        description="The http(s) URL Runware reaches this server by (served with --http): each submission then "
        "carries a webhookURL under it, and polling becomes a slow safety net.",
    )
    safety_poll_s: float = Field(
        120.0,
        gt=0,
        validation_alias=AliasChoices("KLING_MCP_SAFETY_POLL"),
        description="With webhooks on: seconds between the polls that catch a job whose webhook never came.",
    )
    media_roots: Annotated[list[Path] | None, NoDecode] = Field(
        None,
        validation_alias=AliasChoices("KLING_MCP_MEDIA_ROOTS"),
        description="Folders local media may be read from (os.pathsep-separated); unset: the user's media folders.",
    )
    output_dir: Path = Field(default_factory=_default_output_dir, validation_alias=AliasChoices("KLING_MCP_OUTPUT_DIR"))
    max_image_mb: float = Field(10.0, gt=0, validation_alias=AliasChoices("KLING_MCP_MAX_IMAGE_MB"))
    max_video_mb: float = Field(100.0, gt=0, validation_alias=AliasChoices("KLING_MCP_MAX_VIDEO_MB"))
    max_audio_mb: float = Field(20.0, gt=0, validation_alias=AliasChoices("KLING_MCP_MAX_AUDIO_MB"))

    @field_validator("daily_cap_usd", "total_cap_usd", mode="before")
    @classmethod
    def _no_cap(cls, value: object) -> object:
        return None if isinstance(value, str) and value.strip().lower() in ("", "none", "off") else value

    @field_validator("database_url", mode="before")
    @classmethod
    def _postgres_only(cls, value: object) -> object:
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        if isinstance(value, str):
            if not value.strip():
                return None
            if not value.strip().startswith(("postgresql://", "postgres://")):
                # The value may hold a password: the message does not repeat it.
                raise ValueError(
                    "KLING_MCP_DATABASE_URL must be a postgresql://user:password@host:port/database URL; "
                    "leave it unset to keep the ledger in a SQLite file in the data directory"
                )
            return value.strip()
        return value

    @field_validator("public_url", mode="before")
    @classmethod
    def _public_url(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        value = value.strip().rstrip("/")
        if not value:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
            raise ValueError(
                "KLING_MCP_PUBLIC_URL must be the http(s) URL Runware reaches this server by, such as "
                "https://kling.example.com (a path prefix is allowed; no query)"
            )
        return value

    @field_validator("media_roots", mode="before")
    @classmethod
    def _split_roots(cls, value: object) -> object:
        if isinstance(value, str):
            if not value.strip():
                return None  # set but empty: as if unset
            if value.strip().lower() in ("none", "off"):
                return []
            return [part for part in value.split(os.pathsep) if part.strip()]
        return value

    # A JSON config passes "~/Videos" unexpanded, and a relative path would depend on the folder the
    # MCP client happens to start the server in: every path setting is made absolute here, once.
    @field_validator("data_dir", "output_dir", mode="after")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return _absolute(value)

    @field_validator("media_roots", mode="after")
    @classmethod
    def _absolute_roots(cls, value: list[Path] | None) -> list[Path] | None:
        return None if value is None else [_absolute(p) for p in value]

    @property
    def media_roots_or_default(self) -> list[Path]:
        return self.media_roots if self.media_roots is not None else default_media_roots()

    @property
    def read_roots(self) -> list[Path]:
        """Every folder local media may be read from: the media roots, and the output folder,
        so a downloaded clip can be edited or extended."""
        return [*self.media_roots_or_default, self.output_dir]

    @property
    def ledger_path(self) -> Path:
        return self.data_dir / "jobs.sqlite3"

    @property
    def ledger_location(self) -> Path | str:
        """What ``Ledger`` opens: the PostgreSQL URL when one is set, else the SQLite file.
        The URL may carry a password: pass it on, never print it (``Ledger.location`` is safe)."""
        return self.database_url.get_secret_value() if self.database_url else self.ledger_path
