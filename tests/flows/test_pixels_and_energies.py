"""The pixel conventions against hand calculations and a finite-difference derivative, and
the energies against the paper's formulas written again in numpy and a closed-form
partition function."""

import math

import numpy as np
import pytest

from course_lib.checks import DataError
from course_lib.flows import energies, pixels


def test_dequantize_adds_the_seeded_uniform_to_the_levels():
    x = np.array([[0, 1, 254, 255]], "float32") / 255.0
    u = np.random.default_rng(7).uniform(size=(1, 4))
    np.testing.assert_allclose(pixels.dequantize(x, seed=7),
                               (np.array([[0, 1, 254, 255]]) + u) / 256, rtol=1e-6)
    np.testing.assert_array_equal(pixels.pixel_levels(np.array([[3, 200]], np.uint8)),
                                  [[3, 200]])
    with pytest.raises(DataError, match="already dequantised"):
        pixels.pixel_levels(pixels.dequantize(x, seed=0))


def test_logit_transform_and_its_log_det_by_hand():
    alpha = 0.05
    x = np.array([[0.5, 0.0, 1.0]])
    s = alpha + (1 - 2 * alpha) * x                       # 0.5, 0.05, 0.95
    np.testing.assert_allclose(pixels.logit_transform(x, alpha=alpha),
                               [[0.0, math.log(0.05 / 0.95), math.log(0.95 / 0.05)]],
                               rtol=1e-6)
    expected = sum(math.log(0.9 / (v * (1 - v))) for v in s[0])
    assert pixels.logit_log_det(x, alpha=alpha)[0] == pytest.approx(expected, rel=1e-12)
    # against a central finite difference of the transform, pixel by pixel
    x = np.random.default_rng(0).uniform(0.1, 0.9, (3, 5))
    h = 1e-3                       # the transform returns float32: a step well above its eps
    slope = (pixels.logit_transform(x + h, alpha=1e-6).astype(np.float64)
             - pixels.logit_transform(x - h, alpha=1e-6)) / (2 * h)
    np.testing.assert_allclose(pixels.logit_log_det(x), np.log(slope).sum(1), atol=2e-3)
    np.testing.assert_allclose(
        pixels.inverse_logit_transform(pixels.logit_transform(x)), x, atol=1e-6)


def test_conversions_reproduce_the_published_pairs_and_round_trip():
    """NICE's 1980.50 nats on [0, 1]^784 is 4.356 bits/dim (Dinh et al.); every pair of
    conventions round-trips; logit <-> unit moves by exactly the Jacobian."""
    bits = pixels.convert_log_likelihood(1980.50, source="unit", target="bits_per_dim", dim=784)
    assert float(bits) == pytest.approx(4.356, abs=5e-4)
    assert float(pixels.convert_log_likelihood(1980.50, source="unit", target="bytes",
                                               dim=784)) == pytest.approx(
        1980.50 - 784 * math.log(256))
    x = np.random.default_rng(1).uniform(0, 1, (4, 784))
    values = np.array([1000.0, 1500.0, -10.0, 3000.0])
    in_logit = pixels.convert_log_likelihood(values, source="unit", target="logit", dim=784,
                                             x=x)
    np.testing.assert_allclose(in_logit, values - pixels.logit_log_det(x))
    for source in pixels.CONVENTIONS:
        for target in pixels.CONVENTIONS:
            kwargs = dict(x=x) if "logit" in (source, target) and source != target else {}
            there = pixels.convert_log_likelihood(values, source=source, target=target,
                                                  dim=784, **kwargs)
            back = pixels.convert_log_likelihood(there, source=target, target=source,
                                                 dim=784, **kwargs)
            np.testing.assert_allclose(back, values, rtol=1e-12, err_msg=(source, target))
    with pytest.raises(ValueError, match="needs the pixels x"):
        pixels.convert_log_likelihood(values, source="logit", target="unit", dim=784)
    with pytest.raises(ValueError, match="one row per value"):
        pixels.convert_log_likelihood(values, source="logit", target="unit", dim=784,
                                      x=x[:3])


def numpy_energy(name, z):
    """Rezende & Mohamed's Table 1, written again from the paper."""
    z1, z2 = z[:, 0], z[:, 1]
    w1 = np.sin(2 * np.pi * z1 / 4)
    w2 = 3 * np.exp(-0.5 * ((z1 - 1) / 0.6) ** 2)
    w3 = 3 / (1 + np.exp(-(z1 - 1) / 0.3))
    if name == "U1":
        return (0.5 * ((np.linalg.norm(z, axis=1) - 2) / 0.4) ** 2
                - np.log(np.exp(-0.5 * ((z1 - 2) / 0.6) ** 2)
                         + np.exp(-0.5 * ((z1 + 2) / 0.6) ** 2)))
    if name == "U2":
        return 0.5 * ((z2 - w1) / 0.4) ** 2
    if name == "U3":
        return -np.log(np.exp(-0.5 * ((z2 - w1) / 0.35) ** 2)
                       + np.exp(-0.5 * ((z2 - w1 + w2) / 0.35) ** 2))
    return -np.log(np.exp(-0.5 * ((z2 - w1) / 0.4) ** 2)
                   + np.exp(-0.5 * ((z2 - w1 + w3) / 0.35) ** 2))


@pytest.mark.parametrize("name", energies.ENERGY_NAMES)
def test_energies_match_the_paper_inside_the_box_and_wall_it_off(name):
    z = np.random.default_rng(0).uniform(-4, 4, (500, 2))
    np.testing.assert_allclose(energies.energy(name, z), numpy_energy(name, z), rtol=1e-10,
                               atol=1e-10)
    outside = np.array([[4.5, 0.0], [0.0, -4.3]])
    walls = np.array([0.5**2, 0.3**2]) / (2 * 0.1**2)
    np.testing.assert_allclose(energies.energy(name, outside),
                               numpy_energy(name, outside) + walls, rtol=1e-10)


def test_log_partition_of_u2_has_a_closed_form():
    """U2 is Gaussian in z_2 (std 0.4, centre inside the box) for every z_1, and flat in z_1
    inside [-4, 4] with half-Gaussian walls (std 0.1) outside: Z = 0.4 sqrt(2 pi)
    (8 + 2 * 0.1 sqrt(pi / 2))."""
    expected = math.log(0.4 * math.sqrt(2 * math.pi) * (8 + 0.2 * math.sqrt(math.pi / 2)))
    assert energies.log_partition("U2") == pytest.approx(expected, abs=1e-4)
    assert energies.log_partition("U1", num_points=1001) == pytest.approx(
        energies.log_partition("U1"), abs=1e-4)
