"""Runware's error objects, sorted into categories that say what to do next."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

ErrorCategory = Literal[
    "auth",
    "balance",
    "validation",
    "content_policy",
    "provider_failure",
    "provider_timeout",
    "capacity",
    "server",
    "network",
    "protocol",
    "not_found",
]

RETRYABLE: frozenset[str] = frozenset({"capacity", "server", "network", "protocol"})

NEXT_STEP: dict[str, str] = {
    "auth": "Check RUNWARE_API_KEY: Runware refused the key (create one at https://my.runware.ai).",
    "balance": "Top up the Runware account balance, then submit again.",
    "validation": "Change the parameter Runware named and submit again.",
    "content_policy": "Rephrase the prompt or change the input media; the provider's content policy refused it.",
    "provider_failure": "The provider failed to render this job; submitting the same request again usually works.",
    "provider_timeout": "The provider timed out; submitting the same request again usually works.",
    "capacity": "Runware is busy; wait a minute and try again.",
    "server": "Runware had a server error; try again shortly.",
    "network": "Runware could not be reached; check the network and try again.",
    "protocol": "Runware sent a response that could not be read; try again shortly.",
    "not_found": "Runware does not know this task id.",
}

_BY_STATUS: dict[int, ErrorCategory] = {
    400: "validation",
    401: "auth",
    402: "balance",
    403: "auth",
    429: "capacity",
    500: "server",
    502: "capacity",
    503: "capacity",
    504: "capacity",
}


def categorise(code: str | None, status: int | None = None) -> ErrorCategory:
    c = (code or "").lower()
    if "apikey" in c or "auth" in c or "forbidden" in c:
        return "auth"
    if "credit" in c or "balance" in c or "payment" in c:
        return "balance"
    if "notfound" in c:
        return "not_found"
    if "moderat" in c or "nsfw" in c or "policy" in c or "safety" in c or "sensitive" in c:
        return "content_policy"
    if "ratelimit" in c or "capacity" in c or "busy" in c or "overload" in c:
        return "capacity"
    if "timeout" in c:
        return "provider_timeout"
    if "provider" in c or "inference" in c or "generation" in c:
        return "provider_failure"
    if c.startswith(("invalid", "missing", "unsupported", "duplicate")) or "parameter" in c:
        return "validation"
    if status is not None and status in _BY_STATUS:
        return _BY_STATUS[status]
    return "provider_failure"


@dataclass(frozen=True, slots=True)
class ProviderError:
    """One error object from Runware, kept whole: code, message, parameter, allowed values."""

    category: ErrorCategory
    code: str
    message: str
    parameter: str | list[str] | None = None
    allowed_values: Any = None
    task_uuid: str | None = None
    status: int | None = None
    documentation: str | None = None

    @classmethod
    def parse(cls, obj: Any, *, status: int | None = None, scrub: Any = None) -> ProviderError:
        """From an ``errors[]`` entry or an item's ``error`` object, whatever its shape."""
        obj = obj if isinstance(obj, dict) else {"message": str(obj)}
        text = (lambda s: scrub(s) if scrub else s)  # noqa: E731
        code = str(obj.get("code") or obj.get("errorCode") or obj.get("status") or "error")
        return cls(
            category=categorise(code, status),
            code=code,
            message=text(str(obj.get("message") or obj.get("error") or obj.get("responseContent") or code)),
            parameter=obj.get("parameter"),
            allowed_values=obj.get("allowedValues"),
            task_uuid=obj.get("taskUUID"),
            status=status,
            documentation=obj.get("documentation"),
        )

    def to_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in asdict(self).items() if v is not None}
        out["next_step"] = NEXT_STEP[self.category]
        return out


class RunwareError(Exception):
    """A Runware call that did not succeed, with every error object it returned."""

    def __init__(
        self,
        category: ErrorCategory,
        message: str,
        *,
        errors: list[ProviderError] | None = None,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.category = category
        self.errors = errors or []
        self.status = status
        self.retry_after = retry_after
        super().__init__(f"{message} ({category}). {NEXT_STEP[category]}")

    @property
    def retryable(self) -> bool:
        return self.category in RETRYABLE

    def to_dict(self) -> dict[str, Any]:
        return {
            "category": self.category,
            "message": str(self),
            "status": self.status,
            "errors": [e.to_dict() for e in self.errors],
        }
