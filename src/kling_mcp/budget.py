"""What may still be spent: each spend cap, what is committed against it, what is left.

Committed means finished jobs at their actual cost plus jobs that may still be charged at
their estimate (the ledger's rule), so what is "left" is what a new request may reserve.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from .ledger import Ledger, start_of_utc_day

CapName = Literal["daily", "total"]
_CENT = Decimal("0.000001")


@dataclass(frozen=True, slots=True)
class CapState:
    name: CapName
    cap_usd: Decimal | None  # None: no cap
    committed_usd: Decimal
    resets_at: datetime | None  # None: never (the total cap)

    @property
    def left_usd(self) -> Decimal | None:
        return None if self.cap_usd is None else max(Decimal(0), self.cap_usd - self.committed_usd)

    def fits(self, cost: Decimal) -> bool:
        return self.cap_usd is None or self.committed_usd + cost <= self.cap_usd

    def to_dict(self) -> dict[str, Any]:
        return {
            "cap": self.name,
            "cap_usd": None if self.cap_usd is None else float(self.cap_usd),
            "committed_usd": float(self.committed_usd),
            "left_usd": None if self.left_usd is None else float(self.left_usd),
            "resets_at": None if self.resets_at is None else self.resets_at.isoformat(timespec="seconds"),
        }


@dataclass(frozen=True, slots=True)
class Budget:
    caps: tuple[CapState, CapState]  # daily, total
    simulated: bool

    def broken_by(self, cost: Decimal) -> CapState | None:
        """The first cap a request reserving ``cost`` would take over its limit."""
        return next((c for c in self.caps if not c.fits(cost)), None)

    @property
    def left_usd(self) -> Decimal | None:
        """The most a new request may reserve now (None: no cap applies)."""
        lefts = [c.left_usd for c in self.caps if c.left_usd is not None]
        return min(lefts) if lefts else None

    def fit_of(self, cost: Decimal) -> dict[str, Any]:
        """How a cost sits against what is left, for every estimate an agent sees."""
        broken = self.broken_by(cost)
        left = self.left_usd
        return {
            "fits_caps": broken is None,
            "caps_left_usd": None if left is None else float(left),
            **({"over_cap": broken.name} if broken is not None else {}),
            **({"simulated": True} if self.simulated else {}),
        }

    def to_dict(self) -> dict[str, Any]:
        return {"caps": [c.to_dict() for c in self.caps], "left_usd": None if self.left_usd is None else float(self.left_usd),
                "simulated": self.simulated}  # fmt: skip


def read_budget(
    ledger: Ledger, *, daily_cap: Decimal | None, total_cap: Decimal | None, simulated: bool, now: float
) -> Budget:
    """The caps as they stand at ``now`` (a ledger read: run it off the event loop)."""
    day_start = start_of_utc_day(now)
    tomorrow = datetime.fromtimestamp(day_start, UTC) + timedelta(days=1)
    daily = CapState("daily", daily_cap, ledger.committed_usd(day_start).quantize(_CENT), tomorrow)
    total = CapState("total", total_cap, ledger.committed_usd(0.0).quantize(_CENT), None)
    return Budget((daily, total), simulated)
