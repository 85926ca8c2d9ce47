"""A storyboard as an agent writes it, and the clips it stands for. Pure: no I/O.

A storyboard is a title, defaults (model, aspect ratio, sound) and clips. Each clip is one
video generation; a clip that continues from the previous one starts on that clip's last
frame, so it is an image-to-video whose first frame is only known once its predecessor has
finished. Until then it is checked and priced with a stand-in frame, which the runner
replaces with the real one (extracted, uploaded) before the clip is sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import Field

from ..constraints import Violation
from ..payload import AspectRatioArg, Element, MediaRef, Shot, VideoRequest
from ..tool_args import MODEL_HELP, PROMPT_HELP, ModelId, _Strict

MAX_CLIPS = 20
# Stands for a predecessor's last frame while a plan is checked and priced; never sent.
CONTINUITY_FRAME = "https://kling-mcp.invalid/storyboard/clip-{index}/last-frame.png"

ClipTool = Literal["text_to_video", "image_to_video"]


class ClipArgs(_Strict):
    """`prompt` or `shots`, a duration, and what differs from the storyboard's defaults."""

    prompt: str | None = Field(None, min_length=2, max_length=2500, description=PROMPT_HELP)
    shots: list[Shot] | None = Field(None, min_length=1, max_length=6)
    duration: int | None = Field(None, ge=3, le=15)
    model: ModelId | None = None
    continue_from_previous: bool | None = Field(None, description="Default true after the first clip.")
    first_frame: MediaRef | None = None
    last_frame: MediaRef | None = None
    negative_prompt: str | None = Field(None, min_length=2, max_length=2500)
    elements: list[Element] | None = Field(None, min_length=1, max_length=3)
    reference_images: list[MediaRef] | None = Field(None, min_length=1, max_length=7)


class StoryboardArgs(_Strict):
    """A multi-clip video made as one file; each clip continues from the previous one's last frame unless it says
    otherwise. dry_run (default): all problems, each clip and the total priced, nothing paid. Then dry_run false:
    confirmed and reserved once, made, joined; follow with get_storyboard."""

    title: str = Field(min_length=1, max_length=200)
    model: ModelId = Field(description=MODEL_HELP)
    aspect_ratio: AspectRatioArg = "16:9"
    sound: bool | None = None
    clips: list[ClipArgs] = Field(min_length=1, max_length=MAX_CLIPS)
    assemble: bool = True
    max_cost_usd: float | None = Field(None, gt=0, le=100_000, description="USD ceiling for the total.")
    dry_run: bool = True


@dataclass(frozen=True, slots=True)
class PlannedClip:
    index: int
    tool: ClipTool
    request: VideoRequest
    continues: bool  # starts on the previous clip's last frame

    @property
    def depends_on(self) -> int | None:
        return self.index - 1 if self.continues else None


def plan_clips(args: StoryboardArgs) -> tuple[list[PlannedClip], list[Violation]]:
    """Each clip as the request it will be sent as, and the storyboard-level problems."""
    planned: list[PlannedClip] = []
    problems: list[Violation] = []
    for index, clip in enumerate(args.clips):
        where = f"clips[{index}]"
        continues = clip.continue_from_previous if clip.continue_from_previous is not None else index > 0
        if continues and index == 0:
            problems.append(Violation(f"{where}.continue_from_previous", "no_previous_clip",
                                      "The first clip has no previous clip to continue from.",
                                      f"Remove '{where}.continue_from_previous', or set it to false."))  # fmt: skip
            continues = False
        if continues and clip.first_frame is not None:
            problems.append(Violation(f"{where}.first_frame", "excludes",
                                      "A continuing clip starts on the previous clip's last frame, so it takes no "
                                      "first_frame of its own.", f"Remove '{where}.first_frame', or set "
                                      f"'{where}.continue_from_previous' to false.", value=clip.first_frame))  # fmt: skip
        first_frame = CONTINUITY_FRAME.format(index=index - 1) if continues else clip.first_frame
        image = first_frame is not None or clip.last_frame is not None
        request = VideoRequest(
            model=clip.model or args.model,
            prompt=clip.prompt,
            shots=clip.shots,
            duration=clip.duration,
            negative_prompt=clip.negative_prompt,
            sound=args.sound,
            first_frame=first_frame,
            last_frame=clip.last_frame,
            elements=clip.elements,
            reference_images=clip.reference_images,
            # A clip made from an image takes the image's shape; one made from text takes the storyboard's.
            aspect_ratio=None if image else args.aspect_ratio,
        )
        planned.append(PlannedClip(index, "image_to_video" if image else "text_to_video", request, continues))
    return planned, problems


def with_first_frame(clip: PlannedClip, media: str) -> VideoRequest:
    """A continuing clip's request, its stand-in frame replaced by the real one."""
    return clip.request.model_copy(update={"first_frame": media})
