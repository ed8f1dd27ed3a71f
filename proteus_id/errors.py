"""Errors that mean "the input is wrong", as opposed to a bug.

The CLI prints these as one line on stderr and exits with code 2; anything else is a bug and keeps its traceback.
"""


class UserError(Exception):
    """Bad input: the message says what is wrong and what to do."""


class MissingDependencyError(UserError):
    """An optional dependency is not installed; the message names the extra to install."""


def require(module: str, extra: str, purpose: str):
    """Import an optional module or raise MissingDependencyError with the pip command that fixes it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise MissingDependencyError(
            f"{purpose} needs the '{module}' package: pip install 'proteus-id[{extra}]' ({err})"
        ) from err
