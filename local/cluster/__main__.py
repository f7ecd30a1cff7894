"""``python -m local.cluster``: serve an emulated cluster until Ctrl-C."""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading

from local.cluster.clock import Clock
from local.cluster.emulator import ClusterEmulator


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, start the emulator, wait for Ctrl-C or SIGTERM."""
    parser = argparse.ArgumentParser(
        prog="python -m local.cluster", description="Serve an emulated Kubernetes cluster."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument(
        "--seed",
        default="default",
        help="YAML file or folder of manifests ('none' for an empty cluster)",
    )
    parser.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="controller speed-up (timestamps stay real): 10 runs a 600 s progress "
        "deadline in 60 s",
    )
    parser.add_argument(
        "--instant",
        action="store_true",
        help="controllers converge at once instead of in scaled real time",
    )
    parser.add_argument("--rollout-seconds", type=float, default=10.0)
    parser.add_argument("--job-seconds", type=float, default=2.0)
    parser.add_argument("--verbose", action="store_true", help="print every request")
    args = parser.parse_args(argv)
    clock = Clock.instant() if args.instant else Clock.scaled(args.scale)
    seed = None if args.seed.lower() == "none" else args.seed
    try:
        emulator = ClusterEmulator(
            seed=seed,
            clock=clock,
            host=args.host,
            port=args.port,
            rollout_seconds=args.rollout_seconds,
            job_seconds=args.job_seconds,
            verbose=args.verbose,
        )
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    try:
        emulator.start()
    except OSError as error:
        print(f"error: cannot serve on {args.host}:{args.port}: {error}", file=sys.stderr)
        return 2
    with emulator:
        print(f"cluster emulator serving on {emulator.url}", flush=True)
        print(
            f"kubectl --server={emulator.url} -n wp-platform get deploy,svc,cm,pods,rs", flush=True
        )
        with contextlib.suppress(KeyboardInterrupt):
            done.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
