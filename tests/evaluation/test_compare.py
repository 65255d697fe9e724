"""paired_difference against a direct formula, and its refusals."""

import numpy as np
import pytest

from course_lib.checks import DataError
from course_lib.evaluation import paired_difference


def test_paired_difference_is_the_mean_and_standard_errors_of_the_differences():
    rng = np.random.default_rng(0)
    shared = rng.normal(-100.0, 20.0, size=1000)          # the images' own spread
    a, b = shared + 0.3 + rng.normal(0, 0.5, 1000), shared + rng.normal(0, 0.5, 1000)
    mean, err = paired_difference(a, b)
    d = a - b
    assert mean == pytest.approx(d.mean(), rel=1e-12)
    assert err == pytest.approx(3 * np.std(d, ddof=1) / np.sqrt(1000), rel=1e-12)
    # Pairing removes the shared spread: the unpaired error bar would be about 40 times wider.
    assert err < 0.1 and mean - err > 0
    assert paired_difference(a, b, num_sigma=1.0)[1] == pytest.approx(err / 3)


@pytest.mark.parametrize("a, b, error", [
    (np.ones(5), np.ones(4), DataError),
    (np.ones(1), np.ones(1), ValueError),
    (np.ones((2, 2)), np.ones((2, 2)), ValueError),
    ([1.0, np.nan], [1.0, 2.0], DataError),
])
def test_paired_difference_refuses_unpaired_or_bad_values(a, b, error):
    with pytest.raises(error):
        paired_difference(a, b)


@pytest.mark.parametrize("num_sigma", [0.0, -1.0, np.inf])
def test_paired_difference_refuses_a_bad_width(num_sigma):
    with pytest.raises(ValueError, match="num_sigma"):
        paired_difference([1.0, 2.0], [0.0, 0.5], num_sigma=num_sigma)
