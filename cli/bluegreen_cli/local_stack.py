"""Finding the local stack started by ``make local`` (``python -m local.stack``).

The stack writes ``.local-stack/stack.json`` (its pid, URLs and environment) in
the project folder; the command line reads it to default its endpoint and to
simulate ECR pushes. A file whose pid is no longer alive is ignored.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

STATE_DIR_NAME = ".local-stack"
STATE_FILE_NAME = "stack.json"


@dataclass(frozen=True)
class LocalStackInfo:
    """What a running local stack published about itself."""

    pid: int
    api_url: str
    moto_url: str
    cluster_url: str
    region: str
    account: str
    repository: str
    registry: str
    namespace: str
    path: Path
    environment: dict[str, str] = field(default_factory=dict)
    access_key_id: str = ""
    """The access key the stack's API accepts: the CLI signs with it (empty: an older stack
    that published none)."""
    secret_access_key: str = ""

    @classmethod
    def from_json(cls, data: dict[str, object], path: Path) -> LocalStackInfo:
        """Read the state file's fields; a missing or mistyped field raises ``ValueError``."""

        def text(name: str) -> str:
            value = data.get(name)
            if not isinstance(value, str):
                raise ValueError(f"{path}: field {name!r} missing or not a string")
            return value

        pid = data.get("pid")
        if not isinstance(pid, int):
            raise ValueError(f"{path}: field 'pid' missing or not a number")
        environment = data.get("environment") or {}
        if not isinstance(environment, dict):
            raise ValueError(f"{path}: field 'environment' is not an object")
        return cls(
            pid=pid,
            api_url=text("api_url"),
            moto_url=text("moto_url"),
            cluster_url=text("cluster_url"),
            region=text("region"),
            account=text("account"),
            repository=text("repository"),
            registry=text("registry"),
            namespace=text("namespace"),
            path=path,
            environment={str(k): str(v) for k, v in environment.items()},
            access_key_id=str(data.get("access_key_id") or ""),
            secret_access_key=str(data.get("secret_access_key") or ""),
        )


def process_alive(pid: int) -> bool:
    """True when a process with that pid exists (signal 0 checks without signalling)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def candidate_state_files(start: Path | None = None) -> list[Path]:
    """Where a state file may be: the working folder and its parents, then the project."""
    here = (start or Path.cwd()).resolve()
    folders = [here, *here.parents]
    # An editable install keeps this file in <project>/cli/bluegreen_cli/.
    project = Path(__file__).resolve().parents[2]
    if project not in folders:
        folders.append(project)
    return [folder / STATE_DIR_NAME / STATE_FILE_NAME for folder in folders]


def find_running(start: Path | None = None) -> LocalStackInfo | None:
    """The running local stack nearest to ``start``, or None when none runs."""
    override = os.environ.get("BLUEGREEN_LOCAL_STATE")
    paths = [Path(override)] if override else candidate_state_files(start)
    for path in paths:
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if not isinstance(data, dict):
            continue
        try:
            info = LocalStackInfo.from_json(data, path)
        except ValueError:
            continue
        if process_alive(info.pid):
            return info
    return None
