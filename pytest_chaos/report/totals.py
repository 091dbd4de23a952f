"""A run's fault totals, once: what the terminal, the HTML report, notifications and hooks say."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class RunTotals:
    """Faults injected, reverted and discarded after drift, and what went wrong, over a run."""

    injected: int = 0
    reverted: int = 0
    #: Faults not reverted because someone else changed their target since (drift).
    discarded: int = 0
    revert_failures: tuple[str, ...] = ()
    leftovers: tuple[str, ...] = ()

    @classmethod
    def of(cls, stats: Iterable[Mapping[str, Any]]) -> RunTotals:
        """The sum of each chaos session's figures (one per process, or per xdist worker)."""
        every = list(stats)
        return cls(
            injected=sum(s["injected"] for s in every),
            reverted=sum(s["reverted"] for s in every),
            discarded=sum(s.get("discarded", 0) for s in every),
            revert_failures=tuple(f for s in every for f in s["revert_failures"]),
            leftovers=tuple(f for s in every for f in s["leftovers"]),
        )

    @property
    def dirty(self) -> bool:
        """True when the cluster may still carry a fault: a revert failed, or one is left."""
        return bool(self.revert_failures or self.leftovers)

    @property
    def problems(self) -> list[str]:
        """The failed reverts, then the leftovers, one line each."""
        return [*self.revert_failures, *self.leftovers]

    def text(self, sep: str = ": ") -> str:
        """``faults injected: 2, reverted: 2, revert failures: 0, leftovers: 0``.

        Discarded faults are named only when there are some; ``sep`` goes between each count's
        name and its number (notifications use a space).
        """
        counts = [("faults injected", self.injected), ("reverted", self.reverted)]
        if self.discarded:
            counts.append(("discarded after drift", self.discarded))
        counts += [
            ("revert failures", len(self.revert_failures)),
            ("leftovers", len(self.leftovers)),
        ]
        return ", ".join(f"{name}{sep}{n}" for name, n in counts)

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape hooks, the journal and plain-JSON notifications carry."""
        return {
            "injected": self.injected,
            "reverted": self.reverted,
            "discarded": self.discarded,
            "revert_failures": list(self.revert_failures),
            "leftovers": list(self.leftovers),
        }
