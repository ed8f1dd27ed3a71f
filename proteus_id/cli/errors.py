"""Which exceptions are the user's input (one line, exit 2) and which are bugs (traceback)."""

from __future__ import annotations

import sys


def user_error_types() -> tuple[type[BaseException], ...]:
    from ..errors import UserError
    from ..model.checkpoint import CheckpointError
    from ..pipeline.folder import ModelFolderError

    return (UserError, CheckpointError, ModelFolderError)


def report_user_error(err: BaseException) -> int | None:
    """Print a one-line message for input errors and return exit code 2; None for anything else."""
    if isinstance(err, SystemExit):
        raise err
    if isinstance(err, user_error_types()):
        message = " ".join(str(err).split())  # one line, whatever the exception text held
        print(f"error: {message}", file=sys.stderr)
        return 2
    return None
