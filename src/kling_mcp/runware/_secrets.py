"""Secrets that must never leave the process in any text: the Runware API key and the HTTP token.

A provider may echo a request's ``Authorization`` header into any field of an error, nested or in
a list, so every value from Runware is scrubbed whole before it reaches a result, a log or the
ledger. The registry is process-wide: whoever learns a secret (the client its key, the CLI its
token) registers it once.
"""

from __future__ import annotations

import re
import threading
from typing import Any

MASK = "***"
# Shorter values are not secrets anyone would echo, and masking them would mangle ordinary text.
_MIN_LENGTH = 6

# Each job's webhook secret (see webhooks.py) is one of many, never registered: it is known by its prefix.
WEBHOOK_SECRET_PREFIX = "kmwh_"
_WEBHOOK_SECRET = re.compile(re.escape(WEBHOOK_SECRET_PREFIX) + r"[A-Za-z0-9_-]+")

# What JSON may write other than as itself, besides \u escapes: a secret holding one may not appear verbatim.
_ESCAPABLE = re.compile(r'["\\/\x00-\x1f]')

_lock = threading.Lock()
_secrets: tuple[str, ...] = ()


def register_secret(value: str | None) -> None:
    global _secrets
    if not value or len(value) < _MIN_LENGTH:
        return
    with _lock:
        if value not in _secrets:
            # Longest first, so a secret that contains another is masked whole.
            _secrets = tuple(sorted((*_secrets, value), key=len, reverse=True))


def may_hold_secret(raw: str) -> bool:
    """Whether a JSON text could hold a secret in any of its strings once parsed: False only when no
    registered secret, no webhook secret prefix and no \\u escape (which could spell one) is in it. A secret
    with a character JSON may escape anyway is never ruled out this way. Lets a large answer with
    nothing to mask skip the walk through every value."""
    if "\\u" in raw or WEBHOOK_SECRET_PREFIX in raw:
        return True
    return any(secret in raw or _ESCAPABLE.search(secret) for secret in _secrets)


def scrub(value: Any) -> Any:
    """The value with every registered secret masked in every string: keys, values, nested, in lists."""
    return _scrub(value, _secrets)


def _scrub(value: Any, secrets: tuple[str, ...]) -> Any:
    if isinstance(value, str):
        for secret in secrets:
            if secret in value:
                value = value.replace(secret, MASK)
        return _WEBHOOK_SECRET.sub(MASK, value) if WEBHOOK_SECRET_PREFIX in value else value
    if isinstance(value, dict):
        return {_scrub(k, secrets): _scrub(v, secrets) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_scrub(v, secrets) for v in value]
    return value
