from __future__ import annotations

import dataclasses
import random
from collections.abc import Mapping
from typing import Any

import pytest

from pytest_chaos.errors import ChaosConfigError, TargetingError
from pytest_chaos.targeting import (
    MODES,
    PodFilter,
    Requirement,
    choose,
    matches,
    nothing_matched,
    parse_label_selector,
    validate_mode,
)

NAMES = [f"pod-{i:02d}" for i in range(20)]


def pod(
    name: str,
    labels: Mapping[str, str] | None = None,
    *,
    node: str = "node-1",
    phase: str = "Running",
    terminating: bool = False,
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "namespace": "shop", "labels": labels}
    if terminating:
        metadata["deletionTimestamp"] = "2025-01-01T00:00:00Z"
    return {"metadata": metadata, "spec": {"nodeName": node}, "status": {"phase": phase}}


def name_of(item: Mapping[str, Any]) -> str:
    return str(item["metadata"]["name"])


# --- parsing -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("app=web", [Requirement("app", "=", ("web",))]),
        ("app==web", [Requirement("app", "=", ("web",))]),
        ("tier!=db", [Requirement("tier", "!=", ("db",))]),
        ("env in (a, b)", [Requirement("env", "in", ("a", "b"))]),
        ("env notin (c)", [Requirement("env", "notin", ("c",))]),
        ("canary", [Requirement("canary", "exists")]),
        ("!canary", [Requirement("canary", "!")]),
        (
            "app=web,tier in (front, back),!canary",
            [
                Requirement("app", "=", ("web",)),
                Requirement("tier", "in", ("front", "back")),
                Requirement("canary", "!"),
            ],
        ),
        (
            "  app = web ,tier in(front,back) ",
            [Requirement("app", "=", ("web",)), Requirement("tier", "in", ("front", "back"))],
        ),
        (
            "app.kubernetes.io/name=web",
            [Requirement("app.kubernetes.io/name", "=", ("web",))],
        ),
        ("pod-template-hash=7d4b9_x.1", [Requirement("pod-template-hash", "=", ("7d4b9_x.1",))]),
        # As in Kubernetes, `in` and `notin` are keywords only where an operator is expected.
        ("in=notin", [Requirement("in", "=", ("notin",))]),
    ],
)
def test_parse_label_selector_accepts_every_operator(
    text: str, expected: list[Requirement]
) -> None:
    assert parse_label_selector(text) == tuple(expected)


@pytest.mark.parametrize("text", [None, "", "   "])
def test_an_empty_selector_has_no_requirements_and_matches_everything(text: str | None) -> None:
    requirements = parse_label_selector(text)
    assert requirements == ()
    assert matches(requirements, {"app": "web"})
    assert matches(requirements, None)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("app=", r"missing value after '='"),
        ("app==", r"missing value after '=='"),
        ("tier!=", r"missing value after '!='"),
        ("app=,tier=db", r"missing value after '='"),
        ("=web", r"missing key before '='"),
        ("env in a", r"expected '\(' after 'in', as in 'env in \(a, b\)'"),
        ("env notin c", r"expected '\(' after 'notin'"),
        ("env in (a, b", r"unbalanced parentheses: missing '\)'"),
        ("env in (a,", r"unbalanced parentheses: missing '\)'"),
        ("env in (a))", r"unbalanced parentheses: '\)' without '\('"),
        ("app=web)", r"unbalanced parentheses: '\)' without '\('"),
        ("(app)", r"unexpected '\('; parentheses only follow 'in' or 'notin'"),
        ("env in ()", r"empty value list after 'in'"),
        ("env in (a b)", r"expected ',' or '\)' after 'a', found 'b'"),
        ("env in (a,,b)", r"expected a value in the list after 'in', found ','"),
        ("app$=web", r"invalid key 'app\$'"),
        ("-app=web", r"invalid key '-app'"),
        ("Example.com/app=web", r"invalid key 'Example.com/app'"),
        ("a/b/c=d", r"invalid key 'a/b/c'"),
        (f"{'k' * 64}=v", r"invalid key 'k{64}'"),
        ("app=we$b", r"invalid value 'we\$b'"),
        ("app=-web", r"invalid value '-web'"),
        (f"app={'v' * 64}", r"invalid value 'v{64}'"),
        ("app web", r"expected an operator after 'app', found 'web'"),
        ("app=web tier=db", r"expected ',' or the end after 'app=web', found 'tier'"),
        ("app=web,", r"empty clause"),
        ("app=web,,tier=db", r"empty clause"),
        (",app=web", r"empty clause"),
        ("!", r"missing key after '!'"),
        ("!app=web", r"'!' takes a bare key, as in '!canary'; to exclude a value write 'app!=...'"),
        ("replicas>2", r"operator '>' is not supported"),
        ("replicas<2", r"operator '<' is not supported"),
    ],
)
def test_invalid_selectors_say_what_is_wrong(text: str, reason: str) -> None:
    with pytest.raises(ChaosConfigError, match=reason) as raised:
        parse_label_selector(text)
    message = str(raised.value)
    assert message.startswith(f"selector={text!r} is not a valid label selector: ")
    assert message.endswith("(example: 'app=web,tier!=db')")


def test_the_documented_message_for_a_missing_value() -> None:
    with pytest.raises(ChaosConfigError) as raised:
        parse_label_selector("app=")
    assert str(raised.value) == (
        "selector='app=' is not a valid label selector: missing value after '=' "
        "(example: 'app=web,tier!=db')"
    )


def test_selector_errors_name_the_argument() -> None:
    with pytest.raises(ChaosConfigError, match=r"^label_selector='=web' is not a valid"):
        parse_label_selector("=web", name="label_selector")


def test_a_selector_that_is_not_a_string_is_refused() -> None:
    with pytest.raises(ChaosConfigError, match=r"selector=\{'app': 'web'\} \(dict\) is not a"):
        parse_label_selector({"app": "web"})


@pytest.mark.parametrize(
    "text",
    ["app=web", "tier!=db", "env in (a, b)", "env notin (c)", "canary", "!canary", "x.io/k=v"],
)
def test_a_requirement_prints_as_selector_text_that_parses_back(text: str) -> None:
    (requirement,) = parse_label_selector(text)
    assert str(requirement) == text
    assert parse_label_selector(str(requirement)) == (requirement,)


@pytest.mark.parametrize(
    ("operator", "values"),
    [("=", ()), ("=", ("a", "b")), ("in", ()), ("exists", ("a",)), ("!", ("a",)), ("~", ())],
)
def test_a_requirement_with_the_wrong_number_of_values_cannot_be_built(
    operator: Any, values: tuple[str, ...]
) -> None:
    with pytest.raises(ValueError, match="operator"):
        Requirement("app", operator, values)


# --- matching ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("selector", "labels", "expected"),
    [
        ("app=web", {"app": "web"}, True),
        ("app=web", {"app": "api"}, False),
        ("app=web", {}, False),
        ("app==web", {"app": "web", "tier": "front"}, True),
        ("tier!=db", {"tier": "front"}, True),
        ("tier!=db", {"tier": "db"}, False),
        ("tier!=db", {}, True),  # Kubernetes: != also holds when the key is absent
        ("env in (a, b)", {"env": "b"}, True),
        ("env in (a, b)", {"env": "c"}, False),
        ("env in (a, b)", {}, False),
        ("env notin (c)", {"env": "a"}, True),
        ("env notin (c)", {"env": "c"}, False),
        ("env notin (c)", {}, True),  # as != above
        ("canary", {"canary": ""}, True),
        ("canary", {"app": "web"}, False),
        ("!canary", {"app": "web"}, True),
        ("!canary", {"canary": "true"}, False),
        ("app=web,tier in (front, back),!canary", {"app": "web", "tier": "back"}, True),
        ("app=web,tier in (front, back),!canary", {"app": "web", "tier": "db"}, False),
        (
            "app=web,tier in (front, back),!canary",
            {"app": "web", "tier": "back", "canary": "1"},
            False,
        ),
    ],
)
def test_every_operator_matches_as_kubernetes_does(
    selector: str, labels: dict[str, str], expected: bool
) -> None:
    assert matches(parse_label_selector(selector), labels) is expected


@pytest.mark.parametrize(("selector", "expected"), [("!canary", True), ("app=web", False)])
def test_missing_labels_count_as_no_labels(selector: str, expected: bool) -> None:
    assert matches(parse_label_selector(selector), None) is expected


# --- modes ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "value", "expected"),
    [
        ("one", None, ("one", None)),
        ("all", None, ("all", None)),
        ("fixed", 1, ("fixed", 1)),
        ("fixed", 3, ("fixed", 3)),
        ("fixed-percent", 50, ("fixed-percent", 50.0)),
        ("fixed-percent", 0.5, ("fixed-percent", 0.5)),
        ("fixed-percent", 100, ("fixed-percent", 100.0)),
        ("random-max-percent", 25.5, ("random-max-percent", 25.5)),
    ],
)
def test_valid_modes_and_values(mode: str, value: float | None, expected: tuple[Any, ...]) -> None:
    assert validate_mode(mode, value) == expected


@pytest.mark.parametrize(
    ("mode", "value", "message"),
    [
        (
            "fixed_percent",
            50,
            r"^mode='fixed_percent' is not a mode \(did you mean 'fixed-percent'\?\); "
            r"choose one of one, all, fixed, fixed-percent, random-max-percent$",
        ),
        ("random_max_percent", 5, r"did you mean 'random-max-percent'\?"),
        ("ALL", None, r"mode='ALL' is not a mode \(did you mean 'all'\?\)"),
        ("every", None, r"^mode='every' is not a mode; choose one of one, all, fixed"),
        (None, None, r"^mode=None is not a mode; choose one of"),
        ("one", 1, r"^value=1 is not used with mode='one'; leave it out"),
        ("all", 100, r"^value=100 is not used with mode='all'"),
        ("fixed", None, r"^mode='fixed' needs value= \(a number of targets, e\.g\. value=2\)"),
        ("fixed", 0, r"^value=0 must be a whole number of targets >= 1 with mode='fixed'"),
        ("fixed", -2, r"^value=-2 must be a whole number"),
        ("fixed", 2.5, r"^value=2\.5 must be a whole number"),
        ("fixed", 2.0, r"^value=2\.0 must be a whole number"),
        ("fixed", True, r"^value=True must be a whole number"),
        ("fixed", "2", r"^value='2' must be a whole number"),
        ("fixed-percent", None, r"needs value= \(a percentage, e\.g\. value=50\)"),
        ("fixed-percent", 0, r"^value=0 must be a percentage with 0 < value <= 100"),
        ("fixed-percent", 100.5, r"^value=100\.5 must be a percentage"),
        ("fixed-percent", -10, r"^value=-10 must be a percentage"),
        ("fixed-percent", float("nan"), r"^value=nan must be a percentage"),
        ("fixed-percent", True, r"^value=True must be a percentage"),
        ("random-max-percent", 0, r"with mode='random-max-percent'$"),
        ("random-max-percent", "50%", r"^value='50%' must be a percentage"),
    ],
)
def test_invalid_modes_and_values_are_refused_with_the_argument_names(
    mode: Any, value: Any, message: str
) -> None:
    with pytest.raises(ChaosConfigError, match=message):
        validate_mode(mode, value)


def test_mode_errors_use_the_given_argument_name() -> None:
    with pytest.raises(ChaosConfigError, match=r"^pick='oen' is not a mode \(did you mean 'one'"):
        validate_mode("oen", None, name="pick")
    with pytest.raises(ChaosConfigError, match=r"is not used with pick='all'"):
        validate_mode("all", 5, name="pick")


def test_modes_constant_lists_every_mode() -> None:
    assert MODES == ("one", "all", "fixed", "fixed-percent", "random-max-percent")
    for mode in MODES:
        value = {"one": None, "all": None, "fixed": 1}.get(mode, 10)
        assert validate_mode(mode, value)[0] == mode


# --- choosing ------------------------------------------------------------------------------


def test_one_picks_a_single_candidate() -> None:
    chosen = choose(NAMES, "one", None, random.Random(7), key=str)
    assert len(chosen) == 1
    assert chosen[0] in NAMES


def test_all_returns_every_candidate_sorted() -> None:
    shuffled = list(reversed(NAMES))
    assert choose(shuffled, "all", None, random.Random(7), key=str) == sorted(NAMES)


def test_fixed_picks_exactly_n_distinct_candidates_sorted() -> None:
    chosen = choose(NAMES, "fixed", 5, random.Random(7), key=str)
    assert len(chosen) == len(set(chosen)) == 5
    assert chosen == sorted(chosen)
    assert set(chosen) <= set(NAMES)


def test_fixed_may_take_every_candidate() -> None:
    assert choose(NAMES[:3], "fixed", 3, random.Random(7), key=str) == NAMES[:3]


def test_fixed_with_too_few_candidates_says_how_many_match_and_which() -> None:
    with pytest.raises(
        TargetingError, match=r"^mode='fixed' value=5 needs 5 targets but only 3 match: a, b, c$"
    ):
        choose(["c", "a", "b"], "fixed", 5, random.Random(1), key=str)


def test_fixed_with_too_few_candidates_lists_at_most_ten_names() -> None:
    with pytest.raises(TargetingError, match=r"only 20 match: pod-00, .*, pod-09, \+10 more$"):
        choose(NAMES, "fixed", 25, random.Random(1), key=str)


@pytest.mark.parametrize(
    ("total", "percent", "count"),
    [
        (10, 50, 5),
        (10, 100, 10),
        (10, 70, 7),  # 10 * 70 / 100 is 7.000000000000001 in binary floating point
        (10, 29, 2),  # rounds down
        (3, 50, 1),
        (3, 10, 1),  # never below one
        (1, 1, 1),
        (7, 0.5, 1),
        (20, 33.3, 6),
        (20, 99.99, 19),
    ],
)
def test_fixed_percent_rounds_down_but_never_below_one(
    total: int, percent: float, count: int
) -> None:
    chosen = choose(NAMES[:total], "fixed-percent", percent, random.Random(3), key=str)
    assert len(chosen) == count
    assert len(set(chosen)) == count


@pytest.mark.parametrize(("total", "percent", "upper"), [(20, 50, 10), (20, 5, 1), (3, 40, 1)])
def test_random_max_percent_picks_between_one_and_the_percentage(
    total: int, percent: float, upper: int
) -> None:
    counts = {
        len(choose(NAMES[:total], "random-max-percent", percent, random.Random(seed), key=str))
        for seed in range(300)
    }
    assert counts == set(range(1, upper + 1))


@pytest.mark.parametrize(
    ("mode", "value"),
    [("one", None), ("fixed", 3), ("fixed-percent", 30), ("random-max-percent", 50)],
)
def test_the_same_seed_gives_the_same_choice(mode: str, value: float | None) -> None:
    first = choose(NAMES, mode, value, random.Random(42), key=str)
    again = choose(NAMES, mode, value, random.Random(42), key=str)
    assert first == again


@pytest.mark.parametrize(
    ("mode", "value"),
    [("one", None), ("fixed", 3), ("fixed-percent", 30), ("random-max-percent", 50)],
)
def test_different_seeds_give_different_choices(mode: str, value: float | None) -> None:
    choices = {
        tuple(choose(NAMES, mode, value, random.Random(seed), key=str)) for seed in range(50)
    }
    assert len(choices) > 10


def test_the_choice_does_not_depend_on_the_order_candidates_were_listed_in() -> None:
    pods = [pod(name) for name in NAMES]
    shuffled = pods[:]
    random.Random(0).shuffle(shuffled)
    for seed in range(20):
        in_order = choose(pods, "fixed", 4, random.Random(seed), key=name_of)
        reordered = choose(shuffled, "fixed", 4, random.Random(seed), key=name_of)
        assert [name_of(p) for p in in_order] == [name_of(p) for p in reordered]


def test_every_candidate_can_be_chosen() -> None:
    seen = {choose(NAMES, "one", None, random.Random(seed), key=str)[0] for seed in range(500)}
    assert seen == set(NAMES)


def test_all_does_not_consume_randomness() -> None:
    rng = random.Random(5)
    state = rng.getstate()
    choose(NAMES, "all", None, rng, key=str)
    assert rng.getstate() == state


@pytest.mark.parametrize(
    ("mode", "value"),
    [("one", None), ("all", None), ("fixed", 1), ("fixed-percent", 50), ("random-max-percent", 5)],
)
def test_no_candidates_is_a_targeting_error(mode: str, value: float | None) -> None:
    with pytest.raises(TargetingError, match=r"^no targets to choose from$"):
        choose([], mode, value, random.Random(1), key=str)


def test_an_invalid_mode_is_a_config_error_even_without_candidates() -> None:
    with pytest.raises(ChaosConfigError, match="did you mean 'fixed-percent'"):
        choose([], "fixed_percent", 50, random.Random(1), key=str)


# --- nothing matched -----------------------------------------------------------------------


def replicas(app: str, count: int, template_hash: str = "7d4b9") -> dict[str, dict[str, str]]:
    return {
        f"{app}-{template_hash}-{i:05d}": {"app": app, "pod-template-hash": template_hash}
        for i in range(count)
    }


def test_nothing_matched_says_what_was_asked_on_the_first_line() -> None:
    message = nothing_matched("pods", "app=backnd", "shop", replicas("backend", 2))
    assert message.splitlines()[0] == "no pods match selector 'app=backnd' in namespace 'shop'"


def test_nothing_matched_suggests_a_close_value() -> None:
    message = nothing_matched("pods", "app=backnd", "shop", replicas("backend", 2))
    assert "did you mean 'app=backend'?" in message


def test_nothing_matched_suggests_a_close_key() -> None:
    message = nothing_matched("pods", "ap=backend", "shop", replicas("backend", 2))
    assert "did you mean 'app=backend'?" in message


def test_nothing_matched_corrects_every_clause_of_the_selector() -> None:
    existing = {"web-1": {"app": "web", "tier": "frontend"}}
    message = nothing_matched("pods", "app=wbe,tier in (fronted)", "shop", existing)
    assert "did you mean 'app=web,tier in (frontend)'?" in message


def test_nothing_matched_makes_no_suggestion_when_nothing_is_close() -> None:
    message = nothing_matched("pods", "app=zzz", "shop", replicas("backend", 2))
    assert "did you mean" not in message


def test_nothing_matched_makes_no_suggestion_that_would_still_match_nothing() -> None:
    # "backnd" is close to "backend", but no pod is both app=backend and tier=db.
    existing = {"api-1": {"app": "backend", "tier": "web"}, "db-1": {"app": "db", "tier": "db"}}
    message = nothing_matched("pods", "app=backnd,tier=db", "shop", existing)
    assert "did you mean" not in message


def test_nothing_matched_lists_existing_objects_with_their_labels() -> None:
    existing = {"web-7d4b9-abcde": {"pod-template-hash": "7d4b9", "app": "web"}, "bare": {}}
    message = nothing_matched("pods", "app=api", "shop", existing)
    assert message.splitlines()[1:] == [
        "pods in namespace 'shop' (2):",
        "  bare (no labels)",
        "  web-7d4b9-abcde (app=web, pod-template-hash=7d4b9)",
    ]


def test_nothing_matched_lists_at_most_ten_objects() -> None:
    message = nothing_matched("pods", "app=api", "shop", replicas("web", 13))
    lines = message.splitlines()
    assert "pods in namespace 'shop' (13):" in lines
    assert sum(line.startswith("  web-") for line in lines) == 10
    assert lines[-1] == "  +3 more"
    assert "  web-7d4b9-00009 (app=web, pod-template-hash=7d4b9)" in lines
    assert "web-7d4b9-00010" not in message


def test_nothing_matched_in_an_empty_namespace_says_so() -> None:
    message = nothing_matched("pods", "app=web", "shop", {})
    assert message == (
        "no pods match selector 'app=web' in namespace 'shop'\nnamespace 'shop' has no pods"
    )


def test_nothing_matched_without_a_namespace_for_cluster_scoped_objects() -> None:
    assert nothing_matched("nodes", "zone=d", None, {}) == (
        "no nodes match selector 'zone=d'\nno nodes exist"
    )
    message = nothing_matched("nodes", "zone=d", None, {"kwok-node-0": {"zone": "a"}})
    assert message.splitlines() == [
        "no nodes match selector 'zone=d'",
        "nodes (1):",
        "  kwok-node-0 (zone=a)",
    ]


@pytest.mark.parametrize("selector", [None, ""])
def test_nothing_matched_without_a_selector(selector: str | None) -> None:
    message = nothing_matched("pods", selector, "shop", replicas("web", 1))
    assert message.splitlines()[:2] == [
        "no pods found in namespace 'shop'",
        "pods in namespace 'shop' (1):",
    ]


def test_nothing_matched_says_when_the_selector_did_match_but_something_else_ruled_out() -> None:
    message = nothing_matched("pods", "app=web", "shop", replicas("web", 3))
    assert "3 of the pods below match the selector, so another condition ruled them out" in message
    assert "did you mean" not in message


def test_nothing_matched_tolerates_an_invalid_selector() -> None:
    message = nothing_matched("pods", "app=", "shop", replicas("web", 1))
    assert message.splitlines()[0] == "no pods match selector 'app=' in namespace 'shop'"
    assert "did you mean" not in message


# --- pod filter ----------------------------------------------------------------------------


PODS = [
    pod("web-1", {"app": "web", "tier": "front"}, node="node-1"),
    pod("web-2", {"app": "web", "tier": "back"}, node="node-2", phase="Pending"),
    pod("web-3", {"app": "web", "tier": "front"}, node="node-2", terminating=True),
    pod("db-1", {"app": "db", "tier": "db"}, node="node-1"),
    pod("bare-1", None, node="node-3", phase="Succeeded"),
]


@pytest.mark.parametrize(
    ("pod_filter", "names"),
    [
        (PodFilter(), ["web-1", "web-2", "db-1", "bare-1"]),
        (PodFilter(include_terminating=True), ["web-1", "web-2", "web-3", "db-1", "bare-1"]),
        (PodFilter(label_selector="app=web"), ["web-1", "web-2"]),
        (
            PodFilter(label_selector="app=web", include_terminating=True),
            ["web-1", "web-2", "web-3"],
        ),
        (PodFilter(label_selector="tier in (front, back)"), ["web-1", "web-2"]),
        (PodFilter(label_selector="!app"), ["bare-1"]),
        (PodFilter(label_selector="tier!=db"), ["web-1", "web-2", "bare-1"]),
        (PodFilter(node="node-1"), ["web-1", "db-1"]),
        (PodFilter(node="node-2", include_terminating=True), ["web-2", "web-3"]),
        (PodFilter(phase="Running"), ["web-1", "db-1"]),
        (PodFilter(phase="Pending"), ["web-2"]),
        (PodFilter(label_selector="app=web", node="node-2", phase="Pending"), ["web-2"]),
        (PodFilter(label_selector="app=api"), []),
    ],
)
def test_pod_filter_keeps_matching_pods_in_order(pod_filter: PodFilter, names: list[str]) -> None:
    assert [name_of(p) for p in pod_filter.apply(PODS)] == names


def test_pod_filter_accepts_one_pod() -> None:
    assert PodFilter(label_selector="app=web").accepts(PODS[0])
    assert not PodFilter(label_selector="app=web").accepts(PODS[3])


def test_pod_filter_tolerates_pods_with_missing_or_null_fields() -> None:
    sparse: list[dict[str, Any]] = [
        {},
        {"metadata": None, "spec": None, "status": None},
        {"metadata": {"name": "x", "deletionTimestamp": None}},
    ]
    assert len(PodFilter().apply(sparse)) == 3
    assert PodFilter(label_selector="app=web").apply(sparse) == []
    assert PodFilter(node="node-1").apply(sparse) == []
    assert PodFilter(phase="Running").apply(sparse) == []


def test_pod_filter_accepts_any_iterable() -> None:
    assert [name_of(p) for p in PodFilter(node="node-3").apply(iter(PODS))] == ["bare-1"]


def test_pod_filter_checks_its_selector_when_built() -> None:
    with pytest.raises(ChaosConfigError, match=r"^label_selector='app=' is not a valid label"):
        PodFilter(label_selector="app=")


def test_pod_filter_refuses_an_unknown_phase_with_a_suggestion() -> None:
    with pytest.raises(
        ChaosConfigError,
        match=r"^phase='running' is not a pod phase \(did you mean 'Running'\?\); choose one of "
        r"Pending, Running, Succeeded, Failed, Unknown$",
    ):
        PodFilter(phase="running")


def test_pod_filter_refuses_an_empty_node_name() -> None:
    with pytest.raises(ChaosConfigError, match=r"^node='' is not a node name; pass None"):
        PodFilter(node="")


def test_pod_filter_is_frozen_and_compares_by_its_fields() -> None:
    pod_filter = PodFilter(label_selector="app=web", phase="Running")
    assert pod_filter == PodFilter(label_selector="app=web", phase="Running")
    assert "_requirements" not in repr(pod_filter)
    with pytest.raises(dataclasses.FrozenInstanceError):
        pod_filter.node = "node-1"  # type: ignore[misc]


def test_pod_filter_chosen_with_a_seed_is_reproducible() -> None:
    pods = [pod(f"web-{i}", {"app": "web"}, node=f"node-{i % 3}") for i in range(30)]
    candidates = PodFilter(label_selector="app=web", node="node-1").apply(pods)
    first = choose(candidates, "fixed-percent", 50, random.Random(9), key=name_of)
    again = choose(list(reversed(candidates)), "fixed-percent", 50, random.Random(9), key=name_of)
    assert len(first) == 5
    assert first == again
