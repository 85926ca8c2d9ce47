"""A storyboard as the ledger keeps it: its clips, each pointing at the job that makes it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

StoryboardStatus = Literal[
    "running",  # clips are being made (or wait for their predecessor)
    "blocked",  # a clip failed: its chain waits for a retry (update_storyboard) or a cancel
    "assembling",
    "done",
    "cancelled",
]
ACTIVE: tuple[StoryboardStatus, ...] = ("running", "blocked", "assembling")


@dataclass(slots=True)
class ClipState:
    index: int
    tool: str
    continues: bool
    request: dict[str, Any]  # the VideoRequest, with a stand-in first frame while the predecessor is unfinished
    task_uuid: str  # the job making this clip now (a planned job until it is sent)
    estimate: dict[str, Any]
    earlier_task_uuids: list[str] = field(default_factory=list)  # failed attempts, newest last
    first_frame_png: str | None = None  # a continuing clip's start: its predecessor's last frame
    video: str | None = None  # the clip's file, once saved
    problem: dict[str, Any] | None = None  # what stopped this clip outside its job (e.g. a frame that failed)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ClipState:
        return cls(**data)


@dataclass(slots=True)
class StoryboardRecord:
    id: str
    title: str
    status: StoryboardStatus
    assemble: bool
    clips: list[ClipState]
    total_usd: float  # the estimate of the whole plan, as confirmed
    aspect_ratio: str | None = None
    output: str | None = None
    contact_sheet: str | None = None
    assembly: dict[str, Any] | None = None  # duration, size, reencoded, reason
    problem: dict[str, Any] | None = None
    created_at: float = 0.0
    updated_at: float = 0.0
    finished_at: float | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StoryboardRecord:
        data = dict(data)
        data["clips"] = [ClipState.from_dict(c) for c in data["clips"]]
        return cls(**data)
