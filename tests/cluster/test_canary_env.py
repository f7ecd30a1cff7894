"""canaryEnv: read (present, missing, malformed) and the image write, on the emulator."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from bluegreen.adapters.kube.cluster import KubernetesCluster
from bluegreen.domain.canary_env import CanaryEnvMalformed
from bluegreen.domain.errors import ClusterObjectMissing
from bluegreen.domain.models import Colour, Role
from tests.backends import Backend
from tests.cluster.conftest import RequestLog

SEED_IMAGE = (
    "123456789012.dkr.ecr.us-west-2.amazonaws.com/rezfusion-cloud@sha256:"
    "1274e8bc4d963536e88265781170e72a2939caae25127cd9d400ab124393f946"
)
NEW_IMAGE = "123456789012.dkr.ecr.us-west-2.amazonaws.com/rezfusion-cloud@sha256:" + "c" * 64


def set_canary_env(backend: Backend, raw: str | None) -> None:
    """Change the ConfigMap's canaryEnv behind the adapter's back (None removes the key)."""

    def change(configmap: dict[str, Any]) -> None:
        data = configmap.setdefault("data", {})
        if raw is None:
            data.pop("canaryEnv", None)
        else:
            data["canaryEnv"] = raw

    backend.mutate("configmaps", "canary-env", change)


def stored_canary_env(backend: Backend) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(
        backend.stored("configmaps", "canary-env")["data"]["canaryEnv"]
    )
    return value


def test_present_canary_env_is_read_with_its_resource_version(
    cluster: KubernetesCluster, backend: Backend
) -> None:
    # GIVEN the default seed (blue is the canary)
    # WHEN canaryEnv is read
    env = cluster.canary_env()

    # THEN it says what the ConfigMap says, at the ConfigMap's resourceVersion
    configmap = backend.stored("configmaps", "canary-env")
    assert env.selector is Colour.BLUE
    assert env.image == SEED_IMAGE
    assert env.present
    assert env.resource_version == configmap["metadata"]["resourceVersion"]


def test_missing_key_means_the_initial_canary(cluster: KubernetesCluster, backend: Backend) -> None:
    # GIVEN a ConfigMap without the canaryEnv key (a namespace set up before any switch)
    set_canary_env(backend, None)

    # WHEN canaryEnv is read
    env = cluster.canary_env()

    # THEN blue is the canary, as in the original system, and the absence is visible
    assert env.selector is Colour.BLUE
    assert not env.present
    assert env.image == ""


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ('{"selector": "blue", ', "not valid JSON"),
        ('["blue"]', "must be a JSON object"),
        ('{"selector": "purple", "image": "x"}', "'purple'"),
        ('{"image": "x"}', "selector None"),
        ('{"selector": ["blue"], "image": "x"}', "selector ['blue']"),
        ('{"selector": "green", "image": 7}', "image 7"),
    ],
)
def test_malformed_canary_env_is_a_named_error_that_says_what_is_wrong(
    cluster: KubernetesCluster,
    backend: Backend,
    request_log: Callable[[], RequestLog],
    raw: str,
    problem: str,
) -> None:
    # GIVEN a canaryEnv somebody broke by hand
    set_canary_env(backend, raw)
    log = request_log()

    # WHEN it is read, or an image is set over it
    with pytest.raises(CanaryEnvMalformed) as read_error:
        cluster.canary_env()
    with pytest.raises(CanaryEnvMalformed):
        cluster.set_canary_image(NEW_IMAGE)

    # THEN the error names the ConfigMap, the key, the problem and the repair;
    # nothing was written
    message = str(read_error.value)
    assert 'ConfigMap "canary-env"' in message
    assert "'canaryEnv'" in message
    assert problem in message
    assert "bluegreen switch <colour>" in message
    assert log.writes() == []
    assert backend.stored("configmaps", "canary-env")["data"]["canaryEnv"] == raw


@pytest.mark.parametrize(
    "raw",
    [
        '{"selector": "blue", ',
        '["blue"]',
        '{"selector": "purple", "image": "x"}',
        '{"selector": "green", "image": 7}',
        "[" * 100_000,
    ],
)
@pytest.mark.parametrize("canary", list(Colour))
def test_a_switch_repairs_a_malformed_canary_env_with_the_new_canarys_image(
    cluster: KubernetesCluster,
    backend: Backend,
    request_log: Callable[[], RequestLog],
    raw: str,
    canary: Colour,
) -> None:
    # GIVEN a canaryEnv somebody broke by hand, in a namespace switched before
    cluster.switch_roles(Colour.GREEN)
    set_canary_env(backend, raw)
    image = cluster.deployment_image(canary)
    log = request_log()

    # WHEN the canary colour is switched
    changed = cluster.switch_roles(canary)
    requests = [method for method, _ in log.all()]

    # THEN canaryEnv holds the new roles and the image that colour's Deployment runs,
    # the Services follow, in the requests of any switch (three reads, three writes, then
    # the three reads of the data plane's report)
    assert changed
    assert stored_canary_env(backend)["selector"] == canary.value
    assert stored_canary_env(backend)["image"] == image
    env = cluster.canary_env()
    assert env.selector is canary
    assert cluster.service_selectors() == {Role.CANARY: canary, Role.PRODUCTION: canary.other}
    assert requests == ["GET", "GET", "GET", "PATCH", "PUT", "PATCH", "GET", "GET", "GET"]


def test_a_switch_with_an_image_repairs_a_malformed_canary_env_without_reading_more(
    cluster: KubernetesCluster, backend: Backend, request_log: Callable[[], RequestLog]
) -> None:
    # GIVEN a canaryEnv that is not JSON, in a namespace switched before
    cluster.switch_roles(Colour.GREEN)
    set_canary_env(backend, "not json")
    log = request_log()

    # WHEN a switch names the image itself
    cluster.switch_roles(Colour.BLUE, NEW_IMAGE)

    # THEN that image is written, without reading the Deployment: two reads, three writes
    # (then the data plane's report)
    assert [method for method, _ in log.all()][:5] == ["GET", "GET", "PATCH", "PUT", "PATCH"]
    assert stored_canary_env(backend) == {"selector": "blue", "image": NEW_IMAGE}


def test_missing_configmap_is_named(cluster: KubernetesCluster, backend: Backend) -> None:
    # GIVEN the ConfigMap was deleted
    backend.delete("configmaps", "canary-env")

    # WHEN canaryEnv is read
    # THEN the error names the object that is missing
    with pytest.raises(
        ClusterObjectMissing, match=f'ConfigMap "canary-env" in namespace "{backend.namespace}"'
    ):
        cluster.canary_env()


def test_set_canary_image_replaces_only_the_image(
    cluster: KubernetesCluster, backend: Backend
) -> None:
    # GIVEN blue is the canary, running the seed image
    # WHEN the canary's image is recorded as a new one
    changed = cluster.set_canary_image(NEW_IMAGE)

    # THEN the ConfigMap says the new image, still with blue as the canary
    assert changed
    assert stored_canary_env(backend) == {"selector": "blue", "image": NEW_IMAGE}


def test_set_canary_image_already_so_writes_nothing(
    cluster: KubernetesCluster, request_log: Callable[[], RequestLog]
) -> None:
    # GIVEN canaryEnv already names the image
    log = request_log()

    # WHEN the same image is set
    changed = cluster.set_canary_image(SEED_IMAGE)

    # THEN nothing changed and nothing was written
    assert not changed
    assert log.writes() == []


def test_set_canary_image_creates_a_missing_key_with_the_initial_canary(
    cluster: KubernetesCluster, backend: Backend
) -> None:
    # GIVEN a ConfigMap without canaryEnv
    set_canary_env(backend, None)

    # WHEN an image is set
    cluster.set_canary_image(NEW_IMAGE)

    # THEN the key exists, with blue (the initial canary) and the image
    assert stored_canary_env(backend) == {"selector": "blue", "image": NEW_IMAGE}
    assert cluster.canary_env().present


def test_set_canary_image_keeps_keys_it_does_not_own(
    cluster: KubernetesCluster, backend: Backend
) -> None:
    # GIVEN a canaryEnv carrying an extra key some other tool reads
    set_canary_env(backend, '{"selector":"green","image":"old","note":"keep me"}')

    # WHEN the image is set
    cluster.set_canary_image(NEW_IMAGE)

    # THEN the extra key survived
    assert stored_canary_env(backend) == {
        "selector": "green",
        "image": NEW_IMAGE,
        "note": "keep me",
    }
