"""The shared validators of course_lib.checks: what they accept, what they return, and that
their messages say what was expected and what arrived, without the data themselves."""

import math

import numpy as np
import pytest
import tensorflow as tf

from course_lib.checks import (
    ArgumentTypeError,
    DataError,
    DataTypeError,
    check_bool,
    check_finite_array,
    check_finite_float,
    check_images,
    check_increasing_schedule,
    check_int_sequence,
    check_interval,
    check_nonneg_int,
    check_positive_int,
    check_probabilities,
    check_seed,
    describe,
    is_concrete,
)


def test_describe_shows_scalars_and_summarizes_everything_else():
    assert describe(1.5) == "1.5" and describe(None) == "None" and describe("ab") == "'ab'"
    assert describe([1, 2]) == "[1, 2]"
    assert describe(list(range(10_000))) == "a list of 10000 items"
    assert describe(np.zeros((3, 4))) == "an ndarray of shape (3, 4) and dtype float64"
    assert len(describe("x" * 10_000)) < 50


@pytest.mark.parametrize("value, error", [(0, ValueError), (-3, ValueError),
                                          (1.5, ArgumentTypeError), (True, ArgumentTypeError),
                                          (None, ArgumentTypeError), ("3", ArgumentTypeError),
                                          (np.arange(10_000), ArgumentTypeError)])
def test_check_positive_int_refuses_non_integers_and_small_values(value, error):
    with pytest.raises(error, match=r"^k must be an integer >= 1; got") as info:
        check_positive_int(value, "k")
    assert len(str(info.value)) < 120


def test_integer_checks_accept_numpy_integers_and_return_python_ints():
    assert check_positive_int(np.int64(3), "k") == 3 and type(check_nonneg_int(0, "k")) is int
    assert check_seed(np.uint32(7)) == 7 and check_seed(None, allow_none=True) is None
    assert check_int_sequence(np.array([3, 4]), "sizes") == [3, 4]
    with pytest.raises(ValueError, match="seed must be an integer >= 0; got -1"):
        check_seed(-1)
    with pytest.raises(TypeError, match="seed must be an integer >= 0; got None"):
        check_seed(None)
    with pytest.raises(ValueError, match=r"sizes\[1\] in sizes=\[3, 0\]"):
        check_int_sequence([3, 0], "sizes")
    with pytest.raises(ValueError, match="must hold 2 integers"):
        check_int_sequence([3], "shape", length=2)


def test_type_errors_are_also_value_errors():
    """Code written to catch ValueError for a bad count keeps working."""
    with pytest.raises(ValueError):
        check_positive_int("3", "k")
    assert issubclass(ArgumentTypeError, TypeError)


@pytest.mark.parametrize("kwargs, value, match", [
    (dict(above=0.0), 0.0, r"x must be positive \(a finite number > 0\); got 0.0"),
    (dict(at_least=0.0, below=1.0), 1.0, r"x must be in \[0, 1\) \(a finite number\); got 1.0"),
    (dict(at_least=0.0, at_most=1.0), -0.5, r"in \[0, 1\]"),
    (dict(at_least=0.0), math.nan, "x must be a finite number >= 0; got nan"),
    ({}, math.inf, "x must be a finite number; got inf"),
])
def test_check_finite_float_names_the_bounds(kwargs, value, match):
    with pytest.raises(ValueError, match=match):
        check_finite_float(value, "x", **kwargs)


def test_check_finite_float_accepts_numbers_and_scalar_tensors_only():
    assert check_finite_float(np.float32(2.5), "x") == 2.5
    assert check_finite_float(tf.constant(2.0), "x") == 2.0
    assert check_finite_float(np.array(3), "x") == 3.0
    for bad in (True, "1.0", None, [1.0], np.zeros(2)):
        with pytest.raises(ArgumentTypeError, match="x must be a finite number"):
            check_finite_float(bad, "x")


def test_check_bool_refuses_what_bool_would_guess():
    assert check_bool(np.bool_(True), "flag") is True
    for bad in ("no", 0, None):
        with pytest.raises(TypeError, match="flag must be True or False"):
            check_bool(bad, "flag")


def test_check_interval():
    assert check_interval((-1, 2.5), "r") == (-1.0, 2.5)
    for bad in ((1.0, 1.0), (math.nan, 1.0), (0.0,), 5.0):
        with pytest.raises(ValueError, match=r"r must be a pair \(low, high\)"):
            check_interval(bad, "r")


def test_check_finite_array():
    np.testing.assert_array_equal(check_finite_array([1, 2], "b", shape=(2,)), [1.0, 2.0])
    with pytest.raises(DataError, match=r"b must have shape \(3,\); got shape \(2,\)"):
        check_finite_array([1, 2], "b", shape=(3,))
    with pytest.raises(DataError, match="b must be finite; got 1 NaN or inf"):
        check_finite_array([1, np.nan], "b")
    with pytest.raises(DataTypeError, match="b must be numeric"):
        check_finite_array(["a"], "b")


@pytest.mark.parametrize("betas, match", [
    ([0.0, np.nan, 1.0], "must be finite"),
    ([0.0, 0.5, 0.5, 1.0], r"strictly increasing.*betas\[1\] = 0.5 followed by betas\[2\]"),
    ([0.2, 1.0], "start at 0 and end at 1"),
    ([[0.0, 1.0]], "1-D schedule"),
])
def test_check_increasing_schedule(betas, match):
    with pytest.raises(ValueError, match=match):
        check_increasing_schedule(betas, "betas")


def test_non_strict_schedules_may_repeat_a_value():
    out = check_increasing_schedule([0.0, 0.5, 0.5, 1.0], "betas", strict=False)
    assert out.dtype == np.float32 and len(out) == 4


def test_image_checks_refuse_complex_and_ragged_input_and_never_print_the_data():
    with pytest.raises(DataTypeError, match="real-valued"):
        check_images(np.ones((2, 3), complex))
    with pytest.raises(DataError, match="rows of different lengths") as info:
        check_probabilities([[0.0] * 10, [1.0] * 9] * 500)
    assert len(str(info.value)) < 300
    with pytest.raises(DataError, match=r"\[0, 1\]; got values in \[2, 2\]") as info:
        check_probabilities([[2.0] * 10] * 1000)
    assert len(str(info.value)) < 300


def test_is_concrete():
    assert is_concrete(np.zeros(2)) and is_concrete([1]) and is_concrete(tf.zeros(2))
    seen = []
    tf.function(lambda t: seen.append(is_concrete(t)) or t)(tf.zeros(2))
    assert seen == [False]
