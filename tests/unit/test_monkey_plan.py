"""The random schedule's pure parts: arguments, eligibility, victims, replay."""

from __future__ import annotations

import random
from typing import Any

import pytest

from pytest_chaos.errors import ChaosConfigError
from pytest_chaos.faults.monkey_plan import check_random_pods, eligible, in_flight, victims


def pod(name: str, *, ready: bool = True, gone: bool = False, **labels: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": "shop", "labels": labels}
    if gone:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {
        "metadata": meta,
        "spec": {"nodeName": "n1"},
        "status": {"conditions": [{"type": "Ready", "status": str(ready)}]},
    }


def test_the_schedule_counts_its_ticks() -> None:
    assert check_random_pods(namespace="shop", every="30s", for_="10m").ticks == 20
    assert check_random_pods(namespace="shop", every="4s", for_="10s").ticks == 3
    assert check_random_pods(namespace="shop", every="10s", for_="10s").ticks == 1


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"every": "1m", "for_": "30s"}, "every='1m' is longer than for_='30s'"),
        ({"every": "soon", "for_": "30s"}, "every='soon' is not a duration"),
        ({"every": "1s", "for_": "10 minutes"}, "for_='10 minutes' is not a duration"),
        ({"every": 0, "for_": "30s"}, "every=0 must be above 0"),
        ({"every": "1s", "for_": "3s", "max_in_flight": 0}, "max_in_flight=0 must be"),
        ({"every": "1s", "for_": "3s", "selector": "app in ("}, "selector="),
        ({"every": "1s", "for_": "3s", "exclude": "=x"}, "exclude="),
    ],
)
def test_bad_arguments_name_themselves(kwargs: dict[str, Any], error: str) -> None:
    with pytest.raises(ChaosConfigError, match=None) as caught:
        check_random_pods(namespace="shop", **kwargs)
    assert error in str(caught.value)


def test_selector_exclude_and_terminating_pods_decide_who_is_eligible() -> None:
    schedule = check_random_pods(
        namespace="shop", every="1s", for_="2s", selector="app", exclude="role=db"
    )
    pods = [
        pod("a", app="web"),
        pod("b", app="db", role="db"),
        pod("c"),
        pod("d", app="x", gone=True),
    ]
    assert [p["metadata"]["name"] for p in eligible(pods, schedule, random.Random(1))] == ["a"]


def test_kube_monkey_opt_in_and_mtbf() -> None:
    schedule = check_random_pods(namespace="shop", every="1s", for_="2s", kube_monkey=True)
    pods = [pod("in", **{"kube-monkey/enabled": "enabled"}), pod("out")]
    assert [p["metadata"]["name"] for p in eligible(pods, schedule, random.Random(1))] == ["in"]
    rare = [pod("rare", **{"kube-monkey/enabled": "enabled", "kube-monkey/mtbf": "4"})]
    hits = sum(bool(eligible(rare, schedule, random.Random(seed))) for seed in range(400))
    assert 60 < hits < 140  # about one tick in four


def test_kube_monkey_kill_modes_kill_the_victims_group() -> None:
    schedule = check_random_pods(namespace="shop", every="1s", for_="2s", kube_monkey=True)
    group = {"kube-monkey/enabled": "enabled", "kube-monkey/identifier": "web"}
    all_of = [pod(f"w{i}", **group, **{"kube-monkey/kill-mode": "kill-all"}) for i in range(3)]
    assert len(victims(all_of, schedule, random.Random(1))) == 3
    fixed = [
        pod(f"w{i}", **group, **{"kube-monkey/kill-mode": "fixed", "kube-monkey/kill-value": "2"})
        for i in range(3)
    ]
    assert len(victims(fixed, schedule, random.Random(1))) == 2
    plain = check_random_pods(namespace="shop", every="1s", for_="2s")
    assert len(victims(all_of, plain, random.Random(1))) == 1  # labels ignored unless asked


def test_the_same_seed_picks_the_same_victims() -> None:
    schedule = check_random_pods(namespace="shop", every="1s", for_="5s")
    pods = [pod(f"p{i}") for i in range(8)]

    def replay(seed: int) -> list[str]:
        rng, left, out = random.Random(seed), list(pods), []
        for _ in range(4):
            (victim,) = victims(eligible(left, schedule, rng), schedule, rng)
            out.append(victim["metadata"]["name"])
            left.remove(victim)
        return out

    assert replay(7) == replay(7)
    assert replay(7) == replay(7)[::1]
    assert any(replay(seed) != replay(7) for seed in range(5))
    # The API's listing order does not matter: candidates are sorted by name.
    assert victims(eligible(pods[::-1], schedule, random.Random(3)), schedule, random.Random(3))


def test_pods_going_or_not_ready_are_in_flight() -> None:
    assert in_flight([pod("a"), pod("b", ready=False), pod("c", gone=True)]) == 2
