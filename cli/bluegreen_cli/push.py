"""``bluegreen push``: a simulated ECR push into the running local stack.

What a ``docker push`` to ECR followed by EventBridge would do: the image lands
in (moto's) ECR with a real-looking digest, the sha256 of its manifest; with
``--broken`` the local cluster (emulator or kubelet) is told how that image fails; then
the "ECR Image Action" event the stack's rule matches is delivered to
``ecr_push`` through the stack's local-only ``POST /_local/events`` path, signed
like every other call to the stack's API (a delivered push deploys itself).
"""

from __future__ import annotations

import hashlib
import json
import secrets
import uuid
from datetime import UTC, datetime
from typing import Any

from bluegreen_cli.api import ApiClient
from bluegreen_cli.errors import EXIT_UNAVAILABLE, CliError
from bluegreen_cli.local_stack import LocalStackInfo

MANIFEST_MEDIA_TYPE = "application/vnd.docker.distribution.manifest.v2+json"
FAULT_MODES = (
    "CrashLoopBackOff",
    "OOMKilled",
    "ImagePullBackOff",
    "InvalidImageName",
    "CreateContainerConfigError",
    "SlowStart",
)
"""How a pushed image misbehaves with ``--broken``: the modes the local cluster knows
(``local.cluster.containers.IMAGE_MODES``; a test keeps the two lists equal)."""


def image_manifest(tag: str, nonce: str) -> str:
    """A Docker v2 manifest whose layer digests differ per push, as a new build's would."""

    def blob(kind: str, size: int) -> dict[str, object]:
        digest = hashlib.sha256(f"{kind}:{tag}:{nonce}".encode()).hexdigest()
        return {"mediaType": kind, "size": size, "digest": f"sha256:{digest}"}

    manifest = {
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "config": blob("application/vnd.docker.container.image.v1+json", 7023),
        "layers": [
            blob("application/vnd.docker.image.rootfs.diff.tar.gzip", 32654),
            blob("application/vnd.docker.image.rootfs.diff.tar.gzip+app", 16724),
        ],
    }
    return json.dumps(manifest, indent=3)


def manifest_digest(manifest: str) -> str:
    """The content digest a registry gives a manifest: sha256 of its bytes."""
    return "sha256:" + hashlib.sha256(manifest.encode()).hexdigest()


def ecr_push_event(
    stack: LocalStackInfo,
    digest: str,
    tag: str,
    when: datetime,
    event_id: str,
    repository: str = "",
) -> dict[str, Any]:
    """The EventBridge "ECR Image Action" event for a successful push, as AWS sends it."""
    return {
        "version": "0",
        "id": event_id,
        "detail-type": "ECR Image Action",
        "source": "aws.ecr",
        "account": stack.account,
        "time": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": stack.region,
        "resources": [],
        "detail": {
            "result": "SUCCESS",
            "repository-name": repository or stack.repository,
            "image-digest": digest,
            "action-type": "PUSH",
            "image-tag": tag,
            "manifest-media-type": MANIFEST_MEDIA_TYPE,
            "artifact-media-type": "application/vnd.docker.container.image.v1+json",
        },
    }


def push(
    stack: LocalStackInfo,
    api: ApiClient,
    tag: str,
    *,
    broken: bool,
    fault: str = FAULT_MODES[0],
    behaviour: str = "",
    repository: str = "",
) -> dict[str, Any]:
    """Push a new image tagged ``tag`` to ``repository`` (default: the stack's own), deliver
    its event through ``api`` (the stack's signed API client); returns what happened."""
    import boto3  # imported here: the other commands never need it

    repository = repository or stack.repository

    manifest = image_manifest(tag, secrets.token_hex(16))
    digest = manifest_digest(manifest)
    ecr = boto3.client(
        "ecr",
        endpoint_url=stack.moto_url,
        region_name=stack.region,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # noqa: S106 - moto accepts any key
    )
    try:
        ecr.put_image(
            repositoryName=repository,
            imageManifest=manifest,
            imageManifestMediaType=MANIFEST_MEDIA_TYPE,
            imageTag=tag,
            imageDigest=digest,
        )
    except Exception as exc:  # botocore raises many types; all mean the same here
        raise CliError(f"pushing to the local ECR failed: {exc}", EXIT_UNAVAILABLE) from None
    if broken:
        _post(f"{stack.faults_url}/_emulator/faults/images", {"image": digest, "mode": fault})
    if behaviour:
        # The image rolls out and passes its hooks; the simulated users see it misbehave.
        api.call("POST", "/_local/traffic", payload={"image": digest, "behaviour": behaviour})
    event = ecr_push_event(
        stack, digest, tag, datetime.now(UTC), str(uuid.uuid4()), repository=repository
    )
    delivered = api.call("POST", "/_local/events", payload=event).body
    started = delivered if isinstance(delivered, dict) else {}
    return {
        "tag": tag,
        "digest": digest,
        "image": f"{stack.registry}/{repository}@{digest}",
        "broken": fault if broken else "",
        "behaviour": behaviour or "good",
        "eventId": event["id"],
        "deploymentId": started.get("deploymentId", ""),
        "executionArn": started.get("executionArn", ""),
        "ecrPush": delivered,
    }


def _post(url: str, payload: object) -> Any:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(  # noqa: S310 - URLs come from the stack's state file
        url,
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:  # noqa: S310
            raw = answer.read()
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode("utf-8", "replace").strip()
        raise CliError(f"{url} answered {exc.code}: {detail}", EXIT_UNAVAILABLE) from None
    except (urllib.error.URLError, OSError) as exc:
        raise CliError(f"cannot reach {url}: {exc}", EXIT_UNAVAILABLE) from None
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return raw.decode("utf-8", "replace")
