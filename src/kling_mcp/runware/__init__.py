"""The Runware HTTP API, as kling-mcp speaks it."""

from ._client import RunwareClient, SubmitResult, TaskRecord, TaskUpdate
from ._codes import CODES, REFUSALS, ErrorCategory, category_of
from ._errors import NEXT_STEP, ProviderError, RunwareError, categorise
from ._secrets import WEBHOOK_SECRET_PREFIX, register_secret, scrub

__all__ = [
    "CODES",
    "NEXT_STEP",
    "REFUSALS",
    "ErrorCategory",
    "ProviderError",
    "RunwareClient",
    "RunwareError",
    "SubmitResult",
    "TaskRecord",
    "TaskUpdate",
    "WEBHOOK_SECRET_PREFIX",
    "categorise",
    "category_of",
    "register_secret",
    "scrub",
]
