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


class CliError(Exception):
    """An error reported to the user in one line, with the exit code scripts see."""

    def __init__(self, message: str, exit_code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


class ApiError(CliError):
    """The API answered with an error status and an ``{"error", "detail"}`` body."""

    def __init__(self, status: int, error: str, detail: str, body: object) -> None:
        text = f"{error}: {detail}" if detail else error
        super().__init__(f"HTTP {status}: {text}", EXIT_USAGE if status < 500 else EXIT_UNAVAILABLE)
        self.status = status
        self.error = error
        self.detail = detail
        self.body = body
