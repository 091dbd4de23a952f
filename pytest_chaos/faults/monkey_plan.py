"""Random chaos, the pure part: the schedule, who is eligible, and who dies at each tick.

``chaos.random.pods`` and ``pytest-chaos monkey`` kill a random pod of a namespace every
``every`` seconds for ``for_`` seconds. Every choice comes from one seeded ``random.Random`` and
the candidates sorted by name, so the same seed and the same pods give the same victims in the
same order. kube-monkey's opt-in labels are honoured when asked (``kube_monkey=True``): only pods
labelled ``kube-monkey/enabled=enabled`` are candidates; ``kube-monkey/mtbf=N`` makes a pod a
candidate at one tick in N on average; ``kube-monkey/kill-mode`` (``kill-all``, ``fixed``,
``fixed-percent``, ``random-max-percent``, with ``kube-monkey/kill-value``) kills that many of
the victim's group (the pods sharing its ``kube-monkey/identifier``) instead of the victim alone.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pytest_chaos.durations import as_seconds
from pytest_chaos.errors import ChaosConfigError, ChaosError
from pytest_chaos.targeting import Requirement, choose, matches, parse_label_selector

ENABLED = "kube-monkey/enabled"
MTBF = "kube-monkey/mtbf"
KILL_MODE = "kube-monkey/kill-mode"
KILL_VALUE = "kube-monkey/kill-value"
IDENTIFIER = "kube-monkey/identifier"
#: kube-monkey's kill modes and the targeting modes they are.
KILL_MODES = {
    "kill-all": "all",
    "fixed": "fixed",
    "fixed-percent": "fixed-percent",
    "random-max-percent": "random-max-percent",
}

Pod = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Schedule:
    """When the kills are due: at 0, every, 2*every... while below for_ (seconds)."""

    every: float
    for_: float
    max_in_flight: int
    selector: tuple[Requirement, ...]
    exclude: tuple[Requirement, ...]
    kube_monkey: bool

    @property
    def ticks(self) -> int:
        """How many kills are due (each tick kills once, or skips)."""
        return max(1, math.ceil(self.for_ / self.every - 1e-9))

    def due(self, tick: int) -> float:
        """Seconds after the start when tick is due."""
        return tick * self.every

    def describe(self, namespace: str, selector: str | None) -> str:
        """One line for the plan and the timeline."""
        which = f"pods matching {selector!r}" if selector else "any pod"
        monkey = ", kube-monkey labels" if self.kube_monkey else ""
        return (
            f"kill {which} in {namespace} every {self.every:g}s for {self.for_:g}s "
            f"({self.ticks} tick(s), at most {self.max_in_flight} in flight{monkey})"
        )


def check_random_pods(
    *,
    namespace: object,
    every: object,
    for_: object,
    selector: object = None,
    exclude: object = None,
    max_in_flight: object = 1,
    kube_monkey: object = False,
    names: Mapping[str, str] | None = None,
) -> Schedule:
    """Validate the arguments of ``chaos.random.pods``; raise ChaosConfigError naming the one.

    ``names`` renames arguments in messages (``{"for_": "--for"}`` for the command line).
    """
    called = {"every": "every", "for_": "for_", "max_in_flight": "max_in_flight", **(names or {})}
    every_name, for_name, flight_name = called["every"], called["for_"], called["max_in_flight"]
    if not isinstance(namespace, str) or not namespace:
        raise ChaosConfigError(f"namespace={namespace!r} must be one namespace name")
    every_s = as_seconds(every, name=every_name)
    for_s = as_seconds(for_, name=for_name)
    if every_s <= 0:
        raise ChaosConfigError(f"{every_name}={every!r} must be above 0 (e.g. {every_name}='30s')")
    if every_s > for_s:
        raise ChaosConfigError(
            f"{every_name}={every!r} is longer than {for_name}={for_!r}: no kill would be due; "
            f"make {every_name} shorter than {for_name} (e.g. {every_name}='30s', "
            f"{for_name}='10m')"
        )
    if isinstance(max_in_flight, bool) or not isinstance(max_in_flight, int) or max_in_flight < 1:
        raise ChaosConfigError(
            f"{flight_name}={max_in_flight!r} must be a whole number >= 1 (pods killed and not "
            "yet replaced and Ready, beyond which a tick skips)"
        )
    if not isinstance(kube_monkey, bool):
        raise ChaosConfigError(f"kube_monkey={kube_monkey!r} must be True or False")
    return Schedule(
        every=every_s,
        for_=for_s,
        max_in_flight=max_in_flight,
        selector=parse_label_selector(selector, name=called.get("selector", "selector")),
        exclude=(
            parse_label_selector(exclude, name=called.get("exclude", "exclude")) if exclude else ()
        ),
        kube_monkey=kube_monkey,
    )


def name_of(pod: Pod) -> str:
    """``namespace/name``."""
    meta = pod["metadata"]
    return f"{meta['namespace']}/{meta['name']}"


def _labels(pod: Pod) -> Mapping[str, str]:
    return pod["metadata"].get("labels") or {}


def _ready(pod: Pod) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def in_flight(pods: Sequence[Pod]) -> int:
    """Pods still on their way out or not Ready yet (a kill's effect not over)."""
    return sum(bool(p["metadata"].get("deletionTimestamp")) or not _ready(p) for p in pods)


def in_scope(pods: Sequence[Pod], schedule: Schedule) -> list[Pod]:
    """The pods the schedule may touch (selector, not excluded), Terminating ones included."""
    return [
        p
        for p in pods
        if matches(schedule.selector, _labels(p))
        and not (schedule.exclude and matches(schedule.exclude, _labels(p)))
    ]


def _mtbf(pod: Pod) -> int:
    value = _labels(pod).get(MTBF, "1")
    try:
        return max(1, int(value))
    except ValueError:
        return 1  # kube-monkey ignores a malformed label's pod; here it is a plain candidate


def eligible(pods: Sequence[Pod], schedule: Schedule, rng: random.Random) -> list[Pod]:
    """The candidates of one tick, sorted by name; consumes rng for kube-monkey's mtbf."""
    alive = [p for p in in_scope(pods, schedule) if not p["metadata"].get("deletionTimestamp")]
    chosen = []
    for pod in sorted(alive, key=name_of):
        labels = _labels(pod)
        if schedule.kube_monkey:
            if labels.get(ENABLED) != "enabled":
                continue
            if rng.randrange(_mtbf(pod)) != 0:
                continue
        chosen.append(pod)
    return chosen


def victims(candidates: Sequence[Pod], schedule: Schedule, rng: random.Random) -> list[Pod]:
    """Who dies at this tick: one candidate, or its kube-monkey group by its kill-mode."""
    if not candidates:
        return []
    victim = candidates[rng.randrange(len(candidates))]
    labels = _labels(victim)
    mode = KILL_MODES.get(labels.get(KILL_MODE, ""))
    if not schedule.kube_monkey or mode is None:
        return [victim]
    group = [
        p for p in candidates if _labels(p).get(IDENTIFIER) == labels.get(IDENTIFIER) or p is victim
    ]
    value: float | None = None
    if mode != "all":
        try:
            value = float(labels.get(KILL_VALUE, "1"))
        except ValueError:
            return [victim]
    if mode == "fixed" and value is not None:
        value = min(int(value), len(group))
    try:
        return choose(group, mode, value, rng, key=name_of)
    except ChaosError:  # a kill-value out of range: the victim alone, as kube-monkey would
        return [victim]
