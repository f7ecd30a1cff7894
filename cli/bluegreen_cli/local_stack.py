"""Finding the local stack started by ``make local`` (``python -m local.stack``).

The stack writes ``.local-stack/stack.json`` (its pid, URLs and environment) in
the project folder; the command line reads it to default its endpoint and to
simulate ECR pushes. A file whose pid is no longer alive names no stack: the
command line says the stack is not running rather than failing to connect.
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
    faults_url: str = ""
    """Where images are marked to misbehave (the emulator, or the real cluster's kubelet)."""
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
            faults_url=str(data.get("faults_url") or data.get("cluster_url") or ""),
            access_key_id=str(data.get("access_key_id") or ""),
            secret_access_key=str(data.get("secret_access_key") or ""),
        )


def process_alive(pid: int) -> bool:
    """True when a process with that pid runs (signal 0 checks without signalling).

    A killed process its parent has not reaped yet (a zombie) still answers
    signal 0, but serves nothing: on Linux its ``/proc`` state says so.
    """
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc (macOS): signal 0 is all there is
    # "pid (command) state ...": the command may hold spaces and parentheses.
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


def candidate_state_files(start: Path | None = None) -> list[Path]:
    """Where a state file may be: the working folder and its parents, then the project."""
    here = (start or Path.cwd()).resolve()
    folders = [here, *here.parents]
    # An editable install keeps this file in <project>/cli/bluegreen_cli/.
    project = Path(__file__).resolve().parents[2]
    if project not in folders:
        folders.append(project)
    return [folder / STATE_DIR_NAME / STATE_FILE_NAME for folder in folders]


def _recorded(start: Path | None) -> list[LocalStackInfo]:
    """Every readable state file, nearest first (``$BLUEGREEN_LOCAL_STATE`` alone if set)."""
    override = os.environ.get("BLUEGREEN_LOCAL_STATE")
    paths = [Path(override)] if override else candidate_state_files(start)
    found = []
    for path in paths:
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if not isinstance(data, dict):
            continue
        try:
            found.append(LocalStackInfo.from_json(data, path))
        except ValueError:
            continue
    return found


def find_running(start: Path | None = None) -> LocalStackInfo | None:
    """The running local stack nearest to ``start``, or None when none runs."""
    return next((info for info in _recorded(start) if process_alive(info.pid)), None)


def find_stale(start: Path | None = None) -> LocalStackInfo | None:
    """The nearest state file left by a stack whose process is gone (killed, crashed)."""
    return next((info for info in _recorded(start) if not process_alive(info.pid)), None)


def not_running(stale: LocalStackInfo) -> str:
    """What to say about a stack whose state file outlived it, and how to start one."""
    return (
        f"the local stack is not running: {stale.path} names pid {stale.pid}, which is no "
        "longer alive (the stack was stopped without cleaning up, e.g. killed). Start it "
        "with `make local` (or `python -m local.stack`); it replaces the stale file"
    )
