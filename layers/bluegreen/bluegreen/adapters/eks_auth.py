"""Access to an Amazon EKS cluster's API: endpoint, CA certificate and bearer token.

- ``endpoint()``: the API server URL and CA certificate (PEM bytes) from
  ``eks:DescribeCluster``; cached for the life of the process, since neither
  changes while the cluster exists.
- ``token()``: the bearer token ``aws eks get-token`` prints:
  ``k8s-aws-v1.`` + base64url(an STS ``GetCallerIdentity`` URL presigned with
  the header ``x-k8s-aws-id: <cluster>``). The cluster's authenticator accepts
  such a token for 15 minutes after signing; it is reused and signed afresh a
  minute before that. Signing is local (no call to STS), so this works offline.

The Kubernetes client is configured from these by ``bluegreen.adapters.kube.client``
(``host``, ``ssl_ca_cert`` from ``ca_file()``, ``api_key`` refreshed with
``refresh_api_key_hook``). This module never imports the Kubernetes client.
"""

from __future__ import annotations

import base64
import binascii
import os
import tempfile
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from bluegreen.domain.errors import ClusterUnavailable

TOKEN_PREFIX = "k8s-aws-v1."  # noqa: S105 - a format marker, not a secret
CLUSTER_ID_HEADER = "x-k8s-aws-id"
PRESIGN_EXPIRES_SECONDS = 60
TOKEN_LIFETIME = timedelta(minutes=15)
REFRESH_MARGIN = timedelta(minutes=1)

_PEM_MARKER = b"-----BEGIN CERTIFICATE-----"

_endpoints: dict[tuple[str, str], tuple[str, bytes]] = {}
_endpoints_lock = threading.Lock()


def _utc_now() -> datetime:
    return datetime.now(UTC)


class EksAccess:
    """Endpoint, CA and bearer token for one EKS cluster.

    ``session`` is a boto3 ``Session`` (its ``client("eks")`` and
    ``client("sts")`` are used), or pass ready clients as ``eks=`` and ``sts=``.
    The STS client must serve this cluster only: the cluster header is added by
    a signing hook registered on it. ``clock`` is injectable so tests can move time.
    """

    def __init__(
        self,
        cluster_name: str,
        session: Any = None,
        *,
        eks: Any = None,
        sts: Any = None,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        if not cluster_name:
            raise ClusterUnavailable("no EKS cluster name configured (BG_CLUSTER_NAME)")
        if session is None and (eks is None or sts is None):
            raise TypeError("EksAccess needs a boto3 session or both eks= and sts= clients")
        self.cluster_name = cluster_name
        self._eks = eks if eks is not None else session.client("eks")
        self._sts = sts if sts is not None else session.client("sts")
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._token_expires = datetime.min.replace(tzinfo=UTC)
        self._ca_path: str | None = None
        self._sts.meta.events.register(
            "before-sign.sts.GetCallerIdentity",
            self._add_cluster_header,
            unique_id=f"bluegreen-eks-cluster-id-{id(self)}",
        )

    # endpoint ----------------------------------------------------------------
    def endpoint(self) -> tuple[str, bytes]:
        """The API server URL and its CA certificate (PEM), from ``eks:DescribeCluster``.

        Raises ``ClusterUnavailable`` (saying why) when the cluster does not
        exist, is not active, or reports a CA that is not a PEM certificate.
        """
        key = (self._eks.meta.region_name or "", self.cluster_name)
        with _endpoints_lock:
            cached = _endpoints.get(key)
        if cached is not None:
            return cached
        found = self._describe()
        with _endpoints_lock:
            _endpoints[key] = found
        return found

    def _describe(self) -> tuple[str, bytes]:
        try:
            cluster = self._eks.describe_cluster(name=self.cluster_name)["cluster"]
        except Exception as exc:
            code = _error_code(exc)
            if code == "ResourceNotFoundException":
                raise ClusterUnavailable(
                    f"EKS cluster {self.cluster_name!r} does not exist in "
                    f"{self._eks.meta.region_name}"
                ) from None
            raise ClusterUnavailable(
                f"cannot describe EKS cluster {self.cluster_name!r}: {code or exc}"
            ) from exc
        status = cluster.get("status", "ACTIVE")
        url = cluster.get("endpoint") or ""
        if status != "ACTIVE" or not url:
            raise ClusterUnavailable(
                f"EKS cluster {self.cluster_name!r} is {status} and has "
                f"{'no' if not url else 'an'} API endpoint; try again when it is ACTIVE"
            )
        return url, _pem(self.cluster_name, cluster.get("certificateAuthority", {}).get("data"))

    def ca_file(self) -> str:
        """Path of a file holding the CA certificate (the Kubernetes client wants a path)."""
        if self._ca_path is None:
            _, ca = self.endpoint()
            handle, path = tempfile.mkstemp(prefix="eks-ca-", suffix=".pem")
            with os.fdopen(handle, "wb") as out:
                out.write(ca)
            self._ca_path = path
        return self._ca_path

    # token -----------------------------------------------------------------------
    def token(self) -> str:
        """A current ``k8s-aws-v1.`` bearer token, signed afresh a minute before expiry."""
        with self._lock:
            now = self._clock()
            if self._token is None or now >= self._token_expires - REFRESH_MARGIN:
                self._token = self._sign()
                self._token_expires = now + TOKEN_LIFETIME
            return self._token

    @property
    def token_expires_at(self) -> datetime:
        """When the current token stops being accepted (the minimum before the first token)."""
        return self._token_expires

    def _sign(self) -> str:
        url = self._sts.generate_presigned_url(
            "get_caller_identity",
            Params={},
            ExpiresIn=PRESIGN_EXPIRES_SECONDS,
            HttpMethod="GET",
        )
        encoded = base64.urlsafe_b64encode(url.encode("utf-8")).decode("ascii").rstrip("=")
        return TOKEN_PREFIX + encoded

    def _add_cluster_header(self, request: Any, **_: Any) -> None:
        # The header is signed into the URL, which binds the token to this cluster.
        request.headers[CLUSTER_ID_HEADER] = self.cluster_name


def forget_endpoints() -> None:
    """Drop the process-wide endpoint cache (tests; a cluster recreated under the same name)."""
    with _endpoints_lock:
        _endpoints.clear()


def _pem(cluster_name: str, data: object) -> bytes:
    """The CA certificate bytes from DescribeCluster's base64 ``certificateAuthority.data``."""
    if not isinstance(data, str) or not data:
        raise ClusterUnavailable(f"EKS cluster {cluster_name!r} reports no CA certificate")
    try:
        decoded = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        decoded = b""
    if _PEM_MARKER not in decoded:
        raise ClusterUnavailable(
            f"EKS cluster {cluster_name!r} reports a CA certificate that is not a base64 PEM "
            "certificate; cannot verify its API server"
        )
    return decoded


def _error_code(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""
