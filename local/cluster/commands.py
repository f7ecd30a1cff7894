"""Just enough of a container runtime to decide how a hook Job's command ends."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from typing import Any

WP_ROOT_ERROR = (
    "Error: YIKES! It looks like you're running this as root. You probably meant to run this "
    "as the user that your WordPress installation exists under.\n"
    "\n"
    "If you REALLY mean to run this as root, we won't stop you, but just bear in mind that any "
    "code on this site will then have full control of your server, making it quite DANGEROUS.\n"
    "\n"
    "If you'd like to continue as root, please run this again, adding this flag:  --allow-root\n"
    "\n"
    "If you'd like to run it as the user that this site is under, you can run the following "
    "to become the respective user:\n"
    "\n"
    "    sudo -u USER -i -- wp <command>\n"
    "\n"
)

_WP_OUTPUT = {
    ("cache", "flush"): "Success: The cache was flushed.\n",
    ("rewrite", "flush"): "Success: Rewrite rules flushed.\n",
    ("transient", "delete"): "Success: 0 transients deleted from the database.\n",
    ("core", "version"): "6.7.1\n",
    ("cli", "version"): "WP-CLI 2.11.0\n",
    ("core", "is-installed"): "",
}


@dataclass
class Outcome:
    """How a container run ends: exit code, what it printed, extra seconds it slept."""

    exit_code: int = 0
    log: str = ""
    sleep: float = 0.0
    lines: list[str] = field(default_factory=list)


def run_user(pod_spec: dict[str, Any], container: dict[str, Any]) -> int | None:
    """The uid the container runs as (container securityContext wins over the pod's)."""
    for context in (container.get("securityContext"), pod_spec.get("securityContext")):
        if isinstance(context, dict) and context.get("runAsUser") is not None:
            return int(context["runAsUser"])
    return None


def run_container(pod_spec: dict[str, Any], container: dict[str, Any]) -> Outcome:
    """Interpret the container's command and args (images default to running as root)."""
    argv = [str(a) for a in (container.get("command") or []) + (container.get("args") or [])]
    env = {
        str(e.get("name")): str(e.get("value", ""))
        for e in container.get("env") or []
        if isinstance(e, dict)
    }
    user = run_user(pod_spec, container)
    outcome = Outcome()
    outcome.exit_code = _run_argv(argv, user in (None, 0), env, outcome)
    outcome.log = "".join(outcome.lines)
    return outcome


def _run_argv(argv: list[str], root: bool, env: dict[str, str], outcome: Outcome) -> int:
    if not argv:
        return 0
    program = argv[0].rsplit("/", 1)[-1]
    args = argv[1:]
    if program in {"sh", "bash", "ash", "dash"} and args[:1] == ["-c"] and len(args) > 1:
        return _run_script(args[1], root, env, outcome)
    if program == "true":
        return 0
    if program == "false":
        return 1
    if program == "exit":
        return _exit_code(args)
    if program == "echo":
        newline = True
        if args[:1] == ["-n"]:
            newline, args = False, args[1:]
        outcome.lines.append(" ".join(args) + ("\n" if newline else ""))
        return 0
    if program == "sleep":
        try:
            outcome.sleep += float(args[0].rstrip("s")) if args else 0.0
        except ValueError:
            outcome.lines.append(f"sleep: invalid time interval '{args[0]}'\n")
            return 1
        return 0
    if program == "wp":
        return _run_wp(args, root, env, outcome)
    return 0


def _exit_code(args: list[str]) -> int:
    try:
        return int(args[0]) % 256 if args else 0
    except ValueError:
        return 2


def _run_wp(args: list[str], root: bool, env: dict[str, str], outcome: Outcome) -> int:
    allowed = "--allow-root" in args or bool(env.get("WP_CLI_ALLOW_ROOT"))
    words = [a for a in args if not a.startswith("--")]
    if root and not allowed and words[:2] not in (["cli", "update"], ["cli", "info"]):
        outcome.lines.append(WP_ROOT_ERROR)
        return 1
    output = _WP_OUTPUT.get((words[0], words[1]) if len(words) > 1 else ("", ""))
    if output is not None:
        outcome.lines.append(output)
    return 0


def _run_script(script: str, root: bool, env: dict[str, str], outcome: Outcome) -> int:
    """A shell script of simple commands joined by ``;``, ``&&``, ``||`` and newlines."""
    try:
        lexer = shlex.shlex(script.replace("\n", " ; "), posix=True, punctuation_chars=";&|")
        lexer.whitespace_split = True
        tokens = list(lexer)
    except ValueError:
        outcome.lines.append("sh: syntax error: unterminated quoted string\n")
        return 2
    status = 0
    command: list[str] = []
    pending = ";"
    for token in [*tokens, ";"]:
        if token not in {";", "&&", "||"}:
            command.append(token)
            continue
        if command:
            run = pending == ";" or (pending == "&&") == (status == 0)
            if run:
                if command[0] == "exit":
                    return _exit_code(command[1:])
                status = _run_argv(command, root, env, outcome)
        command = []
        pending = token
    return status
