"""Input validation shared by every module: clear errors that say what was expected and
what arrived.

* ``check_images``: a batch of flattened images or unit states, (n, d), finite, optionally
  binary; used by the data loaders and by every model's ``check_visible``.
* ``check_probabilities``: the same, with every value in [0, 1] (binary data or
  probabilities); used by the DBN and DBM.
* ``is_int`` / ``check_positive_int`` / ``check_nonneg_int``: integer arguments (counts,
  sizes, steps; ``bool`` is refused); ``check_int_sequence``: layer sizes and shapes.
* ``check_seed``: a seed, an integer >= 0 (or None where the caller allows it).
* ``check_finite_float``: a real number, finite, optionally bounded (rates, scales,
  weights, log Z); ``check_interval``: a (low, high) pair; ``check_bool``: a flag.
* ``check_finite_array``: a numeric array of a given shape with no NaN or inf (initial
  biases, base rates); ``check_increasing_schedule``: an annealing schedule.
* ``describe``: a value as an error message may show it (never a whole data set);
  ``is_concrete``: whether data can be validated now (not a symbolic tensor).
* ``DataError`` (a ``ValueError``) and ``DataTypeError`` (also a ``TypeError``);
  ``ArgumentTypeError``, an argument of the wrong type (a ``TypeError`` and a
  ``ValueError``, so that code written against either keeps catching it).
"""

from __future__ import annotations

import math
import numbers

import keras
import numpy as np
import tensorflow as tf


class DataError(ValueError):
    """Data (a file or an array) is missing, corrupt or not what the caller needs."""


class DataTypeError(DataError, TypeError):
    """Data of a non-numeric dtype."""


class ArgumentTypeError(TypeError, ValueError):
    """An argument of the wrong type (a string or a float where a count belongs, ...)."""


_SCALARS = (bool, int, float, complex, np.generic, type(None))


def describe(value, max_items=4) -> str:
    """A short description of ``value`` for an error message: the value itself when it is
    a scalar, a short string or a list of at most ``max_items`` scalars; else its type and
    shape and dtype (arrays, tensors) or length (lists, tuples).

    Messages must never hold a whole data set: a list of 60,000 images passed where a count
    belongs would otherwise be printed in full.
    """
    if isinstance(value, _SCALARS):
        return repr(value)
    if isinstance(value, str):
        return repr(value) if len(value) <= 40 else repr(value[:37] + "...")
    if isinstance(value, (list, tuple)) and len(value) <= max_items and all(
            isinstance(v, _SCALARS) or (isinstance(v, str) and len(v) <= 20) for v in value):
        return repr(value)
    kind = type(value).__name__
    article = "an" if kind[:1].lower() in "aeiou" or kind == "ndarray" else "a"
    shape, dtype = getattr(value, "shape", None), getattr(value, "dtype", None)
    if shape is not None and dtype is not None:           # numpy arrays, tensors
        return f"{article} {kind} of shape {tuple(shape)} and dtype {dtype}"
    if isinstance(value, (list, tuple)):
        return f"{article} {kind} of {len(value)} items"
    return f"{article} {kind}"


def is_concrete(x) -> bool:
    """True for data whose values can be read now (arrays, lists, eager tensors); False for
    symbolic tensors (inside ``train_step`` or a ``tf.function``) and Keras' symbolic
    inputs, which only their static shape describes."""
    if tf.is_tensor(x):
        return tf.executing_eagerly() and hasattr(x, "numpy")
    return isinstance(x, (np.ndarray, list, tuple, numbers.Number))


def is_int(value) -> bool:
    """True for Python and NumPy integers, False for ``bool`` and everything else."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def check_positive_int(value, name, minimum=1) -> int:
    """Returns ``int(value)``; raises unless it is an integer >= ``minimum``.

    Raises:
        ArgumentTypeError: for anything but an integer (``1.5``, ``"3"``, ``True``, None).
        ValueError: for an integer below ``minimum``.
    """
    if not is_int(value):
        raise ArgumentTypeError(f"{name} must be an integer >= {minimum}; got "
                                f"{describe(value)} ({type(value).__name__}).")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {describe(value)}.")
    return int(value)


def check_nonneg_int(value, name) -> int:
    """:func:`check_positive_int` with minimum 0 (a number of steps that may be none)."""
    return check_positive_int(value, name, minimum=0)


def check_int_sequence(values, name, *, item=None, minimum=1, min_length=1,
                       length=None) -> list:
    """Returns ``[int(v) for v in values]``; each an integer >= ``minimum``.

    ``values`` must be a list or tuple (or 1-D integer array) of at least ``min_length``
    items, or exactly ``length`` when given. ``item`` names one entry in messages (e.g.
    ``"layer size"``; default ``"each entry of <name>"``).
    """
    if isinstance(values, np.ndarray) and values.ndim == 1:
        values = values.tolist()
    if not isinstance(values, (list, tuple)):
        raise ArgumentTypeError(f"{name} must be a list or tuple of integers; got "
                                f"{describe(values)}.")
    if length is not None and len(values) != length:
        raise ValueError(f"{name} must hold {length} integers; got {len(values)}: "
                         f"{describe(values)}.")
    if len(values) < min_length:
        raise ValueError(f"{name} must hold at least {min_length} integers; got "
                         f"{len(values)}: {describe(values)}.")
    item = item or f"each entry of {name}"
    for i, v in enumerate(values):
        if not is_int(v):
            raise ArgumentTypeError(f"{item} must be an integer >= {minimum}; got "
                                    f"{describe(v)} ({type(v).__name__}) as {name}[{i}] in "
                                    f"{name}={describe(values)}.")
        if v < minimum:
            raise ValueError(f"{item} must be an integer >= {minimum}; got {describe(v)} as "
                             f"{name}[{i}] in {name}={describe(values)}.")
    return [int(v) for v in values]


def check_seed(seed, name="seed", *, allow_none=False):
    """Returns ``int(seed)`` (or None when ``allow_none``): a seed is an integer >= 0, as
    NumPy's generators require; ``bool``, floats and strings are refused."""
    if seed is None and allow_none:
        return None
    if not is_int(seed):
        allowed = "None or an integer >= 0" if allow_none else "an integer >= 0"
        raise ArgumentTypeError(f"{name} must be {allowed}; got {describe(seed)} "
                                f"({type(seed).__name__}).")
    if seed < 0:
        raise ValueError(f"{name} must be an integer >= 0; got {seed}.")
    return int(seed)


def check_bool(value, name) -> bool:
    """Returns ``bool(value)`` for ``True``/``False`` (NumPy's too); refuses strings such as
    ``"no"`` and numbers, which ``bool()`` would silently read as a flag."""
    if not isinstance(value, (bool, np.bool_)):
        raise ArgumentTypeError(f"{name} must be True or False; got {describe(value)} "
                                f"({type(value).__name__}).")
    return bool(value)


def _real_number(value):
    """float(value) for a real number (Python, NumPy, or a 0-d array or tensor), else None."""
    if isinstance(value, (bool, np.bool_)):
        return None
    if isinstance(value, numbers.Real):
        return float(value)
    if getattr(value, "shape", None) is not None and tuple(value.shape) == () and \
            getattr(value, "dtype", None) is not None:
        array = np.asarray(value)
        if array.dtype.kind in "iuf":
            return float(array)
    return None


def check_finite_float(value, name, *, above=None, at_least=None, below=None,
                       at_most=None) -> float:
    """Returns ``float(value)``: a finite real number within the given bounds.

    Args:
        value: a Python or NumPy number, or a 0-d array or tensor (``bool`` is refused).
        name: the argument's name, for messages.
        above, at_least, below, at_most: optional strict (``above``, ``below``) and
            inclusive (``at_least``, ``at_most``) bounds.

    Raises:
        ArgumentTypeError: if ``value`` is not a real number.
        ValueError: if it is NaN, infinite or out of bounds.
    """
    low = (above, "(") if above is not None else (at_least, "[")
    high = (below, ")") if below is not None else (at_most, "]")
    if low[0] is not None and high[0] is not None:
        expected = f"in {low[1]}{low[0]:g}, {high[0]:g}{high[1]} (a finite number)"
    elif above == 0 and high[0] is None:
        expected = "positive (a finite number > 0)"
    elif low[0] is not None:
        expected = f"a finite number {'>' if above is not None else '>='} {low[0]:g}"
    elif high[0] is not None:
        expected = f"a finite number {'<' if below is not None else '<='} {high[0]:g}"
    else:
        expected = "a finite number"
    number = _real_number(value)
    if number is None:
        raise ArgumentTypeError(f"{name} must be {expected}; got {describe(value)} "
                                f"({type(value).__name__}).")
    if not (math.isfinite(number)
            and (above is None or number > above) and (at_least is None or number >= at_least)
            and (below is None or number < below) and (at_most is None or number <= at_most)):
        raise ValueError(f"{name} must be {expected}; got {describe(value)}.")
    return number


def check_interval(pair, name) -> tuple:
    """Returns ``(low, high)`` as floats: a pair of finite numbers with ``low < high``."""
    expected = f"{name} must be a pair (low, high) of finite numbers with low < high"
    if not isinstance(pair, (list, tuple, np.ndarray)) or len(pair) != 2:
        raise ValueError(f"{expected}; got {describe(pair)}.")
    low, high = (_real_number(b) for b in pair)
    if low is None or high is None:
        raise ArgumentTypeError(f"{expected}; got {describe(pair)}.")
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise ValueError(f"{expected}; got {describe(pair)}.")
    return low, high


def check_finite_array(x, name, *, shape=None, dtype="float32") -> np.ndarray:
    """Returns ``x`` as a ``dtype`` array: numeric, of ``shape`` (when given), no NaN or inf."""
    try:
        arr = np.asarray(x)
    except (ValueError, TypeError) as err:       # ragged nested lists
        raise DataError(f"{name} must be a numeric array; got {describe(x)} that NumPy "
                        f"cannot read as one ({type(err).__name__}).") from None
    if arr.dtype.kind not in "biuf":
        raise DataTypeError(f"{name} must be numeric; got dtype {arr.dtype} "
                            f"(shape {arr.shape}).")
    if shape is not None and arr.shape != tuple(shape):
        raise DataError(f"{name} must have shape {tuple(shape)}; got shape {arr.shape}.")
    arr = arr.astype(dtype, copy=False)
    finite = np.isfinite(arr)
    if not finite.all():
        bad = arr[~finite]
        raise DataError(f"{name} must be finite; got {bad.size} NaN or inf values "
                        f"(such as {bad[:3].tolist()}).")
    return arr


def check_increasing_schedule(values, name, *, start=0.0, stop=1.0, strict=True) -> np.ndarray:
    """Returns a float32 schedule: 1-D, at least two finite values, from ``start`` to
    ``stop``, increasing (strictly, unless ``strict`` is False). The inverse temperatures
    of annealed importance sampling are such a schedule (0 to 1, strictly increasing)."""
    arr = check_finite_array(values, name)
    if arr.ndim != 1 or len(arr) < 2:
        raise DataError(f"{name} must be a 1-D schedule of at least two values from {start:g} "
                        f"to {stop:g}; got shape {arr.shape}.")
    if arr[0] != start or arr[-1] != stop:
        raise DataError(f"{name} must start at {start:g} and end at {stop:g}; got "
                        f"{len(arr)} values from {arr[0]:g} to {arr[-1]:g}.")
    steps = np.diff(arr)
    bad = np.flatnonzero(steps <= 0 if strict else steps < 0)
    if bad.size:
        i = int(bad[0])
        kind = "strictly increasing" if strict else "non-decreasing"
        raise DataError(f"{name} must be {kind} from {start:g} to {stop:g}; got "
                        f"{name}[{i}] = {arr[i]:g} followed by {name}[{i + 1}] = "
                        f"{arr[i + 1]:g} ({bad.size} such step(s) in all).")
    return arr


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
        DataTypeError: if ``x`` is not real-valued numeric (a ``DataError`` and a
            ``TypeError``).
        DataError: if ``x`` is not 2-D, empty, of the wrong width, not finite,
            or (with ``binary``) holds values other than 0 and 1.
    """
    try:
        arr = np.asarray(x)
    except (ValueError, TypeError) as err:       # ragged nested lists
        raise DataError(f"{name} must be a 2-D numeric array (n, d); got {describe(x)} "
                        f"that NumPy cannot read as one ({type(err).__name__}: rows of "
                        "different lengths?).") from None
    if arr.dtype.kind not in "biuf":
        raise DataTypeError(f"{name} must be real-valued numeric; got dtype {arr.dtype} "
                            f"(shape {arr.shape}).")
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


FLOAT32_ONLY = ("computes in float32 only: its sampling and energies gain nothing from "
                "float16 and lose the precision that free energies and log-partition "
                "functions need")


def float32_only(kwargs, name):
    """``kwargs`` for ``keras.Model.__init__`` with the float32 dtype policy, whatever the
    global policy (``mixed_float16`` included): for models that keep float32 variables and
    compute. Refuses an explicit ``dtype`` that is not float32."""
    dtype = kwargs.get("dtype")
    if dtype is not None:
        try:
            policy = keras.dtype_policies.get(dtype)
        except (TypeError, ValueError) as error:
            raise ValueError(f"{name} {FLOAT32_ONLY}; got dtype={describe(dtype)}.") from error
        if policy.name != "float32":
            raise ValueError(f"{name} {FLOAT32_ONLY}; got dtype={policy.name!r}. Build it "
                             "without a dtype (it keeps float32 under a mixed-precision "
                             "global policy).")
    return {**kwargs, "dtype": "float32"}
