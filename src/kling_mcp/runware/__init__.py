"""The Runware HTTP API, as kling-mcp speaks it."""

from ._client import NOT_FOUND_CODES, RunwareClient, SubmitResult, TaskUpdate
from ._errors import NEXT_STEP, ErrorCategory, ProviderError, RunwareError, categorise

__all__ = [
    "NEXT_STEP",
    "NOT_FOUND_CODES",
    "ErrorCategory",
    "ProviderError",
    "RunwareClient",
    "RunwareError",
    "SubmitResult",
    "TaskUpdate",
    "categorise",
]
