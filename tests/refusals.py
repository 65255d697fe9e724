"""The check every argument test makes: a bad argument is refused with an exception of the
expected type whose message names the argument and shows the value received, briefly.

Shared by the ``test_arguments.py`` files (one per subpackage). Bad-value tables name the
exception each value must raise: a wrong *type* (a float where a count belongs, a string,
None, ``True``) raises ``TypeError``; a value of the right type out of its range raises
``ValueError``.
"""

import math

import pytest

from course_lib.checks import describe

NAN, INF = math.nan, math.inf

# (value, exception) tables, by kind of argument
BAD_COUNTS = [(0, ValueError), (-1, ValueError), (1.5, TypeError), (NAN, TypeError),
              (True, TypeError), (None, TypeError), ("3", TypeError)]
BAD_STEPS = [(-1, ValueError), (1.5, TypeError), (INF, TypeError), (True, TypeError),
             (None, TypeError), ("2", TypeError)]       # counts for which 0 is allowed
BAD_SEEDS = [(-1, ValueError), (1.5, TypeError), (True, TypeError), ("3", TypeError)]
BAD_REQUIRED_SEEDS = BAD_SEEDS + [(None, TypeError)]
BAD_POSITIVE = [(0.0, ValueError), (-1.0, ValueError), (NAN, ValueError), (INF, ValueError),
                (True, TypeError), (None, TypeError), ("a", TypeError)]
BAD_NONNEGATIVE = [(-1.0, ValueError), (NAN, ValueError), (INF, ValueError), (True, TypeError),
                   (None, TypeError), ("a", TypeError)]
BAD_FINITE = [(NAN, ValueError), (INF, ValueError), (-INF, ValueError), (True, TypeError),
              ("a", TypeError)]
BAD_FLAGS = [("no", TypeError), (1, TypeError), (None, TypeError)]
# verbose takes Keras' modes: "auto", 0, 1, 2 (and False, True); nothing else.
BAD_VERBOSE = [(3, ValueError), (-1, ValueError), ("yes", TypeError), (1.0, TypeError),
               (None, TypeError)]
# jit_compile takes compile()'s "auto", True or False; nothing else.
BAD_JIT = [("AUTO", ValueError), ("yes", ValueError), (1, ValueError), (None, ValueError)]


def expand(cases):
    """[(label, call, name, [(value, error), ...]), ...] -> pytest params, one per value."""
    return [pytest.param(call, name, value, error, id=f"{label}-{value!r}")
            for label, call, name, values in cases for value, error in values]


def assert_refused(call, name, value, error, *, shows_value=True):
    """``call()`` raises ``error``; the message names ``name`` and (unless ``shows_value``
    is False, for arrays) shows ``value`` as :func:`describe` writes it, in few words."""
    with pytest.raises(error) as info:
        call()
    message = str(info.value)
    assert name in message, message
    if shows_value:
        assert describe(value) in message, message
    assert len(message) < 400, message
