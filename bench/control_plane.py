"""The real control plane: how long it takes to start and stop, and what was built.

Start is from nothing to a control plane whose seed Deployments are rolled out
(etcd, kube-apiserver ready, controller-manager, scheduler, the simulated kubelet
registered, the seed and the shipped RBAC applied). The build itself is timed
by ``make kube`` on a cold machine (``/usr/bin/time -v bash local/kube/build.sh``
after ``go clean -cache -modcache``), not here.
"""

from __future__ import annotations

import statistics
import time

COMMAND = ".venv/bin/python -m bench control_plane   (or: make bench)"
RUNS = 3


def main() -> None:
    """Start and stop the control plane ``RUNS`` times and print the figures."""
    from local.kube.controlplane import PROGRAMS, ControlPlane, binaries_dir, kubernetes_version

    folder = binaries_dir()
    print(f"$ {COMMAND}")
    if not (folder / "kube-apiserver").exists():
        print("the control plane is not built: make kube")
        return
    starts, stops = [], []
    for _ in range(RUNS):
        plane = ControlPlane(progress=lambda line: None)
        began = time.monotonic()
        plane.start()
        starts.append(time.monotonic() - began)
        began = time.monotonic()
        plane.stop()
        stops.append(time.monotonic() - began)
    print(f"real control plane {kubernetes_version()}, {RUNS} starts and stops")
    rows = [
        ("start to seed rolled out, median", f"{statistics.median(starts):.1f} s"),
        ("start, slowest", f"{max(starts):.1f} s"),
        ("stop, median", f"{statistics.median(stops):.1f} s"),
    ]
    rows += [
        (f"binary {name}", f"{(folder / name).stat().st_size / 1e6:.0f} MB") for name in PROGRAMS
    ]
    width = max(len(label) for label, _ in rows)
    print(f"{'measure':<{width}}  value")
    print(f"{'-' * width}  {'-' * 12}")
    for label, value in rows:
        print(f"{label:<{width}}  {value}")
