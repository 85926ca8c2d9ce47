"""Runware's error objects, sorted into categories that say what to do next."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from ._codes import BY_STATUS, REFUSALS, TRANSIENT, ErrorCategory, category_of
from ._secrets import scrub

NEXT_STEP: dict[str, str] = {
    "auth": "Check RUNWARE_API_KEY: Runware refused the key (create one at https://my.runware.ai).",
    "balance": "Top up the Runware account balance, then submit again.",
    "validation": "Change the parameter Runware named and submit again.",
    "content_policy": "Rephrase the prompt or change the input media; the provider's content policy refused it.",
    "duplicate": "Runware already has this task; follow it with get_video_status.",
    "provider_failure": "The provider failed to render this job; submitting the same request again usually works.",
    "provider_timeout": "The provider timed out; submitting the same request again usually works.",
    "capacity": "Runware is busy; wait a minute and try again.",
    "server": "Runware had a server error; try again shortly.",
    "network": "Runware could not be reached in time; check the network and try again.",
    "protocol": "Runware sent a response that could not be read; try again shortly.",
    "not_found": "Runware does not know this task id.",
    "unknown": "Runware reported an error kling-mcp does not know; see the message.",
}


def categorise(code: str | None, status: int | None = None) -> ErrorCategory:
    """A code's category (the table in _codes), falling back on the HTTP status when the code is unknown."""
    category = category_of(code)
    if category == "unknown" and status is not None and status in BY_STATUS:
        return BY_STATUS[status]
    return category


@dataclass(frozen=True, slots=True)
class ProviderError:
    """One error object from Runware, kept whole (code, message, parameter, allowed values) and scrubbed of
    every secret in every field."""

    category: ErrorCategory
    code: str
    message: str
    parameter: str | list[str] | None = None
    allowed_values: Any = None
    task_uuid: str | None = None
    status: int | None = None
    documentation: str | None = None

    @classmethod
    def parse(cls, obj: Any, *, status: int | None = None) -> ProviderError:
        """From an ``errors[]`` entry or an item's ``error`` object, whatever its shape."""
        obj = scrub(obj) if isinstance(obj, dict) else {"message": scrub(str(obj))}
        raw_code = obj.get("code") or obj.get("errorCode") or obj.get("status")
        code = str(raw_code) if isinstance(raw_code, (str, int)) and raw_code != "" else "error"
        parameter = obj.get("parameter")
        if not (parameter is None or isinstance(parameter, str)
                or (isinstance(parameter, list) and all(isinstance(p, str) for p in parameter))):  # fmt: skip
            parameter = str(parameter)
        task_uuid = obj.get("taskUUID")
        return cls(
            category=categorise(code, status),
            code=code,
            message=str(obj.get("message") or obj.get("error") or obj.get("responseContent") or code),
            parameter=parameter,
            allowed_values=obj.get("allowedValues"),
            task_uuid=task_uuid if isinstance(task_uuid, str) else None,
            status=status,
            documentation=None if obj.get("documentation") is None else str(obj["documentation"]),
        )

    @property
    def refusal(self) -> bool:
        """Whether the code itself says Runware refused the task (validation, auth, balance, content policy).
        The HTTP status alone never does: a bare 400 or an unknown code proves nothing."""
        return category_of(self.code) in REFUSALS

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
        super().__init__(scrub(f"{message} ({category}). {NEXT_STEP[category]}"))

    @property
    def retryable(self) -> bool:
        return self.category in TRANSIENT

    def to_dict(self) -> dict[str, Any]:
        return {
            "category": self.category,
            "message": str(self),
            "status": self.status,
            "errors": [e.to_dict() for e in self.errors],
        }
