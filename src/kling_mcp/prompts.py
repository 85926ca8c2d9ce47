"""Prompts that teach an agent to plan videos well within the models' limits."""

from __future__ import annotations

from typing import Annotated

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.prompts.base import UserMessage
from pydantic import Field

from .catalog import MODELS, describe, get_model


def _limits(model: str | None) -> str:
    spec = get_model(model) if model else None
    specs = [spec] if spec else list(MODELS)
    lines = []
    for s in specs:
        d = describe(s, with_readings=False)
        lines.append(
            f"- {s.id} ({s.resolution}): {d['duration_seconds']['min']}-{d['duration_seconds']['max']} s, "
            f"${d['pricing_usd_per_second']['base']}/s"
            + (f", audio ${d['pricing_usd_per_second']['with_audio']}/s" if s.sound else ", no audio")
            + (f", up to {s.multi_prompt.max_segments} shots" if s.multi_prompt else ", no multi-shot")
            + (f", up to {s.elements.max_items} elements" if s.elements else "")
            + (", edits video" if s.video_edit else "")
        )
    return "\n".join(lines)


def register_prompts(server: MCPServer) -> None:
    @server.prompt(name="plan_multishot_video", title="Plan a multi-shot video")
    def plan_multishot_video(
        idea: Annotated[str, Field(description="The story or idea, in a sentence or a paragraph.")],
        total_seconds: Annotated[str, Field(description="Total length wanted, in seconds, e.g. '30'.")] = "15",
        model: Annotated[str, Field(description="Model id or alias; empty to let the plan choose.")] = "",
    ) -> list[UserMessage]:
        """Plan a multi-shot video from an idea: shots, model, consistency, cost, then submission."""
        return [UserMessage(f"""Plan and make a {total_seconds}-second video of this idea with kling-mcp:

{idea}

Model limits (call list_models for every detail):
{_limits(model or None)}

Plan like this:
1. Break the idea into shots of 2-6 s each, with a one-line prompt per shot: subject, action, camera move, light.
2. Choose the structure. If the whole video fits one model's maximum duration and its shot limit, make ONE
   generation with `shots` (their durations must add up to `duration`). Otherwise make a STORYBOARD with
   create_storyboard: a title, a default model, aspect ratio and sound, and `clips` (each a prompt or shots and
   a duration, optionally its own model, elements or reference images). Each clip after the first continues
   from the last frame of the one before (continuity, on by default; set continue_from_previous false for a
   cut to a new scene). The finished clips are joined into one video file.
3. Keep characters consistent: define each recurring character or object once as an element (a frontal image,
   optional extra angles) and write <<<element_1>>> etc. in the prompts where it appears; or pass the same
   reference_images to every clip. Every <<<element_N>>> you write must exist.
4. Stay inside the limits: durations, aspect ratio (16:9, 9:16 or 1:1), sound only on models that have it.
5. Before anything is paid: create_storyboard checks and prices the whole plan with dry_run (its default), and
   every problem in every clip comes back at once (clips[2].duration...). get_spending shows what the caps
   leave. Show the user the clips and the total cost; submit only after they agree (dry_run false; the total is
   confirmed once: the user is asked, or you pass max_cost_usd with the amount they agreed to).
6. Follow it with get_storyboard (each call waits up to about 50 s, with progress) until it is done; it gives
   the final file, a contact sheet, and each clip's cost. A failed clip stops only its chain: retry it with
   update_storyboard. For a single clip, use text_to_video / image_to_video and wait_for_video, and save with
   download_video; extract_frame and assemble_videos chain and join clips by hand.""")]

    @server.prompt(name="image_to_video_brief", title="Image-to-video brief")
    def image_to_video_brief(
        image: Annotated[str, Field(description="The image: a local file path, a URL, a Runware media UUID, or a data URI.")],
        motion: Annotated[str, Field(description="What should move and how; empty to propose it.")] = "",
        model: Annotated[str, Field(description="Model id or alias; empty to choose.")] = "",
    ) -> list[UserMessage]:
        """Write and submit an image-to-video request that animates a still."""
        return [UserMessage(f"""Animate this image with kling-mcp's image_to_video: {image}

Motion wanted: {motion or "propose subtle, believable motion that suits the image"}.

Models that animate images:
{_limits(model or None)}

Write a prompt that starts from the image as the first frame and says what moves, how the camera moves, and
what must stay the same (identity, layout, style). Use last_frame too if the user has an end image. The video
takes the image's aspect ratio: do not pass one. With O1 Standard the duration must be 5 or 10 s. Dry-run first,
show the cost, then submit, wait_for_video, and save the result with download_video.""")]

    @server.prompt(name="video_edit_brief", title="Video-edit brief")
    def video_edit_brief(
        video: Annotated[str, Field(description="The source clip: a local file path, a URL or a Runware media UUID.")],
        change: Annotated[str, Field(description="What to change: restyle, replace, add or remove.")],
        model: Annotated[str, Field(description="o1-standard, o3-standard or o3-pro; empty to choose.")] = "",
    ) -> list[UserMessage]:
        """Write and submit an instruction-based edit of a source video."""
        editors = [m for m in MODELS if m.video_edit]
        return [UserMessage(f"""Edit this clip with kling-mcp's edit_video: {video}

Change wanted: {change}

Models that edit ({', '.join(m.id for m in editors)}) keep the source's size, length and motion; they bill
each second of the source at their video-input rate ({', '.join(f'{m.name}: ${m.pricing.video_input}/s' for m in editors)}).
Pass source_duration if you know the clip's length, so the estimate is exact.
Write the prompt as an instruction: what to keep (camera path, timing, layout) and what to change, with the
look to reach. No duration, aspect ratio, sound or shots with an edit. Dry-run first, show the cost, then
submit, wait_for_video, and save the result with download_video.""")]
