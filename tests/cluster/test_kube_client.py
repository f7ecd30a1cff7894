"""Building the ApiClient: explicit URL, kubeconfig, EKS; and the cold-start promise."""

from __future__ import annotations

import base64
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from moto import mock_aws

from bluegreen.adapters.kube.client import api_client_for, configuration_for
from bluegreen.adapters.kube.cluster import KubernetesCluster
from bluegreen.config import Settings
from bluegreen.domain.errors import ClusterUnavailable
from bluegreen.domain.models import Colour
from tests.backends import Backend
from tests.cluster.conftest import TIMEOUT, ScriptedApi, configmap

_PEM = b"-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUYmx1ZWdyZWVu\n-----END CERTIFICATE-----\n"
_CANARY_ENV = '{"selector":"green","image":"repo@sha256:' + "b" * 64 + '"}'


class FakeEks:
    """EKS credentials whose token changes on every call, as a renewed token would."""

    def __init__(self, url: str, ca: bytes = _PEM) -> None:
        self.url = url
        self.ca = ca
        self.tokens_issued = 0

    def endpoint(self) -> tuple[str, bytes]:
        return self.url, self.ca

    def token(self) -> str:
        self.tokens_issued += 1
        return f"k8s-aws-v1.token-{self.tokens_issued}"


def _cluster(
    settings: Settings, bearer_token: str | None = None, eks: FakeEks | None = None
) -> KubernetesCluster:
    client = api_client_for(settings, bearer_token=bearer_token, eks=eks)
    return KubernetesCluster(settings, client, timeout=TIMEOUT)


def test_explicit_url_without_token_sends_no_credentials(scripted_api: ScriptedApi) -> None:
    # GIVEN an API server at an explicit URL (the emulator's case)
    scripted_api.body = configmap(_CANARY_ENV)

    # WHEN the adapter reads canaryEnv through a client built from the URL alone
    env = _cluster(Settings(kube_api_url=scripted_api.url + "/")).canary_env()

    # THEN it got the answer, and sent no Authorization header
    assert env.selector is Colour.GREEN
    assert "authorization" not in scripted_api.headers[-1]


def test_explicit_url_with_bearer_token_sends_it(scripted_api: ScriptedApi) -> None:
    # GIVEN an API server at an explicit URL that wants a bearer token
    scripted_api.body = configmap(_CANARY_ENV)

    # WHEN the client is built with a token
    _cluster(Settings(kube_api_url=scripted_api.url), bearer_token="s3cret").canary_env()

    # THEN the request carried it
    assert scripted_api.headers[-1]["authorization"] == "Bearer s3cret"


def _kubeconfig(tmp_path: Path, live_url: str) -> Path:
    path = tmp_path / "kubeconfig"
    path.write_text(
        textwrap.dedent(
            f"""
            apiVersion: v1
            kind: Config
            current-context: dead
            clusters:
            - name: dead
              cluster: {{server: "http://127.0.0.1:9"}}
            - name: live
              cluster: {{server: "{live_url}"}}
            users:
            - name: someone
              user: {{token: kubeconfig-token}}
            contexts:
            - name: dead
              context: {{cluster: dead, user: someone, namespace: wp-platform}}
            - name: live
              context: {{cluster: live, user: someone, namespace: wp-platform}}
            """
        )
    )
    return path


def test_kubeconfig_context_is_used_with_its_credentials(
    tmp_path: Path, scripted_api: ScriptedApi
) -> None:
    # GIVEN a kubeconfig with two contexts, the named one reaching the API server
    scripted_api.body = configmap(_CANARY_ENV)
    settings = Settings(
        kubeconfig=str(_kubeconfig(tmp_path, scripted_api.url)), kube_context="live"
    )

    # WHEN the adapter reads through a client built from it
    env = _cluster(settings).canary_env()

    # THEN the named context's server answered, with the kubeconfig user's token
    assert env.selector is Colour.GREEN
    assert scripted_api.headers[-1]["authorization"] == "Bearer kubeconfig-token"


def test_kubeconfig_without_context_uses_its_current_context(
    tmp_path: Path, scripted_api: ScriptedApi
) -> None:
    # GIVEN a kubeconfig whose current context points at a port nothing listens on
    settings = Settings(kubeconfig=str(_kubeconfig(tmp_path, scripted_api.url)))

    # WHEN the adapter reads through it
    # THEN it tried the current context's server, and says it could not reach it
    with pytest.raises(ClusterUnavailable, match=r"could not reach .*127\.0\.0\.1:9"):
        _cluster(settings).canary_env()
    assert scripted_api.headers == []


def test_eks_endpoint_ca_and_token_are_wired_into_the_configuration(tmp_path: Path) -> None:
    # GIVEN EKS credentials (endpoint, CA as base64 as DescribeCluster gives it, tokens)
    eks = FakeEks("https://ABCD.gr7.us-west-2.eks.amazonaws.com/", base64.b64encode(_PEM))

    # WHEN the client configuration is built for a stack without URL or kubeconfig
    configuration = configuration_for(Settings(cluster_name="wp-platform"), eks=eks)

    # THEN the host and the CA file are the cluster's, and the token is asked for per request
    assert configuration.host == "https://ABCD.gr7.us-west-2.eks.amazonaws.com"
    assert Path(configuration.ssl_ca_cert).read_bytes() == _PEM
    first = configuration.get_api_key_with_prefix("BearerToken")
    second = configuration.get_api_key_with_prefix("BearerToken")
    assert first.startswith("Bearer k8s-aws-v1.")
    assert first != second


def test_a_long_lived_client_sends_the_renewed_eks_token(scripted_api: ScriptedApi) -> None:
    # GIVEN an adapter on EKS credentials whose token is renewed between requests
    scripted_api.body = configmap(_CANARY_ENV)
    eks = FakeEks(scripted_api.url)
    cluster = _cluster(Settings(), eks=eks)

    # WHEN it makes two requests
    cluster.canary_env()
    cluster.canary_env()

    # THEN each carried the token current at that moment
    sent = [h["authorization"] for h in scripted_api.headers]
    assert sent[0] != sent[1]
    assert all(s.startswith("Bearer k8s-aws-v1.token-") for s in sent)


def test_default_eks_path_asks_eks_for_the_named_cluster() -> None:
    # GIVEN no URL and no kubeconfig, and no such EKS cluster in the account (moto)
    # WHEN a client configuration is built
    # THEN EKS was asked about the configured cluster, and its absence is named
    with mock_aws(), pytest.raises(ClusterUnavailable, match="no-such-cluster"):
        configuration_for(Settings(cluster_name="no-such-cluster"))


def test_importing_the_adapter_does_not_import_the_kubernetes_client() -> None:
    # GIVEN a fresh interpreter
    code = (
        "import sys\n"
        "from bluegreen.adapters.kube.cluster import KubernetesCluster\n"
        "from bluegreen.config import Settings\n"
        "KubernetesCluster.from_settings(Settings(kube_api_url='http://127.0.0.1:9'))\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'kubernetes'))\n"
    )

    # WHEN the adapter is imported and constructed (no request made)
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": "layers/bluegreen"},
        cwd=Path(__file__).resolve().parents[2],
    )

    # THEN the Kubernetes client was not imported: a cold start only pays for it on use
    assert result.stdout.strip() == "[]"


def test_from_settings_builds_the_client_on_the_first_request(
    settings: Settings, backend: Backend
) -> None:
    # GIVEN an adapter made from the settings alone (what the functions do)
    cluster = KubernetesCluster.from_settings(settings, timeout=TIMEOUT)

    # WHEN it is first used
    env = cluster.canary_env()

    # THEN it reached the configured API server
    assert env.selector is Colour.BLUE
    assert cluster.api_client.configuration.host == backend.url
