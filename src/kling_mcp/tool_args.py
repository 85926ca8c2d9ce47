"""The argument and result models of the MCP tools: one pydantic model per argument set.

Descriptions are written for the LLM that reads them. Bounds here are the widest any
model allows; the per-model limits are enforced by the checker, which reports every
problem at once with a fix.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from .catalog import MODEL_IDS, MODELS
from .payload import AspectRatioArg, Element, MediaRef, OutputFormat, SafetyMode, Shot, VideoRequest

# The schema lists each model by its short alias (as list_models, the resources and completions show it).
# The full Runware id, and any other alias get_model knows, name the model as surely and are accepted:
# arguments.parse_arguments reads them as the alias before validation. Results name the model by its id.
MODEL_CHOICES: tuple[str, ...] = tuple(m.aliases[0] for m in MODELS)
EDIT_MODEL_CHOICES: tuple[str, ...] = tuple(m.aliases[0] for m in MODELS if m.video_edit)
ModelId = Literal[MODEL_CHOICES]  # type: ignore[valid-type]
EditModelId = Literal[EDIT_MODEL_CHOICES]  # type: ignore[valid-type]
assert len(MODEL_CHOICES) == len(MODEL_IDS)

MODEL_HELP = (
    "Alias or full id; list_models has each one's limits."
)
PROMPT_HELP = "Subject, action, camera, light, mood; <<<element_1>>>..."
MEDIA_HELP = "Local path, media UUID, URL or data URI."


# MCP clients commonly cancel a request after about 60 s (the Inspector at 60 s, desktop clients
# likewise): one wait stays well under that, and the agent calls again for a longer job.
WAIT_DEFAULT_S = 50.0
WAIT_MAX_S = 55.0


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Output(_Strict):
    number_results: int | None = Field(
        None, ge=1, le=20, description="Variations, each billed (Standard <=4, Pro <=20)."
    )
    output_format: OutputFormat | None = Field(None, description="Container. Default MP4.")
    output_quality: int | None = Field(None, ge=20, le=99, description="Default 95.")
    safety_mode: SafetyMode | None = Field(
        None, description="'fast': key frames, 'full': every frame."
    )
    ttl: int | None = Field(None, ge=60, description="Seconds the result URL lives.")
    max_cost_usd: float | None = Field(
        None, gt=0, le=10_000,
        description="USD ceiling; the amount the user agreed to.",
    )  # fmt: skip
    dry_run: bool = Field(
        False, description="Return the request and its cost; send nothing."
    )

    def to_request(self) -> VideoRequest:
        """The request as the core takes it: every video setting, none of the call's own options."""
        return VideoRequest.model_validate(self.model_dump(exclude={"dry_run", "max_cost_usd"}, exclude_none=True))


class TextToVideoArgs(_Output):
    """A video from text (optionally guided by reference images, video or elements). All problems come back at
    once, with fixes; nothing is sent then. Returns a task_id for wait_for_video."""

    model: ModelId = Field(description=MODEL_HELP)
    prompt: str | None = Field(None, min_length=2, max_length=2500, description=PROMPT_HELP )
    negative_prompt: str | None = Field(None, min_length=2, max_length=2500, description="3.0 models.")
    duration: int | None = Field(
        None, ge=3, le=15, description="Seconds; default 5 or the shots' sum."
    )
    aspect_ratio: AspectRatioArg = "16:9"
    sound: bool | None = Field(None, description="Native audio (costs more).")
    shots: list[Shot] | None = Field(
        None, min_length=1, max_length=6,
        description="Multi-shot segments instead of `prompt`.",
    )  # fmt: skip
    reference_images: list[MediaRef] | None = Field(
        None, min_length=1, max_length=7, description=MEDIA_HELP
    )
    reference_videos: list[MediaRef] | None = Field(
        None, min_length=1, max_length=1, description=MEDIA_HELP
    )
    keep_original_sound: bool | None = Field(None, description="Keep the reference video's sound.")
    character_orientation: Literal["image", "video"] | None = Field(
        None, description="Orientation from the reference image or video."
    )
    elements: list[Element] | None = Field(
        None, min_length=1, max_length=3
    )
    shot_type: Literal["intelligence"] | None = Field(None, description="3-standard: the model picks shots.")


class ImageToVideoArgs(_Output):
    """Animate an image: the video starts on `first_frame` and/or ends on `last_frame`, in the image's shape."""

    model: ModelId = Field(description=MODEL_HELP)
    first_frame: MediaRef | None = Field(None, description="Start image. " + MEDIA_HELP)
    last_frame: MediaRef | None = Field(None, description="End image. " + MEDIA_HELP)
    prompt: str | None = Field(None, min_length=2, max_length=2500, description=PROMPT_HELP )
    negative_prompt: str | None = Field(None, min_length=2, max_length=2500, description="3.0 models.")
    duration: int | None = Field(None, ge=3, le=15, description="Seconds; default 5 (O1 with frames: 5 or 10).")
    sound: bool | None = Field(None, description="Native audio (costs more).")
    shots: list[Shot] | None = Field(
        None, min_length=1, max_length=6, description="Multi-shot segments instead of `prompt`."
    )
    elements: list[Element] | None = Field(
        None, min_length=1, max_length=3
    )
    reference_images: list[MediaRef] | None = Field(
        None, min_length=1, max_length=7, description=MEDIA_HELP
    )
    shot_type: Literal["intelligence"] | None = Field(None, description="3-standard only.")


class EditVideoArgs(_Output):
    """Edit a video by instruction (restyle, replace, add, remove), keeping its motion, size and length. Billed per
    second of the source."""

    model: EditModelId = Field(
        description="o1-standard, o3-standard ($0.126/s) or o3-pro ($0.168/s)."
    )
    video: MediaRef = Field(description="The clip to edit: " + MEDIA_HELP)
    prompt: str = Field(min_length=2, max_length=2500, description="The edit instruction and the look to reach.")
    reference_images: list[MediaRef] | None = Field(
        None, min_length=1, max_length=4, description=MEDIA_HELP
    )
    keep_original_sound: bool | None = Field(None, description="Keep the source clip's audio.")
    source_duration: int | None = Field(
        None, ge=1, le=600, description="The source's seconds, to price exactly (read from local MP4/MOV)."
    )


class UploadMediaArgs(_Strict):
    """A local image, video or audio file's media UUID (media arguments also take local paths directly)."""

    path: str = Field(min_length=1, max_length=4096, description="Absolute path of the file (or ~/..., or a file:// URI).")
    kind: Literal["image", "video", "audio"] | None = Field(
        None, description="What the file must be. Default: whatever its content is."
    )


class DownloadArgs(_Strict):
    """Save a finished job's videos as files in the output folder (resource links). Never replaces a file unless
    `overwrite`; calling again returns the saved files."""

    task_id: str = Field(min_length=1, max_length=64, description="The task_id of a finished job.")
    filename: str | None = Field(
        None, min_length=1, max_length=200, description="A name, no folders (extension added).",
    )  # fmt: skip
    subfolder: str | None = Field(None, min_length=1, max_length=1024, description="Inside the output folder.")
    overwrite: bool = Field(False, description="Replace a file of the same name.")


class StatusArgs(_Strict):
    """Jobs' status, result URLs, actual cost and errors."""

    task_ids: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(
        min_length=1, max_length=50, description="task_id values returned by the video tools."
    )


class WaitArgs(_Strict):
    """Wait for a job, with progress; returns its state when done or when the wait ends (then call again)."""

    task_id: str = Field(min_length=1, max_length=64, description="The task_id returned by a video tool.")
    timeout_seconds: float = Field(
        WAIT_DEFAULT_S, gt=0, le=WAIT_MAX_S,
        description="Under a client's ~60 s call timeout; call again for longer jobs.",
    )  # fmt: skip


class SpendingArgs(_Strict):
    """Each spend cap: committed (finished jobs at cost, running at estimate), left, reset time; today per model."""


# -- results -----------------------------------------------------------------------------------


class VideoResult(BaseModel):
    video_uuid: str
    video_url: str | None = None
    cost_usd: float | None = None
    seed: int | None = None


class Job(BaseModel):
    task_id: str
    status: Literal["dry_run", "planned", "pending", "submitted", "processing", "unknown", "stalled", "success",
                    "partial", "failed", "rejected", "cancelled"]
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
    notes: list[dict[str, Any]] = Field(default_factory=list)  # accepted as it is, but worth knowing
    created_at: str | None = None
    finished_at: str | None = None
    next_step: str


class WaitResult(Job):
    timed_out: bool
    waited_up_to_seconds: float | None = None
    note: str | None = None


class SpendingResult(BaseModel):
    caps: list[dict[str, Any]]
    left_usd: float | None
    today_by_model: list[dict[str, Any]] = Field(default_factory=list)
    confirm_above_usd: float = 0.0
    simulated: bool = False
    next_step: str


class StatusResult(BaseModel):
    jobs: list[Job]
    unknown_task_ids: list[str] = Field(default_factory=list)


class UploadResult(BaseModel):
    media_uuid: str
    media_url: str | None = None
    kind: Literal["image", "video", "audio"]
    format: str = ""
    size_bytes: int = 0
    sha256: str = ""
    path: str
    uploaded: bool = True
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
