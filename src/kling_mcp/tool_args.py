"""The argument and result models of the MCP tools: one pydantic model per argument set.

Descriptions are written for the LLM that reads them. Bounds here are the widest any
model allows; the per-model limits are enforced by the checker, which reports every
problem at once with a fix.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from .catalog import MODEL_IDS
from .payload import AspectRatioArg, Element, OutputFormat, SafetyMode, Shot, VideoRequest

ModelId = Literal[
    "klingai:kling@o1-standard",
    "klingai:kling-video@o3-standard",
    "klingai:kling-video@o3-pro",
    "klingai:kling-video@3-standard",
    "klingai:kling-video@3-pro",
]
assert set(ModelId.__args__) == set(MODEL_IDS), "the tool enum must list exactly the catalog's models"  # type: ignore[attr-defined]

MODEL_HELP = (
    "The full model id. klingai:kling@o1-standard: 720p, $0.084/s, no audio, edits, up to 7 reference images. "
    "klingai:kling-video@o3-standard / @o3-pro (1080p): native audio, multi-shot `shots`, elements, edits. "
    "klingai:kling-video@3-standard: audio, negative prompt, shots, elements (with a frame). "
    "klingai:kling-video@3-pro: 1080p, audio, negative prompt. list_models gives every limit and price."
)
PROMPT_HELP = "What the video shows: subject, action, camera, light, mood; 2 to 2500 characters. Refer to elements as <<<element_1>>>, <<<element_2>>>..."
MEDIA_HELP = "An absolute local file path, a Runware media UUID, an https URL or a data URI."


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Output(_Strict):
    number_results: int | None = Field(
        None, ge=1, le=20, description="How many variations (each billed). Default 1; O1/O3/3.0 Standard allow 4, Pro 20."
    )
    output_format: OutputFormat | None = Field(None, description="Container. Default MP4.")
    output_quality: int | None = Field(None, ge=20, le=99, description="Compression quality 20-99. Default 95.")
    safety_mode: SafetyMode | None = Field(
        None, description="Content safety check: 'fast' checks key frames, 'full' every frame. Default none."
    )
    ttl: int | None = Field(None, ge=60, description="Seconds the result URL stays valid (at least 60).")
    dry_run: bool = Field(
        False, description="true: return the exact request and its cost estimate, submit nothing, spend nothing."
    )


class TextToVideoArgs(_Output):
    """Generate a video from a text prompt (optionally guided by reference images, a reference video or elements).
    Every model constraint is checked before anything is submitted; problems come back all at once with fixes.
    Returns a task_id at once: follow it with wait_for_video or get_video_status."""

    model: ModelId = Field(description=MODEL_HELP)
    prompt: str | None = Field(None, min_length=2, max_length=2500, description=PROMPT_HELP + " Omit only when giving `shots`.")
    negative_prompt: str | None = Field(None, min_length=2, max_length=2500, description="What to avoid (3.0 models only).")
    duration: int | None = Field(
        None, ge=3, le=15, description="Seconds. Default 5 (or the sum of `shots`). O1: 3-10; others: 3-15."
    )
    aspect_ratio: AspectRatioArg = Field("16:9", description="Frame shape; maps to the model's pixel size.")
    sound: bool | None = Field(None, description="Generate native audio (O3 and 3.0 models; costs more per second).")
    shots: list[Shot] | None = Field(
        None, min_length=1, max_length=6,
        description="Multi-shot: up to 6 segments in one video (O3 Standard/Pro, 3.0 Standard). Replaces `prompt`; "
        "durations must add up to `duration`.",
    )  # fmt: skip
    reference_images: list[str] | None = Field(
        None, min_length=1, max_length=7, description="Images guiding look and identity. " + MEDIA_HELP
    )
    reference_videos: list[str] | None = Field(
        None, min_length=1, max_length=1, description="One reference video (local path, UUID or https URL)."
    )
    keep_original_sound: bool | None = Field(None, description="Keep the reference video's sound.")
    character_orientation: Literal["image", "video"] | None = Field(
        None, description="Take the character's orientation from the reference image or the reference video."
    )
    elements: list[Element] | None = Field(
        None, min_length=1, max_length=3, description="Reusable characters/objects for consistency across clips."
    )
    shot_type: Literal["intelligence"] | None = Field(None, description="3.0 Standard only: let the model pick shots.")

    def to_request(self) -> VideoRequest:
        return VideoRequest.model_validate(self.model_dump(exclude={"dry_run"}, exclude_none=True))


class ImageToVideoArgs(_Output):
    """Animate a still image: give `first_frame` and/or `last_frame` (the video starts and/or ends on them).
    The video takes the image's aspect ratio. Checked before submission; returns a task_id at once."""

    model: ModelId = Field(description=MODEL_HELP)
    first_frame: str | None = Field(None, min_length=1, description="Image the video starts on. " + MEDIA_HELP)
    last_frame: str | None = Field(None, min_length=1, description="Image the video ends on. " + MEDIA_HELP)
    prompt: str | None = Field(None, min_length=2, max_length=2500, description=PROMPT_HELP + " Omit only when giving `shots`.")
    negative_prompt: str | None = Field(None, min_length=2, max_length=2500, description="What to avoid (3.0 models only).")
    duration: int | None = Field(None, ge=3, le=15, description="Seconds. Default 5. O1 with frames: 5 or 10 only.")
    sound: bool | None = Field(None, description="Generate native audio (O3 and 3.0 models).")
    shots: list[Shot] | None = Field(
        None, min_length=1, max_length=6, description="Multi-shot segments (O3, 3.0 Standard); sum = duration."
    )
    elements: list[Element] | None = Field(
        None, min_length=1, max_length=3, description="Reusable characters/objects, referred to as <<<element_N>>>."
    )
    reference_images: list[str] | None = Field(
        None, min_length=1, max_length=7, description="Extra guidance images. " + MEDIA_HELP
    )
    shot_type: Literal["intelligence"] | None = Field(None, description="3.0 Standard only.")

    def to_request(self) -> VideoRequest:
        return VideoRequest.model_validate(self.model_dump(exclude={"dry_run"}, exclude_none=True))


class EditVideoArgs(_Output):
    """Edit a source video with an instruction (restyle, replace, add or remove things), keeping its motion.
    The result has the source's size and length (O1 Standard, O3 Standard, O3 Pro). Billed per second of the
    source at the model's video-input rate."""

    model: Literal["klingai:kling@o1-standard", "klingai:kling-video@o3-standard", "klingai:kling-video@o3-pro"] = Field(
        description="A model that edits video: o1-standard ($0.126/s), o3-standard ($0.126/s), o3-pro ($0.168/s)."
    )
    video: str = Field(min_length=1, description="The clip to edit: an absolute local file path, a Runware media UUID or an https URL.")
    prompt: str = Field(min_length=2, max_length=2500, description="The edit instruction and the look to reach.")
    reference_images: list[str] | None = Field(
        None, min_length=1, max_length=4, description="Up to 4 images to guide the edit. " + MEDIA_HELP
    )
    keep_original_sound: bool | None = Field(None, description="Keep the source clip's audio.")
    source_duration: int | None = Field(
        None, ge=1, le=600, description="The source clip's length in seconds, if known: makes the cost estimate exact."
    )

    def to_request(self) -> VideoRequest:
        return VideoRequest.model_validate(self.model_dump(exclude={"dry_run"}, exclude_none=True))


class UploadMediaArgs(_Strict):
    """Upload a local image, video or audio file to Runware and get its media UUID, for any media argument.
    The video tools also take local paths directly, so this is only needed to get the UUID up front. Only files
    inside the folders the user allowed are read; the same content is uploaded once, then reused."""

    path: str = Field(min_length=1, description="Absolute path of the file (or ~/..., or a file:// URI).")
    kind: Literal["image", "video", "audio"] | None = Field(
        None, description="What the file must be. Default: whatever its content is."
    )


class DownloadArgs(_Strict):
    """Save a finished job's videos as files in the output folder and return their paths as resource links.
    Never replaces an existing file unless `overwrite` is true; calling again returns the files already saved."""

    task_id: str = Field(min_length=1, description="The task_id of a finished job.")
    filename: str | None = Field(
        None, description="File name, no folders, e.g. 'fox-in-snow' (extension added; several videos get -1, -2). "
        "Default: date_prompt-words_task-id.",
    )  # fmt: skip
    subfolder: str | None = Field(None, description="A folder inside the output folder, e.g. 'trailer'; created if missing.")
    overwrite: bool = Field(False, description="Replace a file of the same name.")


class StatusArgs(_Strict):
    """The current state of one or more jobs: status, result URLs, actual cost, errors. Asks Runware once for
    the jobs still running."""

    task_ids: list[str] = Field(min_length=1, max_length=50, description="task_id values returned by the video tools.")


class WaitArgs(_Strict):
    """Wait for a job to finish, up to `timeout_seconds`, reporting progress. Always returns the task_id and the
    job's state, even when the wait times out: then call wait_for_video again."""

    task_id: str = Field(min_length=1, description="The task_id returned by a video tool.")
    timeout_seconds: float = Field(
        120, gt=0, le=600, description="How long to wait at most. Kling jobs usually take 30-90 s; keep it <= 300."
    )


# -- results -----------------------------------------------------------------------------------


class VideoResult(BaseModel):
    video_uuid: str
    video_url: str | None = None
    cost_usd: float | None = None
    seed: int | None = None


class Job(BaseModel):
    task_id: str
    status: Literal["dry_run", "pending", "submitted", "processing", "unknown", "stalled", "success", "partial", "failed",
                    "rejected"]
    done: bool
    model: str
    tool: str
    # The estimate's fields (usd_per_second, seconds, total_usd, reserved_usd, notes...) are left out
    # of the output schema: spelled out, they cost every listing of five tools about 2.8 KB.
    estimate: dict[str, Any] | None = None
    results: list[VideoResult] = Field(default_factory=list)
    cost_usd: float | None = None
    progress: int | None = None
    errors: list[dict[str, Any]] = Field(default_factory=list)
    payload: dict[str, Any] | None = None
    local_files: list[dict[str, Any]] = Field(default_factory=list)
    created_at: str | None = None
    finished_at: str | None = None
    next_step: str


class WaitResult(Job):
    timed_out: bool


class StatusResult(BaseModel):
    jobs: list[Job]
    unknown_task_ids: list[str] = Field(default_factory=list)


class UploadResult(BaseModel):
    media_uuid: str
    media_url: str | None
    kind: Literal["image", "video", "audio"]
    format: str
    size_bytes: int
    sha256: str
    path: str
    uploaded: bool
    next_step: str


class SavedFile(BaseModel):
    video_uuid: str
    path: str
    uri: str
    size_bytes: int
    mime_type: str
    already_downloaded: bool


class DownloadResult(BaseModel):
    task_id: str
    output_dir: str
    files: list[SavedFile]
    next_step: str


class ModelsResult(BaseModel):
    models: list[dict[str, Any]]
