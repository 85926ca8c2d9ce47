"""Every Runware error code kling-mcp knows, what it means for a job, and where that comes from.

Runware's docs say its error codes are being standardised and may vary between models and
providers, so the table is backed by the derivation rules of Runware's own Python SDK for codes
it does not list. A code nobody knows is ``unknown``: never a refusal, so it never makes a
submission count as "nothing charged".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

ErrorCategory = Literal[
    "auth",  # the key was refused: nothing ran
    "balance",  # the account cannot pay: nothing ran
    "validation",  # the request was refused as invalid: nothing ran
    "content_policy",  # refused, or stopped, by a content policy
    "duplicate",  # Runware already has a task with this taskUUID
    "not_found",  # Runware does not (or no longer) know the task; its fate must be looked up
    "provider_failure",  # the provider failed to render
    "provider_timeout",  # the provider timed out
    "capacity",  # busy or rate-limited: transient
    "server",  # Runware's own server error: transient
    "network",  # no answer, or a broken connection: transient, fate unknown
    "protocol",  # an answer that could not be read: transient, fate unknown
    "unknown",  # a code nobody has documented
]

# The categories that prove Runware refused a task, when an error names it: nothing was charged.
REFUSALS: frozenset[ErrorCategory] = frozenset({"auth", "balance", "validation", "content_policy"})
# Worth asking again (a free call), or looking up (a paid one).
TRANSIENT: frozenset[ErrorCategory] = frozenset({"capacity", "server", "network", "protocol"})

DOCS = "https://runware.ai/docs/platform/errors"
TASK_DETAILS_DOCS = "https://runware.ai/docs/platform/task-details"
PYTHON_SDK = "Runware/runware-python, runware/errors.py"
EMULATOR = "kling-mcp's emulator and earlier Runware answers; not in the SDK tables"


@dataclass(frozen=True, slots=True)
class Code:
    category: ErrorCategory
    source: str


def _codes(category: ErrorCategory, source: str, *names: str) -> dict[str, Code]:
    return {name: Code(category, source) for name in names}


CODES: dict[str, Code] = {
    **_codes("auth", DOCS, "invalidApiKey"),
    **_codes(
        "auth", PYTHON_SDK + " (_AUTH_CODES)",
        "unauthorized", "forbidden", "permissionDenied", "insufficientPermissions", "authenticationFailed",
        "authFailed", "authTimeout", "invalidAuthentication", "invalidCredentials", "missingAuthentication",
        "tokenExpired", "tokenInvalid", "tokenMissing", "tokenRevoked", "accountSuspended", "accountDisabled",
        "organizationSuspended", "organizationDisabled", "workspaceSuspended", "workspaceDisabled",
    ),
    **_codes("balance", PYTHON_SDK + " (quota: 'Credits', 'Quota', 'Balance')",
             "insufficientCredits", "quotaExceeded", "paymentRequired"),
    **_codes(
        "content_policy", PYTHON_SDK + " (_SAFETY_CODES)",
        "contentPolicyViolation", "providerContentPolicyViolation", "sensitiveContentDetected",
        "unsafeContentDetected", "nsfwContentDetected", "promptBlocked", "imageBlocked", "moderationFailed",
    ),
    **_codes("content_policy", EMULATOR, "contentModerated"),
    **_codes(
        "validation", PYTHON_SDK + " (validation: invalid*, missing*, unsupported*, ...)",
        "invalidParameter", "invalidDeliveryMethod", "missingParameter", "unsupportedTaskType", "unknownParameter",
        "incompatibleParameters", "validationFailed", "invalidModel",
    ),
    # The SDK files these under notFound; on a submission they refuse the request, so nothing ran.
    **_codes("validation", PYTHON_SDK + " (notFound, read as a refusal of the request)", "unknownModel",
             "modelNotFound"),
    # The SDK files duplicate* under validation; for a paid task it means Runware already has it.
    **_codes("duplicate", PYTHON_SDK + " (duplicate*, read as 'already have it')", "duplicateTaskUUID"),
    # taskFailedOrNotFound is ambiguous by name: the task failed, or Runware never had it.
    # Only getTaskDetails tells which (see TASK_DETAILS_DOCS).
    **_codes("not_found", PYTHON_SDK + " (_NOT_FOUND_CODES, *NotFound, *Expired)",
             "taskFailedOrNotFound", "taskNotFound", "taskExpired", "taskCancelled"),
    **_codes(
        "provider_failure", PYTHON_SDK + " (_PROVIDER_CODES, provider*)",
        "inferenceError", "processingFailed", "taskFailed", "downloadFailed", "uploadFailed", "noAvailableServer",
        "modelUnavailable", "modelDisabled", "modelNotReady", "providerError", "providerInternalError",
    ),
    **_codes("provider_timeout", DOCS + " (timeoutProvider)", "timeoutProvider"),
    **_codes("provider_timeout", PYTHON_SDK + " ('Timeout')", "requestTimeout", "timeout"),
    **_codes("capacity", PYTHON_SDK + " (rateLimit)", "rateLimitExceeded"),
    **_codes("capacity", DOCS + " (HTTP 503/504)", "gatewayTimeout"),
    **_codes(
        "server", PYTHON_SDK + " (_SERVER_ERROR_CODES)",
        "internalServerError", "serviceUnavailable", "serverUnavailable", "standardError", "unknownError",
        "undefinedError", "defaultError", "unrecognizedResponse",
    ),
}

# What an HTTP status means when the body names no known code (Runware's docs, HTTP status codes).
BY_STATUS: dict[int, ErrorCategory] = {
    400: "validation",
    401: "auth",
    402: "balance",
    403: "auth",
    404: "not_found",
    429: "capacity",
    500: "server",
    502: "capacity",
    503: "capacity",
    504: "capacity",
}


def category_of(code: str | None) -> ErrorCategory:
    """A code's category: from the table, else by the Python SDK's derivation rules, else unknown."""
    if not code:
        return "unknown"
    known = CODES.get(code)
    if known is not None:
        return known.category
    if any(word in code for word in ("Credits", "Quota", "Balance")):
        return "balance"
    if "RateLimit" in code:
        return "capacity"
    if "ApiKey" in code:
        return "auth"
    if "Timeout" in code:
        return "provider_timeout"
    if code.endswith(("NotFound", "Expired")):
        return "not_found"
    if code.startswith("provider"):
        return "provider_failure"
    if code.startswith(("invalid", "missing", "unsupported", "conflict", "value", "array", "max")):
        return "validation"
    return "unknown"
