"""The application's ECR repository, as the API asks it: does this digest exist?"""

from __future__ import annotations

from typing import Any

from bluegreen.domain.models import Digest


class EcrRepository:
    """``services.ImageRegistry`` over a boto3 ``ecr`` client."""

    def __init__(self, repository: str, client: Any, registry_id: str = "") -> None:
        self._repository = repository
        self._client = client
        self._registry_id = registry_id

    def has_digest(self, digest: Digest) -> bool:
        """True when ``ecr:DescribeImages`` finds the digest in the repository."""
        request: dict[str, Any] = {
            "repositoryName": self._repository,
            "imageIds": [{"imageDigest": str(digest)}],
        }
        if self._registry_id:
            request["registryId"] = self._registry_id
        try:
            response = self._client.describe_images(**request)
        except self._client.exceptions.ImageNotFoundException:
            return False
        return bool(response.get("imageDetails"))
