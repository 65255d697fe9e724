"""Every public function of course_lib.data refuses bad arguments with a message that names
the argument and shows the value (seeds, counts, flags, paths), before any file is read."""

import numpy as np
import pytest
from refusals import (
    BAD_COUNTS,
    BAD_FLAGS,
    BAD_REQUIRED_SEEDS,
    BAD_SEEDS,
    assert_refused,
    expand,
)

from course_lib import data
from course_lib.data import toy

X01 = np.random.default_rng(0).random((10, 4)).astype("float32")

CASES = [
    ("bars_and_stripes", lambda v: toy.bars_and_stripes(v), "n",
     BAD_COUNTS + [(40, ValueError)]),
    ("bars_and_stripes_optimum", lambda v: toy.bars_and_stripes_optimum(v), "n", BAD_COUNTS),
    ("laplace_sources_2d", lambda v: toy.laplace_sources_2d(v, seed=0), "n",
     [(1, ValueError), (2.5, TypeError)]),
    ("laplace_sources_2d", lambda v: toy.laplace_sources_2d(10, seed=v), "seed",
     BAD_REQUIRED_SEEDS),
    ("laplace_sources_2d", lambda v: toy.laplace_sources_2d(10, seed=0, whiten=v), "whiten",
     BAD_FLAGS),
    ("toy_2d", lambda v: toy.toy_2d("moons", v, seed=0), "n", BAD_COUNTS),
    ("toy_2d", lambda v: toy.toy_2d("moons", 10, seed=v), "seed", BAD_REQUIRED_SEEDS),
    ("toy_2d", lambda v: toy.toy_2d(v, 10, seed=0), "name", [(["moons"], ValueError),
                                                             ("moon", ValueError)]),
    ("binarize", lambda v: data.binarize(X01, "dynamic", seed=v), "seed", BAD_SEEDS),
    ("binarize", lambda v: data.binarize(X01, "fixed", seed=v), "seed",
     [(-1, ValueError), (1.5, ValueError), (None, ValueError)]),
    ("binarize", lambda v: data.binarize(X01, v), "convention", [(None, ValueError),
                                                                  (["fixed"], ValueError)]),
    ("DynamicBinarization", lambda v: data.DynamicBinarization(X01, v, seed=0), "batch_size",
     BAD_COUNTS),
    ("DynamicBinarization", lambda v: data.DynamicBinarization(X01, 2, seed=v), "seed",
     BAD_REQUIRED_SEEDS),
    ("DynamicBinarization", lambda v: data.DynamicBinarization(X01, 2, seed=0, shuffle=v),
     "shuffle", BAD_FLAGS),
    ("DynamicBinarization[]", lambda v: data.DynamicBinarization(X01, 2, seed=0)[v],
     "batch index", [(1.5, TypeError), ("0", TypeError)]),
    ("mnist_splits", lambda v: data.mnist_splits(seed=v, allow_download=False), "seed",
     [(-1, ValueError), (1.5, ValueError), (True, ValueError)]),
    ("mnist_splits", lambda v: data.mnist_splits(flatten=v, allow_download=False), "flatten",
     BAD_FLAGS),
    ("find_mnist", lambda v: data.find_mnist(v), "path", [(5, TypeError), (["a"], TypeError)]),
    ("find_mnist", lambda v: data.find_mnist(allow_download=v), "allow_download", BAD_FLAGS),
    ("load_mnist", lambda v: data.load_mnist(verify=v, allow_download=False), "verify",
     BAD_FLAGS),
]


@pytest.mark.parametrize("call, name, value, error", expand(CASES))
def test_bad_arguments_are_refused(call, name, value, error):
    assert_refused(lambda: call(value), name, value, error)


def test_ragged_or_huge_inputs_give_short_messages():
    with pytest.raises(data.DataError, match="cannot read as one array") as info:
        data.binarize([[0.5] * 3, [0.5] * 2] * 500, "threshold")
    assert len(str(info.value)) < 300
    with pytest.raises(data.DataError) as info:
        data.binarize([[2.0] * 10] * 1000, "threshold")
    assert len(str(info.value)) < 300
