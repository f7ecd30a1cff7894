"""The application's ECR repository: which digests it holds and where its tags point.

One adapter for every function that asks ECR: the services API checks that a
digest exists before it starts a deploy, ``ecr_push`` asks where a pushed tag
points before recording it. ``registry_account`` is the one rule for the account
of a registry host, which ``ecr_push`` also checks an event's account against.
Nothing here imports boto3: the caller hands in its ``ecr`` client.
"""

from __future__ import annotations

from typing import Any

from bluegreen.domain.errors import InvalidInput, TagUnreadable
from bluegreen.domain.models import Digest


def registry_account(registry: str) -> str:
    """The AWS account of an ECR registry host (``<account>.dkr.ecr.<region>.amazonaws.com``).

    Empty when ``registry`` is not an ECR host: then no account is known.
    """
    account, _, rest = registry.partition(".")
    is_ecr = rest.startswith("dkr.ecr.") and account.isdigit() and len(account) == 12
    return account if is_ecr else ""


class EcrRegistry:
    """``ports.ImageRegistry`` over a boto3 ``ecr`` client, on one repository.

    ``registry`` is the registry's host name; its account is passed as
    ``registryId`` when it is one (``registry_account``), so a repository of
    another account is asked for where it is.
    """

    def __init__(self, repository: str, client: Any, registry: str = "") -> None:
        self._client = client
        self._request: dict[str, Any] = {"repositoryName": repository}
        account = registry_account(registry)
        if account:
            self._request["registryId"] = account

    def has_digest(self, digest: Digest) -> bool:
        """True when ``ecr:DescribeImages`` finds the digest in the repository."""
        try:
            response = self._client.describe_images(
                **self._request, imageIds=[{"imageDigest": str(digest)}]
            )
        except self._client.exceptions.ImageNotFoundException:
            return False
        return bool(response.get("imageDetails"))

    def tag_points_at(self, tag: str) -> Digest | None:
        """The digest ``tag`` points at now, by ``ecr:DescribeImages``.

        A missing tag or repository is "no such tag" (None); any other failure
        is ``TagUnreadable``, so that the caller can go on without the answer.
        """
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            response = self._client.describe_images(**self._request, imageIds=[{"imageTag": tag}])
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in {"ImageNotFoundException", "RepositoryNotFoundException"}:
                return None
            raise TagUnreadable(f"ecr:DescribeImages failed: {code or exc}") from exc
        except BotoCoreError as exc:  # no answer at all: endpoint, timeout, credentials
            raise TagUnreadable(f"ecr:DescribeImages failed: {exc}") from exc
        details = response.get("imageDetails") or []
        if not details:
            return None
        try:
            return Digest.parse(details[0].get("imageDigest"), field_name="imageDigest")
        except InvalidInput as exc:
            raise TagUnreadable(f"ecr:DescribeImages answered {exc}") from exc
