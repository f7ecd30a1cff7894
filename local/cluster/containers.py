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

CRASH_LOOP = "CrashLoopBackOff"
"""The container starts, exits with status 1, and is restarted with a growing back-off."""
IMAGE_PULL = "ImagePullBackOff"
"""The image cannot be pulled (not found): the container never starts."""
IMAGE_MODES = (CRASH_LOOP, IMAGE_PULL)

BACKOFF_FIRST = 10.0
BACKOFF_CAP = 300.0
"""The kubelet's crash-loop back-off: 10 s, doubled at each restart, at most 300 s."""

CRASH_EXIT_CODE = 1
CRASH_LOG = "Error: the application exited with status 1\n"
INJECTED_FAILURE_LOG = "Error: injected failure (emulator fault)\n"


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
