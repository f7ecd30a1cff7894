"""How a process reaches the Kubernetes API: one ``ApiClient`` built from the settings.

Three ways, in this order of precedence:

1. ``Settings.kube_api_url``: an explicit URL (the local cluster emulator, a
   ``kubectl proxy``), no authentication unless a bearer token is handed in;
2. ``Settings.kubeconfig`` (+ ``kube_context``): any cluster a kubeconfig reaches,
   with the kubeconfig's own authentication (exec plugins such as
   ``aws eks get-token`` included, refreshed by the client itself);
3. otherwise EKS: endpoint and CA from ``eks:DescribeCluster`` and a
   ``k8s-aws-v1.`` bearer token from STS (``bluegreen.adapters.eks_auth``), wired through
   ``Configuration.refresh_api_key_hook`` so that a warm, long-lived Lambda asks
   for the token on every request and the token source renews it before expiry.

The ``kubernetes`` package is imported inside these functions, never at module
level: ``import kubernetes.client`` loads every generated model (about a second),
which a cold start must only pay when a request really needs the cluster.
"""

from __future__ import annotations

import base64
import hashlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bluegreen.config import Settings
from bluegreen.domain.ports import EksCredentials

if TYPE_CHECKING:
    from kubernetes.client import ApiClient, Configuration

_TOKEN_KEY = "BearerToken"  # noqa: S105 - the name of a header slot, not a secret
"""The ``api_key`` entry the generated client (v36+) sends as ``Authorization``."""


def api_client_for(
    settings: Settings,
    *,
    bearer_token: str | None = None,
    eks: EksCredentials | None = None,
) -> ApiClient:
    """An ``ApiClient`` for the settings' cluster (URL, kubeconfig or EKS; see the module)."""
    from kubernetes.client import ApiClient

    return ApiClient(configuration=configuration_for(settings, bearer_token=bearer_token, eks=eks))


def configuration_for(
    settings: Settings,
    *,
    bearer_token: str | None = None,
    eks: EksCredentials | None = None,
) -> Configuration:
    """The client ``Configuration`` behind ``api_client_for``."""
    from kubernetes.client import Configuration

    configuration = Configuration()
    if settings.kube_api_url:
        configuration.host = settings.kube_api_url.rstrip("/")
        if bearer_token:
            token = bearer_token
            _use_bearer_token(configuration, lambda: token)
    elif settings.kubeconfig:
        from kubernetes.config import kube_config

        kube_config.load_kube_config(
            config_file=settings.kubeconfig,
            context=settings.kube_context or None,
            client_configuration=configuration,
            persist_config=False,
        )
    else:
        access = eks if eks is not None else _eks_access(settings)
        url, ca = access.endpoint()
        configuration.host = url.rstrip("/")
        configuration.ssl_ca_cert = _ca_file(ca)
        _use_bearer_token(configuration, access.token)
    configuration.retries = _connect_retries_only()
    return configuration


def _eks_access(settings: Settings) -> EksCredentials:
    # Imported here: the EKS path alone needs boto3's STS and EKS clients.
    import boto3

    from bluegreen.adapters.eks_auth import EksAccess

    access: EksCredentials = EksAccess(
        settings.cluster_name, boto3.session.Session(region_name=settings.region)
    )
    return access


def _use_bearer_token(configuration: Any, token: Callable[[], str]) -> None:
    """Send ``Authorization: Bearer <token()>``, asking ``token`` again on every request.

    The client calls the hook before it reads ``api_key`` for each request; the
    token source caches and renews, so the call is cheap and never stale.
    """
    configuration.api_key[_TOKEN_KEY] = token()
    configuration.api_key_prefix[_TOKEN_KEY] = "Bearer"

    def refresh(current: Any) -> None:
        current.api_key[_TOKEN_KEY] = token()

    configuration.refresh_api_key_hook = refresh


def _ca_file(ca: bytes) -> str:
    """Write the cluster CA where the client can read it (it only takes a file path).

    The name is the certificate's hash, so warm invocations and concurrent
    processes reuse one file instead of filling the Lambda's ``/tmp``.
    """
    pem = ca if ca.lstrip().startswith(b"-----BEGIN") else base64.b64decode(ca)
    path = Path(tempfile.gettempdir()) / f"eks-ca-{hashlib.sha256(pem).hexdigest()[:16]}.crt"
    if not path.exists():
        partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
        partial.write_bytes(pem)
        partial.replace(path)
    return str(path)


def _connect_retries_only() -> Any:
    """urllib3 retry policy: retry a failed connect once, never a request that was sent.

    urllib3's default (three retries of anything) would turn one hung API server
    into four read timeouts in a row, and could repeat a write the server had
    already applied. A 429 or 503 with ``Retry-After`` is handed back as it is,
    so the caller sees the server's own Status rather than urllib3's summary.
    """
    from urllib3.util.retry import Retry

    return Retry(
        total=1,
        connect=1,
        read=0,
        redirect=0,
        status=0,
        other=0,
        respect_retry_after_header=False,
    )
