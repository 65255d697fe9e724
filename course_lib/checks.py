"""Input validation shared by every module: clear errors that say what was expected and
what arrived.

* ``check_images``: a batch of flattened images or unit states, (n, d), finite, optionally
  binary; used by the data loaders and by every model's ``check_visible``.
* ``check_probabilities``: the same, with every value in [0, 1] (binary data or
  probabilities); used by the DBN and DBM.
* ``is_int`` / ``check_positive_int``: integer arguments (``bool`` is refused).
* ``DataError`` (a ``ValueError``) and ``DataTypeError`` (also a ``TypeError``).
"""

from __future__ import annotations

import numpy as np


class DataError(ValueError):
    """Data (a file or an array) is missing, corrupt or not what the caller needs."""


class DataTypeError(DataError, TypeError):
    """Data of a non-numeric dtype."""


def is_int(value) -> bool:
    """True for Python and NumPy integers, False for ``bool`` and everything else."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def check_positive_int(value, name, minimum=1) -> int:
    """Returns ``int(value)``; raises ``ValueError`` unless it is an integer >= ``minimum``."""
    if not is_int(value) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value!r}.")
    return int(value)


def check_images(x, *, expected_dim=None, binary=False, name="x") -> np.ndarray:
    """Checks a batch of flattened images and returns it as float32.

    Args:
        x: array-like (n, d) with n >= 1.
        expected_dim: optional required d.
        binary: require every value to be 0 or 1.
        name: the argument's name, for messages.

    Returns:
        float32 numpy array (n, d).

    Raises:
        DataTypeError: if ``x`` is not numeric (a ``DataError`` and a ``TypeError``).
        DataError: if ``x`` is not 2-D, empty, of the wrong width, not finite,
            or (with ``binary``) holds values other than 0 and 1.
    """
    arr = np.asarray(x)
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise DataTypeError(f"{name} must be numeric; got dtype {arr.dtype}.")
    wanted = "" if expected_dim is None else f"; expected shape (n, {expected_dim})"
    if arr.ndim != 2:
        raise DataError(f"{name} must be a 2-D array (n, d); got shape {arr.shape}{wanted}. "
                        "Flatten images first, e.g. x.reshape(len(x), -1).")
    if arr.shape[0] == 0:
        raise DataError(f"{name} must hold at least one row; got shape {arr.shape}.")
    if expected_dim is not None and arr.shape[1] != expected_dim:
        raise DataError(f"{name} must have shape (n, {expected_dim}): {expected_dim} columns; "
                        f"got shape {arr.shape}.")
    arr = arr.astype(np.float32, copy=False)
    # min and max are NaN or infinite exactly when some value is: two passes, no temporaries
    if not (np.isfinite(arr.min()) and np.isfinite(arr.max())):
        bad = np.size(arr) - np.isfinite(arr).sum()
        raise DataError(f"{name} must be finite; got {bad} NaN or inf values.")
    if binary and not np.isin(arr, (0.0, 1.0)).all():
        bad = np.unique(arr[~np.isin(arr, (0.0, 1.0))])[:5]
        raise DataError(f"{name} must be binary (values in {{0, 1}}); got values such as {bad}.")
    return arr


def check_probabilities(x, *, expected_dim=None, name="x") -> np.ndarray:
    """:func:`check_images`, and every value in [0, 1] (binary states or probabilities)."""
    arr = check_images(x, expected_dim=expected_dim, name=name)
    if arr.min() < 0.0 or arr.max() > 1.0:
        raise DataError(f"{name} must hold values in [0, 1]; got values in "
                        f"[{arr.min():g}, {arr.max():g}].")
    return arr
