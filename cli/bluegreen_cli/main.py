"""``bluegreen``: argument parsing, endpoint and signing set-up, one-line errors."""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import socket
import sys
import urllib.parse
from collections.abc import Callable, Sequence
from typing import TextIO

from bluegreen_cli import __version__, commands, manifests
from bluegreen_cli.api import ApiClient, Signer, check_app_name, region_of_endpoint
from bluegreen_cli.dashboard import command as dashboard
from bluegreen_cli.errors import (
    EXIT_CODES_HELP,
    EXIT_OK,
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
    CliError,
)
from bluegreen_cli.local_stack import LocalStackInfo, find_running, find_stale, not_running
from bluegreen_cli.push import FAULT_MODES, push
from bluegreen_cli.tables import pairs

ENDPOINT_ENV = "BLUEGREEN_ENDPOINT"
APP_ENV = "BLUEGREEN_APP"
MAX_PAGE = 100
"""The API's largest page (``limit`` of GET /images, GET /deployments and GET /apps)."""

DESCRIPTION = """\
Operate eks-bluegreen: switch the canary colour, deploy digests, roll back,
and read the ledger. Talks to the services API of a deployed stack (signed with
SigV4 for API Gateway's IAM auth, standard AWS credential chain and region) or
to the local stack started with `make local`.

endpoint: --endpoint URL, else $BLUEGREEN_ENDPOINT, else the running local stack.
application: --app NAME, else $BLUEGREEN_APP, else the stack's default application;
the release commands act for it (under /apps/NAME), `apps` reads and edits the registry.
"""


def _seconds(text: str) -> float:
    """A number of seconds greater than zero (argparse reports the ValueError as usage)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be a number of seconds above 0")
    return value


def _page_size(text: str) -> int:
    """A page size the API accepts: a whole number from 1 to ``MAX_PAGE``."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 1 <= value <= MAX_PAGE:
        raise argparse.ArgumentTypeError(f"{value} is out of range: from 1 to {MAX_PAGE}")
    return value


def _app_option(text: str) -> str:
    """``--app``: an application's name, or empty for the stack's default application."""
    text = text.strip()
    try:
        return check_app_name(text) if text else ""
    except CliError as exc:
        raise argparse.ArgumentTypeError(exc.message) from None


def _app_name(text: str) -> str:
    """An application's name, as the API takes it in ``/apps/{app}``."""
    try:
        return check_app_name(text)
    except CliError as exc:
        raise argparse.ArgumentTypeError(exc.message) from None


_GROUP = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,61}[a-z0-9])?$")


def _group(text: str) -> str:
    """A Kubernetes group as the template's KubernetesGroup parameter allows it."""
    if not _GROUP.match(text):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a group the template's KubernetesGroup allows: lowercase "
            "letters, digits, '-' and '.', at most 63"
        )
    return text


_VERSION = re.compile(r'^(?:W/)?"?([1-9][0-9]{0,9})"?$')


def _app_version(text: str) -> int:
    """An application's version, as ``apps show`` prints it (``3``; ``"3"`` is read alike)."""
    found = _VERSION.match(text.strip())
    if found is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not a version (a whole number from 1)")
    return int(found.group(1))


def _reason(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--reason", help="why, in a few words: kept in the ledger's record and the flow's events"
    )


class _Parser(argparse.ArgumentParser):
    """argparse whose errors are one line with exit code 2, like every other error."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise CliError(f"{message} (see: {self.prog} --help)")


def paged(parser: argparse.ArgumentParser, *, default: int) -> None:
    """``--limit`` and ``--cursor``: a page of a listing, and where the next one starts."""
    parser.add_argument(
        "--limit",
        type=_page_size,
        default=default,
        metavar="N",
        help=f"how many, 1 to {MAX_PAGE} (default {default}); more with --cursor",
    )
    parser.add_argument("--cursor", help="the cursor printed at the end of the previous page")


def build_parser() -> argparse.ArgumentParser:
    """The whole command line; every subcommand has ``--help``."""
    root = _Parser(
        prog="bluegreen",
        description=DESCRIPTION,
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_common_options(root, suppress=False)
    root.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = root.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    def command(
        name: str,
        help_text: str,
        run: Callable[..., int],
        group: argparse._SubParsersAction[_Parser] = sub,
    ) -> argparse.ArgumentParser:
        parser = group.add_parser(
            name,
            help=help_text,
            description=help_text,
            epilog=EXIT_CODES_HELP,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        _add_common_options(parser, suppress=True)
        parser.set_defaults(run=run)
        return parser

    def waiting(parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--wait",
            action="store_true",
            help="follow the deployment until it ends; exit 1 unless it succeeded",
        )
        parser.add_argument(
            "--interval",
            type=_seconds,
            default=1.0,
            metavar="SECONDS",
            help="polling interval while waiting (default 1)",
        )

    command(
        "status",
        "show which colour is the canary, what each colour runs and its rollout",
        commands.status,
    )

    p = command(
        "switch", "make a colour the canary (the other one becomes production)", commands.switch
    )
    p.add_argument("colour", choices=("blue", "green"))

    p = command(
        "deploy",
        "deploy a digest (sha256:<hex> or 64 hex) or a known tag through the deploy flow",
        commands.deploy,
    )
    p.add_argument("image", metavar="DIGEST|TAG")
    p.add_argument(
        "--service",
        choices=("canary", "production"),
        default="canary",
        help="which role's colour to deploy to (default canary)",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="deploy even a digest the ledger judged failed",
    )
    _reason(p)
    waiting(p)

    p = command("rollback", "roll a colour back to its last healthy digest", commands.rollback)
    p.add_argument(
        "--service",
        choices=("canary", "production"),
        default="canary",
        help="which role's colour to roll back (default canary)",
    )
    _reason(p)
    waiting(p)

    p = command(
        "promote",
        "promote the canary: progressively under the alb and gateway routers, by digest "
        "under selector",
        commands.promote,
    )
    p.add_argument(
        "--steps",
        type=commands.parse_steps,
        metavar="W[:PAUSE],...",
        help="alb and gateway: the canary's share of production per step, ending at 100, "
        "each with an optional pause in seconds or 'manual' (e.g. 10,50:manual,100); "
        "without it the stack's strategy runs",
    )
    _reason(p)
    waiting(p)

    p = command(
        "resume",
        "resume a progressive promotion waiting at a manual gate",
        commands.resume,
    )
    p.add_argument("id", help="the promotion's deployment id")
    p.add_argument(
        "--hold",
        action="store_true",
        help="keep the gate waiting instead (a heartbeat, for gates that need one)",
    )
    _reason(p)

    p = command(
        "abort",
        "abort a progressive promotion: production back to the old colour",
        commands.abort,
    )
    p.add_argument("id", help="the promotion's deployment id")
    _reason(p)

    for name, help_text, run in (
        (
            "history",
            "images pushed to the repository, newest first, with verdicts",
            commands.history,
        ),
        ("deployments", "deployments and rollbacks, newest first", commands.deployments),
    ):
        paged(command(name, help_text, run), default=20)

    p = command("show", "one deployment: its record and live execution status", commands.show)
    p.add_argument("id", help="deployment id (the execution name)")

    p = command(
        "watch",
        "follow a deployment until its execution ends; exit 1 unless it succeeded",
        commands.watch_command,
    )
    p.add_argument("id", help="deployment id (the execution name)")
    p.add_argument(
        "--interval",
        type=_seconds,
        default=1.0,
        metavar="SECONDS",
        help="polling interval (default 1)",
    )
    p.add_argument(
        "--max-wait",
        type=_seconds,
        default=1800.0,
        metavar="SECONDS",
        help="give up (exit 3) after this long (default 1800)",
    )

    dashboard.add_arguments(command("dashboard", dashboard.HELP, dashboard.run))

    apps = command(
        "apps",
        "the fleet's registry: list, show, register, replace, apply from a file and delete "
        "applications (--app does not apply: each names its application)",
        commands.apps_list,
    )
    apps_sub = apps.add_subparsers(
        dest="apps_command", metavar="APPS_COMMAND", parser_class=_Parser
    )
    apps_sub.required = True

    p = command(
        "list",
        "the applications by name: cluster, namespace, repository, router, version, last change",
        commands.apps_list,
        apps_sub,
    )
    paged(p, default=50)

    p = command(
        "show",
        "one application: its version, who changed it when, and its spec as JSON",
        commands.apps_show,
        apps_sub,
    )
    p.add_argument("name", type=_app_name, metavar="NAME", help="the application's name")

    p = command(
        "put",
        "register an application, or with --version replace its spec at that version",
        commands.apps_put,
        apps_sub,
    )
    p.add_argument("name", type=_app_name, metavar="NAME", help="the application's name")
    p.add_argument(
        "--spec",
        required=True,
        metavar="FILE|-",
        help="the spec as a JSON object (- reads standard input); an `apps show --json` "
        "answer is read for its spec",
    )
    p.add_argument(
        "--version",
        dest="app_version",
        type=_app_version,
        metavar="V",
        help="replace the application at version V (sent as If-Match); without it the "
        "application is registered, and an existing one is a conflict (409)",
    )

    p = command(
        "apply",
        "register or replace an application from a file (YAML or JSON): print what changes, "
        "then write it at the version read (a concurrent change is a 409, nothing written)",
        commands.apps_apply,
        apps_sub,
    )
    p.add_argument(
        "-f",
        "--file",
        required=True,
        metavar="FILE|-",
        help='the application: {"name": ..., "spec": {...}} (an `apps show --json` answer '
        "too), or its spec alone with --name; - reads standard input. What is not one "
        "application is a usage error before any request",
    )
    p.add_argument(
        "--name",
        type=_app_name,
        metavar="NAME",
        help="the application's name, for a file holding its spec alone",
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="print what would change, write nothing",
    )

    p = command(
        "delete",
        "delete an application from the registry (its ledger history is kept)",
        commands.apps_delete,
        apps_sub,
    )
    p.add_argument("name", type=_app_name, metavar="NAME", help="the application's name")
    p.add_argument(
        "--version",
        dest="app_version",
        type=_app_version,
        metavar="V",
        help="delete it only if it is still at version V (sent as If-Match)",
    )

    p = command(
        "manifests",
        "print an application's Role and RoleBinding for its namespace, from its spec, "
        "for `kubectl apply -f -`",
        commands.manifests_command,
    )
    p.add_argument(
        "app_name",
        nargs="?",
        type=_app_name,
        metavar="APP",
        help="the application (else --app, $BLUEGREEN_APP, the stack's default application)",
    )
    p.add_argument(
        "--group",
        type=_group,
        default=manifests.GROUP,
        metavar="GROUP",
        help="the Kubernetes group the stack's access entries give the functions' roles "
        f"(template parameter KubernetesGroup; default {manifests.GROUP})",
    )
    p.add_argument(
        "--with-objects",
        action="store_true",
        help="also what a new namespace lacks for the product to start: the Namespace, the "
        "canaryEnv ConfigMap (blue the canary) and the canary, production (and, for alb and "
        "gateway, colour) Services. ONLY FOR A NAMESPACE THAT HAS NONE YET: applied over "
        "existing ones they reset canaryEnv and the Services' selectors. The Deployments "
        "are the team's own and are not printed",
    )

    p = command(
        "push",
        "local stack only: push a new image to the local ECR (with --app, to that "
        "application's repository) and deliver its EventBridge event to ecr_push",
        _push,
    )
    p.add_argument("tag", help="the image tag, e.g. dev (auto-deployed by default)")
    p.add_argument(
        "--broken",
        action="store_true",
        help="the image misbehaves in the local cluster (emulator or real control plane)",
    )
    p.add_argument(
        "--fault",
        choices=FAULT_MODES,
        default=FAULT_MODES[0],
        help="how a --broken image misbehaves (default CrashLoopBackOff; SlowStart is "
        "healthy but ready only after 90 s)",
    )
    answers = p.add_mutually_exclusive_group()
    answers.add_argument(
        "--errors",
        action="store_const",
        const="errors",
        dest="behaviour",
        help="the image rolls out, but 5 %% of the simulated requests it serves answer 5xx",
    )
    answers.add_argument(
        "--slow",
        action="store_const",
        const="slow",
        dest="behaviour",
        help="the image rolls out, but answers the simulated requests in about 2 s",
    )
    waiting(p)
    return root


def _add_common_options(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    """Options accepted before and after the subcommand.

    The subcommand's copies default to SUPPRESS so that they never overwrite a
    value given before the subcommand name.
    """

    def default(value: object) -> object:
        return argparse.SUPPRESS if suppress else value

    parser.add_argument(
        "--endpoint",
        default=default(None),
        metavar="URL",
        help=f"services API URL (stage URL, or the local stack); env {ENDPOINT_ENV}",
    )
    parser.add_argument(
        "--app",
        type=_app_option,
        default=default(None),
        metavar="NAME",
        help="act for this application of the fleet: the release commands call "
        f"/apps/NAME/...; env {APP_ENV}; empty or unset: the stack's default application",
    )
    parser.add_argument("--region", default=default(None), help="AWS region for signing")
    parser.add_argument("--profile", default=default(None), help="AWS profile for signing")
    parser.add_argument(
        "--no-sign",
        action="store_true",
        default=default(False),
        help="send requests unsigned (API Gateway and the local stack answer 403: for an "
        "endpoint without IAM auth only)",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        default=default(False),
        help="print the API's JSON answer instead of a table",
    )
    parser.add_argument(
        "--timeout",
        type=_seconds,
        default=default(30.0),
        metavar="SECONDS",
        help="HTTP timeout per request (default 30)",
    )


def _push(ctx: commands.Context) -> int:
    if ctx.local is None:
        raise CliError(
            "push works only against the local stack: start it with `make local` "
            "(and do not pass --endpoint to another API)"
        )
    # With --app, the push goes to that application's repository (its spec names it):
    # every application naming the repository records it, and deploys it if the tag is
    # one of its auto-deploy tags.
    repository = ""
    if ctx.client.app:
        spec = ctx.client.get(f"/apps/{ctx.client.app}").get("spec") or {}
        repository = str(spec.get("repository") or "")
    result = push(
        ctx.local,
        ctx.client,
        ctx.args.tag,
        broken=ctx.args.broken,
        fault=ctx.args.fault,
        behaviour=ctx.args.behaviour or "",
        repository=repository,
    )
    delivered = result.get("ecrPush")
    items = [(k, v) for k, v in result.items() if k not in ("ecrPush", "executionArn")]
    if isinstance(delivered, dict):
        response = delivered.get("response") or delivered.get("error") or {}
        if isinstance(response, dict):
            items += [(f"ecr_push.{k}", v) for k, v in response.items() if k != "digest"]
        if delivered.get("delivered") is False:
            items.append(("ecr_push", delivered.get("reason", "not delivered")))
    if not result.get("deploymentId"):
        items.append(("deployment", "none started (the tag is not auto-deployed)"))
    if ctx.args.wait and result.get("deploymentId"):
        return commands.follow(ctx, str(result["deploymentId"]), pairs(items))
    ctx.emit(result, pairs(items))
    return EXIT_OK


def resolve_app(args: argparse.Namespace) -> str | None:
    """``--app``, else ``$BLUEGREEN_APP``; None (also for an empty one) is the default app."""
    if args.app is not None:
        return str(args.app) or None
    from_env = os.environ.get(APP_ENV, "").strip()
    if not from_env:
        return None
    try:
        return check_app_name(from_env)
    except CliError as exc:
        raise CliError(f"{APP_ENV}: {exc.message}") from None


def resolve_endpoint(args: argparse.Namespace) -> tuple[str, LocalStackInfo | None]:
    """``--endpoint``, else ``$BLUEGREEN_ENDPOINT``, else the running local stack."""
    local = find_running()
    explicit = args.endpoint or os.environ.get(ENDPOINT_ENV, "").strip()
    if explicit:
        is_local = local is not None and explicit.rstrip("/") == local.api_url.rstrip("/")
        stale = None if is_local else find_stale()
        if stale is not None and explicit.rstrip("/") == stale.api_url.rstrip("/"):
            raise CliError(not_running(stale), EXIT_UNAVAILABLE, "LocalStackNotRunning")
        return explicit, local if is_local else None
    if local is not None:
        return local.api_url, local
    stale = find_stale()
    if stale is not None:
        raise CliError(not_running(stale), EXIT_UNAVAILABLE, "LocalStackNotRunning")
    raise CliError(
        "no API endpoint: pass --endpoint URL (the stack's API URL output), set "
        f"{ENDPOINT_ENV}, or start the local stack with `make local`"
    )


def _unreachable(endpoint: str, timeout: float) -> str | None:
    """Why nothing answers at ``endpoint``'s host and port, or None when something does."""
    split = urllib.parse.urlsplit(endpoint)
    port = split.port or (443 if split.scheme == "https" else 80)
    try:
        socket.create_connection((split.hostname or "", port), timeout=timeout).close()
    except OSError as exc:
        return exc.strerror or str(exc)
    return None


def make_signer(
    args: argparse.Namespace, endpoint: str, local: LocalStackInfo | None
) -> Signer | None:
    """A SigV4 signer, unless ``--no-sign``; the local stack's own key for the local stack."""
    if args.no_sign:
        return None
    region = args.region or region_of_endpoint(endpoint) or (local.region if local else None)
    if local is not None and local.access_key_id:
        return Signer(region, access_key=(local.access_key_id, local.secret_access_key))
    try:
        return Signer(region, args.profile)
    except CliError:
        raise
    except Exception as exc:  # botocore: unknown profile, broken config files
        raise CliError(f"cannot load AWS credentials: {exc}") from None


def main(
    argv: Sequence[str] | None = None, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    """Run the command line; returns the exit code (never raises for expected failures)."""
    out = out or sys.stdout
    err = err or sys.stderr
    words = list(sys.argv[1:] if argv is None else argv)
    # Known before parsing, so that a usage error is JSON too; "--" ends the options.
    as_json = "--json" in words[: words.index("--")] if "--" in words else "--json" in words
    try:
        args = build_parser().parse_args(words)
        app = resolve_app(args)
        endpoint, local = resolve_endpoint(args)
        try:
            signer = make_signer(args, endpoint, local)
        except CliError:
            # No credentials matter less than no API: say that first.
            reason = _unreachable(endpoint, min(args.timeout, 5.0))
            if reason is not None:
                raise CliError(
                    f"cannot reach the API at {endpoint}: {reason}",
                    EXIT_UNAVAILABLE,
                    "Unreachable",
                ) from None
            raise
        hint = (
            f"the local stack {local.path} names (pid {local.pid}) does not answer: if it was "
            "killed, start it again with `make local`"
            if local is not None
            else ""
        )
        client = ApiClient(endpoint, signer, timeout=args.timeout, unreachable_hint=hint, app=app)
        ctx = commands.Context(client=client, args=args, out=out, err=err, local=local)
        code: int = args.run(ctx)
        return code
    except CliError as exc:
        if as_json:
            out.write(json.dumps(exc.as_json(), indent=2, sort_keys=True) + "\n")
        err.write(f"bluegreen: error: {exc.message}\n")
        return exc.exit_code
    except KeyboardInterrupt:
        err.write("bluegreen: interrupted\n")
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except Exception as exc:  # the promise is one line, never a traceback
        if as_json:
            answer = {"error": "Unexpected", "detail": f"{type(exc).__name__}: {exc}"}
            out.write(json.dumps(answer, indent=2, sort_keys=True) + "\n")
        err.write(f"bluegreen: error: unexpected {type(exc).__name__}: {exc}\n")
        return EXIT_UNAVAILABLE


if __name__ == "__main__":
    sys.exit(main())

__all__ = ["EXIT_USAGE", "build_parser", "main"]
