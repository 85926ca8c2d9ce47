"""Storyboards: a multi-clip video planned, checked, priced and confirmed as a whole, made with
continuity (each clip may start on the last frame of the one before) and assembled into one file."""

from ._plan import CONTINUITY_FRAME, ClipArgs, PlannedClip, StoryboardArgs, plan_clips
from ._records import ACTIVE, ClipState, StoryboardRecord
from ._runner import StoryboardRunner
from ._service import StoryboardCheck, StoryboardService

__all__ = [
    "ACTIVE", "CONTINUITY_FRAME", "ClipArgs", "ClipState", "PlannedClip", "StoryboardArgs", "StoryboardCheck",
    "StoryboardRecord", "StoryboardRunner", "StoryboardService", "plan_clips",
]  # fmt: skip
