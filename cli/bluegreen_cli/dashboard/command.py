"""The ``dashboard`` subcommand: its options, and serving until Ctrl-C."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from bluegreen_cli.errors import EXIT_OK

if TYPE_CHECKING:
    from bluegreen_cli.commands import Context

DEFAULT_PORT = 3100
HELP = (
    "serve a page on 127.0.0.1 that shows both colours, the running deployment, the "
    "images and the deployments, and drives them; Ctrl-C stops it"
)


def _port(text: str) -> int:
    """A TCP port number; 0 picks a free one."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (0-65535)")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--port`` and ``--open``; there is deliberately no option to bind another address."""
    parser.add_argument(
        "--port",
        type=_port,
        default=DEFAULT_PORT,
        help=f"the port on 127.0.0.1 (default {DEFAULT_PORT}; 0 picks a free one)",
    )
    parser.add_argument("--open", action="store_true", help="open the page in the default browser")


def run(ctx: Context) -> int:
    """Serve the dashboard until Ctrl-C; every call it forwards goes through ``ctx.client``."""
    import webbrowser

    from bluegreen_cli.dashboard.server import DashboardServer

    server = DashboardServer(ctx.client, ctx.args.port)
    signer = ctx.client.signer
    signing = f"signed with SigV4 ({signer.region})" if signer is not None else "unsigned"
    try:
        with server:
            ctx.out.write(
                f"dashboard: {server.url}\n"
                f"  API: {ctx.client.endpoint}, every call {signing}\n"
                "  serving on 127.0.0.1 only; Ctrl-C stops it\n"
            )
            ctx.out.flush()
            if ctx.args.open:
                webbrowser.open(server.url)
            server.wait()
    except KeyboardInterrupt:
        pass
    ctx.out.write("dashboard stopped\n")
    return EXIT_OK
