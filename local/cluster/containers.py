"""What a simulated container does: the one place the emulator and the simulated kubelet read.

Both backends of the local cluster run no real containers. Whether a pod of an
image becomes ready, crash-loops or cannot pull, how long the kubelet backs off
between restarts, what a container prints, and how a Job's command ends
(``local.cluster.commands``) are decided here, so that the emulator's
controllers and the simulated kubelet in front of the real control plane
(``local.kube.kubelet``) cannot disagree about them.

An image misbehaves only when it is *marked* (``ImageMarks``): ``bluegreen push
--broken`` marks the pushed digest through the fault path
``POST /_emulator/faults/images``, which the emulator and the simulated kubelet
both serve. Every other image runs and gets ready.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

CRASH_LOOP = "CrashLoopBackOff"
"""The container starts, exits with status 1, and is restarted with a growing back-off."""
OOM_KILLED = "OOMKilled"
"""The container starts and is killed for memory (exit 137), restarted with the back-off."""
IMAGE_PULL = "ImagePullBackOff"
"""The image cannot be pulled (not found): ErrImagePull, then ImagePullBackOff; never starts."""
INVALID_IMAGE = "InvalidImageName"
"""The image reference cannot be parsed: the container never starts."""
CONFIG_ERROR = "CreateContainerConfigError"
"""The container's environment names a Secret key that does not exist: never starts."""
SLOW_START = "SlowStart"
"""Healthy, but ready only ``SLOW_START_SECONDS`` after it starts (no restart)."""
IMAGE_MODES = (CRASH_LOOP, OOM_KILLED, IMAGE_PULL, INVALID_IMAGE, CONFIG_ERROR, SLOW_START)

SLOW_START_SECONDS = 90.0
PULL_SECONDS = 2.0
"""How long a failing pull takes before the kubelet backs off (ErrImagePull, then
ImagePullBackOff)."""

BACKOFF_FIRST = 10.0
BACKOFF_CAP = 300.0
"""The kubelet's crash-loop back-off: 10 s, doubled at each restart, at most 300 s."""

CRASH_EXIT_CODE = 1
CRASH_LOG = "Error: the application exited with status 1\n"
INJECTED_FAILURE_LOG = "Error: injected failure (emulator fault)\n"
OOM_LOG = (
    "PHP Fatal error:  Allowed memory size of 268435456 bytes exhausted "
    "(tried to allocate 20480 bytes)\n"
)
MISSING_SECRET = ("wp-platform-db", "WORDPRESS_DB_PASSWORD")
"""The Secret and key a ``CreateContainerConfigError`` image asks for in vain."""


@dataclass(frozen=True)
class Crash:
    """How a restarting container ends each run: exit code, reason, last words."""

    exit_code: int
    reason: str
    log: str


CRASHES = {
    CRASH_LOOP: Crash(CRASH_EXIT_CODE, "Error", CRASH_LOG),
    OOM_KILLED: Crash(137, "OOMKilled", OOM_LOG),
}
"""The modes whose container starts, ends, and is restarted with the back-off."""
NEVER_STARTS = (IMAGE_PULL, INVALID_IMAGE, CONFIG_ERROR)
"""The modes whose container waits forever: it is never created."""


def waiting(mode: str, image: str, namespace: str, *, first_try: bool) -> tuple[str, str]:
    """The waiting reason and message of a container of a ``NEVER_STARTS`` mode.

    ``first_try``: the kubelet is still on its first attempt (the first
    ``PULL_SECONDS``): a failing pull shows ErrImagePull, later ImagePullBackOff.
    """
    if mode == IMAGE_PULL:
        if first_try:
            return "ErrImagePull", pull_failure(image)
        return "ImagePullBackOff", f'Back-off pulling image "{image}": ErrImagePull: ' + (
            pull_failure(image)
        )
    if mode == INVALID_IMAGE:
        return (
            "InvalidImageName",
            f'Failed to apply default image tag "{image}": couldn\'t parse image name '
            f'"{image}": invalid reference format',
        )
    return "CreateContainerConfigError", config_failure(namespace)


def config_failure(namespace: str) -> str:
    """The kubelet's message for an environment variable whose Secret key is missing."""
    secret, key = MISSING_SECRET
    return f"couldn't find key {key} in Secret {namespace}/{secret}"


def restart_backoff(restarts: int) -> float:
    """Seconds the kubelet waits before restart number ``restarts + 1`` (``restarts`` >= 1)."""
    return float(min(BACKOFF_FIRST * 2.0 ** max(restarts - 1, 0), BACKOFF_CAP))


def serving_log(started_at: str) -> str:
    """What a healthy serving container has printed once it is ready."""
    return f"{started_at} listening on :8080\n"


def pull_failure(image: str) -> str:
    """The kubelet's message for an image that cannot be pulled."""
    return f'failed to pull and unpack image "{image}": not found'


class ImageMarks:
    """Which images misbehave, and how. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._marks: dict[str, str] = {}

    def mark(self, image: str, mode: str = CRASH_LOOP) -> None:
        """Pods of ``image`` (a full image string or a ``sha256:`` digest) misbehave as ``mode``."""
        if mode not in IMAGE_MODES:
            raise ValueError(f"mode must be one of {', '.join(IMAGE_MODES)}, not {mode!r}")
        if not image:
            raise ValueError("image must be an image string or a sha256: digest")
        with self._lock:
            self._marks[image] = mode

    def clear(self, image: str) -> None:
        """Undo ``mark``: new pods of that image start fine."""
        with self._lock:
            self._marks.pop(image, None)

    def clear_all(self) -> None:
        """Every image runs again."""
        with self._lock:
            self._marks.clear()

    def mode_of(self, image: str) -> str | None:
        """How pods of ``image`` misbehave, or None when they run.

        A mark matches the image itself, an image pinned to it (``repo@<mark>``),
        or any image containing the marked ``sha256:`` digest.
        """
        with self._lock:
            for marked, mode in self._marks.items():
                if (
                    image == marked
                    or image.endswith("@" + marked)
                    or (marked.startswith("sha256:") and marked in image)
                ):
                    return mode
        return None
