"""Run-size switch shared by every notebook: smoke mode for tests, full mode for people.

Set the environment variable ``COURSE_LIB_SMOKE=1`` (the test suite does this) and every
notebook shrinks its data and epochs so it runs in about two minutes on two CPU cores.
Unset, or ``0``, is full mode: the sizes that reproduce the published numbers.

Notebooks read their sizes in one hyperparameters cell::

    from course_lib.course import config
    EPOCHS = config.choose(full=50, smoke=1)

The library reads the variable; it never sets it.
"""

from __future__ import annotations

import os

SMOKE_ENV_VAR = "COURSE_LIB_SMOKE"
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}


def smoke_mode() -> bool:
    """Returns True when ``COURSE_LIB_SMOKE`` asks for the small, fast run.

    Raises:
        ValueError: if the variable holds something other than a yes/no word.
    """
    raw = os.environ.get(SMOKE_ENV_VAR, "").strip().lower()
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise ValueError(
        f"{SMOKE_ENV_VAR} must be one of {sorted(_TRUE | _FALSE - {''})} (or unset); "
        f"got {os.environ[SMOKE_ENV_VAR]!r}."
    )


def choose(full, smoke):
    """Returns ``smoke`` in smoke mode and ``full`` otherwise.

    Example:
        >>> EPOCHS = choose(full=50, smoke=1)
    """
    return smoke if smoke_mode() else full


def mode_name() -> str:
    """``"smoke"`` or ``"full"``, for printing at the top of a notebook."""
    return "smoke" if smoke_mode() else "full"
