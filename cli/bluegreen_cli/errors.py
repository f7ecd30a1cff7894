"""Exit codes and the one error type the command line reports.

The codes are a contract with scripts, documented in ``bluegreen --help``.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 3

EXIT_CODES_HELP = """\
exit codes:
  0  the operation succeeded (with --wait/watch: the deployment succeeded)
  1  the operation ran but failed (e.g. the deployment was rolled back)
  2  usage error, or the API refused the request (4xx)
  3  the API could not be reached, or it failed (5xx)
"""


_NAMES = {EXIT_FAILED: "OperationFailed", EXIT_USAGE: "UsageError", EXIT_UNAVAILABLE: "Unavailable"}


class CliError(Exception):
    """An error reported to the user in one line, with the exit code scripts see.

    ``error`` names it for ``--json`` (``{"error": ..., "detail": ...}`` on stdout);
    by default the name of its exit code's kind.
    """

    def __init__(self, message: str, exit_code: int = EXIT_USAGE, error: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code
        self.error = error or _NAMES.get(exit_code, "Error")
        self.detail = message

    def as_json(self) -> dict[str, object]:
        """The error as ``--json`` prints it."""
        return {"error": self.error, "detail": self.detail}


class ApiError(CliError):
    """The API answered with an error status and an ``{"error", "detail"}`` body."""

    def __init__(self, status: int, error: str, detail: str, body: object) -> None:
        text = f"{error}: {detail}" if detail else error
        super().__init__(f"HTTP {status}: {text}", EXIT_USAGE if status < 500 else EXIT_UNAVAILABLE)
        self.status = status
        self.error = error
        self.detail = detail
        self.body = body

    def as_json(self) -> dict[str, object]:
        """The API's error as ``--json`` prints it, with the HTTP status."""
        return {"error": self.error, "detail": self.detail, "status": self.status}
