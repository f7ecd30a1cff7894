"""``python -m local.kube``: the real control plane on loopback until Ctrl-C.

Builds the binaries first when they are missing (``make kube``), starts etcd,
kube-apiserver, kube-controller-manager, kube-scheduler and the simulated
kubelet, applies the seed and the shipped RBAC, and prints the kubeconfigs.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
from pathlib import Path

from local.kube.controlplane import ControlPlane, ControlPlaneError, ensure_binaries
from local.kube.kubelet import KubeletOptions


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m local.kube",
        description="Run a real Kubernetes control plane (built from Go modules) on loopback, "
        "with a simulated kubelet, the emulator's seed and the shipped RBAC, until Ctrl-C.",
    )
    parser.add_argument("--port", type=int, default=0, help="API server port (default: a free one)")
    parser.add_argument(
        "--workdir",
        type=Path,
        help="keep certificates, kubeconfigs, etcd data and logs here (default: a "
        "temporary folder, removed at exit)",
    )
    parser.add_argument(
        "--no-seed", action="store_true", help="start empty: no wp-platform namespace, no RBAC"
    )
    parser.add_argument(
        "--kubelet-speed",
        type=float,
        default=1.0,
        help="run the kubelet's own delays (crash-loop back-off, Job runs) this many times "
        "faster than Kubernetes (default 1: real timing)",
    )
    parser.add_argument(
        "--build-only", action="store_true", help="build the binaries if needed, then exit"
    )
    args = parser.parse_args(argv)
    if args.kubelet_speed <= 0:
        parser.error("--kubelet-speed must be positive")
    try:
        if args.build_only:
            print(ensure_binaries())
            return 0
        plane = ControlPlane(
            workdir=args.workdir,
            seed=not args.no_seed,
            port=args.port,
            kubelet_options=KubeletOptions(speed=args.kubelet_speed),
        )
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        with plane:
            print(f"API server     {plane.url}")
            print(f"admin          kubectl --kubeconfig {plane.admin_kubeconfig} get pods -A")
            print(
                f"product        kubectl --kubeconfig {plane.product_kubeconfig} -n wp-platform "
                f"get deploy   (group {plane.product_group}: only the shipped Role's rights)"
            )
            control = plane.kubelet.control_url if plane.kubelet else ""
            print(
                f"mark an image  curl -X POST {control}/_emulator/faults/images "
                """-d '{"image": "sha256:...", "mode": "CrashLoopBackOff"}'"""
            )
            print("Ctrl-C stops it all.")
            with contextlib.suppress(KeyboardInterrupt):
                stop.wait()
    except ControlPlaneError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
