"""EKS access offline: DescribeCluster on moto, the STS-presigned token signed locally."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest

from bluegreen.adapters.eks_auth import EksAccess, forget_endpoints
from bluegreen.domain.errors import ClusterUnavailable
from tests.foundation.conftest import REGION, Clock

PEM = b"-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUTESTONLY\n-----END CERTIFICATE-----\n"


@pytest.fixture(autouse=True)
def _fresh_endpoint_cache() -> Iterator[None]:
    forget_endpoints()
    yield
    forget_endpoints()


@pytest.fixture
def session(aws: None) -> boto3.session.Session:
    return boto3.session.Session(region_name=REGION)


def make_cluster(session: boto3.session.Session, name: str) -> None:
    iam = session.client("iam")
    role = iam.create_role(RoleName=f"{name}-role", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    session.client("eks").create_cluster(
        name=name,
        roleArn=role,
        resourcesVpcConfig={"subnetIds": ["subnet-1"]},
    )


def decode(token: str) -> str:
    assert token.startswith("k8s-aws-v1.")
    body = token.removeprefix("k8s-aws-v1.")
    return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode()


def test_the_token_is_a_presigned_get_caller_identity_bound_to_the_cluster(
    session: boto3.session.Session,
) -> None:
    # GIVEN access to cluster "wp-platform"
    access = EksAccess("wp-platform", session)
    # WHEN a token is made (offline: signing needs no network)
    token = access.token()
    # THEN it is the base64url of an STS GetCallerIdentity URL, without padding,
    # valid 60 s, whose signature covers the cluster header
    assert "=" not in token.removeprefix("k8s-aws-v1.")
    url = urlsplit(decode(token))
    query = parse_qs(url.query)
    assert url.scheme == "https"
    assert url.hostname is not None
    assert url.hostname.startswith("sts.")
    assert query["Action"] == ["GetCallerIdentity"]
    assert query["X-Amz-Expires"] == ["60"]
    assert "x-k8s-aws-id" in query["X-Amz-SignedHeaders"][0].split(";")
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]


def test_the_token_is_reused_then_refreshed_a_minute_before_it_expires(
    session: boto3.session.Session,
) -> None:
    # GIVEN a clock the test moves, and an STS client whose signing is counted
    clock = Clock(datetime(2026, 11, 16, 1, 0, tzinfo=UTC))
    sts = session.client("sts")
    signed: list[int] = []
    sts.meta.events.register(
        "before-sign.sts.GetCallerIdentity", lambda **_: signed.append(1), unique_id="count"
    )
    access = EksAccess("wp-platform", eks=session.client("eks"), sts=sts, clock=clock)
    first = access.token()
    # WHEN 13 minutes pass THEN the same token is served, not signed again
    clock.advance(13 * 60)
    assert access.token() == first
    assert len(signed) == 1
    # WHEN 14 minutes have passed (one before the 15-minute limit) THEN it is signed afresh
    clock.advance(60)
    access.token()
    assert len(signed) == 2
    assert access.token_expires_at == datetime(2026, 11, 16, 1, 29, tzinfo=UTC)


def test_tokens_of_two_clusters_name_their_own_cluster(session: boto3.session.Session) -> None:
    blue_team = EksAccess("cluster-a", session).token()
    green_team = EksAccess("cluster-b", session).token()
    assert blue_team != green_team


def test_the_endpoint_of_a_real_shaped_cluster_is_read_once(
    session: boto3.session.Session,
) -> None:
    # GIVEN an EKS client that answers like EKS does and counts calls
    calls: list[str] = []
    real_eks = session.client("eks")

    class CountingEks:
        meta = real_eks.meta

        def describe_cluster(self, name: str) -> dict[str, Any]:
            calls.append(name)
            return {
                "cluster": {
                    "name": name,
                    "status": "ACTIVE",
                    "endpoint": "https://ABCDEF.gr7.us-west-2.eks.amazonaws.com",
                    "certificateAuthority": {"data": base64.b64encode(PEM).decode()},
                }
            }

    sts = session.client("sts")
    # WHEN two accesses in the process ask for the endpoint
    first = EksAccess("wp-platform", eks=CountingEks(), sts=sts).endpoint()
    second = EksAccess("wp-platform", eks=CountingEks(), sts=sts).endpoint()
    # THEN DescribeCluster ran once and the CA is the decoded PEM
    assert first == ("https://ABCDEF.gr7.us-west-2.eks.amazonaws.com", PEM)
    assert second == first
    assert calls == ["wp-platform"]


def test_a_ca_file_holds_the_certificate(session: boto3.session.Session) -> None:
    class Eks:
        meta = session.client("eks").meta

        def describe_cluster(self, name: str) -> dict[str, Any]:
            return {
                "cluster": {
                    "status": "ACTIVE",
                    "endpoint": "https://x.eks.amazonaws.com",
                    "certificateAuthority": {"data": base64.b64encode(PEM).decode()},
                }
            }

    access = EksAccess("wp-platform", eks=Eks(), sts=session.client("sts"))
    with open(access.ca_file(), "rb") as handle:
        assert handle.read() == PEM


def test_moto_clusters_report_a_non_pem_ca_which_is_a_clear_error(
    session: boto3.session.Session,
) -> None:
    # GIVEN a cluster on moto (whose CA data is random text, not a certificate)
    make_cluster(session, "wp-platform")
    # WHEN the endpoint is read THEN the error names the cluster and the problem
    with pytest.raises(ClusterUnavailable, match="not a base64 PEM certificate"):
        EksAccess("wp-platform", session).endpoint()


def test_a_missing_cluster_is_a_clear_error(session: boto3.session.Session) -> None:
    with pytest.raises(ClusterUnavailable, match="'nowhere' does not exist"):
        EksAccess("nowhere", session).endpoint()


def test_an_empty_cluster_name_is_refused(session: boto3.session.Session) -> None:
    with pytest.raises(ClusterUnavailable, match="BG_CLUSTER_NAME"):
        EksAccess("", session)
