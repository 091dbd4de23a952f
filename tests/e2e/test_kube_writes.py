"""Kube.create and Kube.delete: the idempotent writes every fault and revert goes through.

Against the embedded cluster's real API server: a second create meets a 409, a delete with the
wrong uid meets a failed precondition (409), a delete of nothing meets a 404.
"""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from pytest_chaos import Kube


def config_map(name: str, tag: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": {"chaos.pytest.dev/fault": tag}},
        "data": {"k": "v"},
    }


def uid_of(kube: Kube, name: str, namespace: str) -> str | None:
    found = kube.read(kube.core.read_namespaced_config_map, name, namespace)
    return None if found is None else str(found["metadata"]["uid"])


def test_create_says_whether_it_created(kube: Kube, chaos_namespace: str) -> None:
    create = kube.core.create_namespaced_config_map

    assert kube.create(create, chaos_namespace, config_map("settings", "a")) is True
    assert kube.create(create, chaos_namespace, config_map("settings", "a")) is False


def test_create_with_ours_raises_when_the_existing_object_is_someone_elses(
    kube: Kube, chaos_namespace: str
) -> None:
    create = kube.core.create_namespaced_config_map
    kube.create(create, chaos_namespace, config_map("settings", "theirs"))

    again = kube.create(create, chaos_namespace, config_map("settings", "x"), ours=lambda: True)
    assert again is False
    with pytest.raises(ApiException) as conflict:
        kube.create(create, chaos_namespace, config_map("settings", "x"), ours=lambda: False)
    assert conflict.value.status == 409


def test_delete_with_a_uid_never_deletes_a_replacement(kube: Kube, chaos_namespace: str) -> None:
    create, delete = kube.core.create_namespaced_config_map, kube.core.delete_namespaced_config_map
    kube.create(create, chaos_namespace, config_map("settings", "first"))
    first = uid_of(kube, "settings", chaos_namespace)
    assert kube.delete(delete, "settings", chaos_namespace, uid=first) is True
    kube.create(create, chaos_namespace, config_map("settings", "second"))
    second = uid_of(kube, "settings", chaos_namespace)

    assert kube.delete(delete, "settings", chaos_namespace, uid=first) is False
    assert uid_of(kube, "settings", chaos_namespace) == second
    assert kube.delete(delete, "settings", chaos_namespace) is True
    assert kube.delete(delete, "settings", chaos_namespace) is False  # 404: nothing there
