"""Synthetic toys: bars and stripes, whitened Laplace sources, 2-D densities."""

import math

import numpy as np
import pytest

from course_lib.data import toy as toy_data


def test_bars_and_stripes():
    x = toy_data.bars_and_stripes(4)
    assert x.shape == (30, 16) and x.dtype == np.float32
    assert len(np.unique(x, axis=0)) == 30
    images = x.reshape(-1, 4, 4)
    row_constant = (images == images[:, :, :1]).all(axis=(1, 2))
    col_constant = (images == images[:, :1, :]).all(axis=(1, 2))
    assert (row_constant | col_constant).all()
    assert (row_constant & col_constant).sum() == 2  # all-off and all-on
    assert len(toy_data.bars_and_stripes(3)) == 14
    assert toy_data.bars_and_stripes_optimum(4) == pytest.approx(-math.log(30))
    assert toy_data.bars_and_stripes_optimum(4) == pytest.approx(-3.4012, abs=1e-4)


def test_laplace_sources_whitened():
    z = toy_data.laplace_sources_2d(50000, seed=0).astype(np.float64)
    assert z.shape == (50000, 2)
    np.testing.assert_allclose(np.cov(z.T, bias=True), np.eye(2), atol=1e-5)
    np.testing.assert_allclose(z.mean(axis=0), 0, atol=1e-5)
    angles = np.linspace(0, np.pi, 180, endpoint=False)
    proj = z @ np.stack([np.cos(angles), np.sin(angles)])
    excess_kurtosis = (proj**4).mean(axis=0) / (proj**2).mean(axis=0) ** 2 - 3
    assert excess_kurtosis.max() > 2.0  # a Laplace source direction (3 in theory)
    mixed = toy_data.laplace_sources_2d(50000, seed=0, whiten=False)
    assert not np.allclose(np.cov(mixed.T), np.eye(2), atol=0.05)
    np.testing.assert_array_equal(z, toy_data.laplace_sources_2d(50000, seed=0))


def test_laplace_optimum_matches_entropy():
    try:
        from scipy import stats

        entropy = 2 * stats.laplace(scale=1 / np.sqrt(2)).entropy()
    except ImportError:
        b = 1 / np.sqrt(2)
        s = np.linspace(-40 * b, 40 * b, 400_001)
        density = np.exp(-np.abs(s) / b) / (2 * b)
        entropy = 2 * -np.sum(density * np.log(density)) * (s[1] - s[0])
    assert toy_data.LAPLACE_2D_OPTIMUM_LL == pytest.approx(-entropy, abs=1e-6)
    assert toy_data.LAPLACE_2D_OPTIMUM_LL == pytest.approx(-2.6931, abs=1e-4)


@pytest.mark.parametrize("name", toy_data.TOY_2D_NAMES)
def test_toy_2d(name):
    x = toy_data.toy_2d(name, 500, seed=0)
    assert x.shape == (500, 2) and x.dtype == np.float32 and np.isfinite(x).all()
    assert np.abs(x).max() < 5
    np.testing.assert_array_equal(x, toy_data.toy_2d(name, 500, seed=0))
    assert not np.array_equal(x, toy_data.toy_2d(name, 500, seed=1))


def test_moons_lie_on_scikit_learns_two_half_circles():
    """The oracle is sklearn.datasets.make_moons without noise: 20,000 points on its two half
    circles. Our noise is N(0, 0.05^2 I), so each sample lies within a few 0.05 of those
    curves (its distance is about the normal component of the noise), both moons are
    covered end to end, and each holds about half of the samples."""
    from sklearn.datasets import make_moons
    from sklearn.neighbors import NearestNeighbors

    curve, moon = make_moons(n_samples=20_000, noise=0.0, shuffle=False)
    n = 4000
    x = toy_data.toy_2d("moons", n, seed=0).astype(np.float64)
    distance, nearest = NearestNeighbors(n_neighbors=1).fit(curve).kneighbors(x)
    distance, nearest = distance[:, 0], nearest[:, 0]
    assert distance.max() < 5 * 0.05
    assert 0.03 < math.sqrt(np.mean(distance**2)) <= 0.05 * 1.05     # the noise's scale
    coverage, _ = NearestNeighbors(n_neighbors=1).fit(x).kneighbors(curve)
    assert coverage.max() < 0.1                                      # no stretch left out
    lower = moon[nearest].mean()
    assert abs(lower - 0.5) < 5 * math.sqrt(0.25 / n), lower


def test_toy_2d_shapes_of_the_densities():
    grid = toy_data.toy_2d("gmm_grid", 2000, seed=0)
    assert np.abs(grid - np.round(grid)).max() < 0.35
    board = toy_data.toy_2d("checkerboard", 2000, seed=0)
    assert ((np.floor(board).sum(axis=1)) % 2 == 0).all()
    r = np.linalg.norm(toy_data.toy_2d("8gaussians", 2000, seed=0), axis=1)
    assert abs(np.median(r) - 2) < 0.1
    # PacGAN's protocol, written out: the ring's 8 centres at angles 2 pi k / 8 on the unit
    # circle, std 0.01; the grid's 25 centres on {-4, -2, 0, 2, 4}^2, std 0.05.
    ring, ring_std = toy_data.toy_2d_modes("ring8")
    np.testing.assert_allclose(ring, [[np.cos(np.pi * k / 4), np.sin(np.pi * k / 4)]
                                      for k in range(8)], atol=1e-7)
    grid_centres, grid_std = toy_data.toy_2d_modes("grid25")
    assert sorted(map(tuple, grid_centres.tolist())) == [(float(a), float(b))
                                                         for a in (-4, -2, 0, 2, 4)
                                                         for b in (-4, -2, 0, 2, 4)]
    assert (ring_std, grid_std) == (0.01, 0.05)
    for name, centres, std in (("ring8", ring, ring_std), ("grid25", grid_centres, grid_std)):
        x = toy_data.toy_2d(name, 4000, seed=1)
        offset = x - centres[np.argmin(((x[:, None] - centres) ** 2).sum(-1), axis=1)]
        assert abs(offset.std() / std - 1) < 0.05        # sd of 8,000 normal draws: 1.1%
        assert abs(offset.mean()) < 5 * std / np.sqrt(8000)
    with pytest.raises(ValueError, match="'moons'.*'gmm_grid'"):
        toy_data.toy_2d("swiss_roll", 10, seed=0)


# ----- check_images -----------------------------------------------------------------------
