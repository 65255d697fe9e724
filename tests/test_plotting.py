"""Tests of course_lib.plotting: mosaic arithmetic, titles, labels, legends and errors."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from course_lib import plotting  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def labelled(fig, ax=None):
    ax = ax or fig.axes[0]
    assert isinstance(fig, Figure)
    assert ax.get_title().strip()
    assert ax.get_xlabel().strip() and ax.get_ylabel().strip()
    return ax


def shown_array(ax):
    return np.ma.filled(ax.get_images()[0].get_array(), np.nan)


# ----- tile_images ---------------------------------------------------------------------------


def test_tile_images_shape_and_pixel_positions():
    images = np.zeros((7, 3, 4))
    for k in range(7):
        images[k, 1, 2] = k + 10  # one marked pixel per image
    mosaic = plotting.tile_images(images, ncols=3, padding=2, pad_value=-1.0)
    # 3 rows of height 3 with 2 gaps of 2; 3 columns of width 4 with 2 gaps of 2.
    assert mosaic.shape == (3 * 3 + 2 * 2, 3 * 4 + 2 * 2)
    for k in range(7):
        r, c = divmod(k, 3)
        assert mosaic[r * 5 + 1, c * 6 + 2] == k + 10
    assert mosaic[3, 0] == -1.0 and mosaic[0, 4] == -1.0  # separators
    assert np.all(mosaic[10:, 6:] == -1.0)  # the two empty slots of the last row
    assert np.count_nonzero(mosaic >= 10) == 7


def test_tile_images_flat_rows_and_few_images():
    flat = np.arange(2 * 6, dtype=float).reshape(2, 6)
    mosaic = plotting.tile_images(flat, image_shape=(2, 3), ncols=10, padding=0)
    assert mosaic.shape == (2, 6)  # only as many columns as images
    np.testing.assert_array_equal(mosaic[:, :3], flat[0].reshape(2, 3))
    np.testing.assert_array_equal(mosaic[:, 3:], flat[1].reshape(2, 3))


@pytest.mark.parametrize("kwargs, match", [
    (dict(images=np.zeros((4, 6))), "image_shape"),
    (dict(images=np.zeros((4, 6)), image_shape=(2, 2)), "d=6"),
    (dict(images=np.zeros(5)), r"\(n, h, w\)"),
    (dict(images=np.zeros((0, 2, 2))), "empty"),
    (dict(images=np.zeros((2, 2, 2)), image_shape=(3, 3)), "image_shape"),
    (dict(images=np.zeros((2, 2, 2)), ncols=0), "ncols"),
    (dict(images=np.zeros((2, 2, 2)), padding=-1), "padding"),
])
def test_tile_images_rejects_bad_input(kwargs, match):
    images = kwargs.pop("images")
    with pytest.raises(ValueError, match=match):
        plotting.tile_images(images, **kwargs)


def test_tile_images_rejects_non_numeric():
    with pytest.raises(TypeError, match="numeric"):
        plotting.tile_images(np.array([[["a"]]]))


# ----- image grids and filters ---------------------------------------------------------------


def test_plot_image_grid_shows_the_mosaic_with_title_and_labels():
    images = np.random.default_rng(0).random((12, 16))
    fig = plotting.plot_image_grid(images, image_shape=(4, 4), ncols=5, title="12 test images")
    ax = labelled(fig)
    assert ax.get_title() == "12 test images"
    expected = plotting.tile_images(images, image_shape=(4, 4), ncols=5, pad_value=1.0)
    np.testing.assert_allclose(shown_array(ax), expected)
    assert "5 per row" in ax.get_xlabel()


def test_plot_image_grid_draws_into_a_given_axes_and_needs_a_title():
    fig, axes = plt.subplots(1, 2)
    out = plotting.plot_image_grid(np.zeros((3, 5, 5)), title="zeros", ax=axes[1])
    assert out is fig and axes[1].get_title() == "zeros" and not axes[0].get_title()
    with pytest.raises(ValueError, match="title"):
        plotting.plot_image_grid(np.zeros((3, 5, 5)), title="  ")
    with pytest.raises(TypeError, match="Axes"):
        plotting.plot_image_grid(np.zeros((3, 5, 5)), title="t", ax="left")


def test_plot_filters_scales_each_filter_to_its_own_range():
    rng = np.random.default_rng(1)
    W = rng.normal(size=(6, 5)) * np.array([1.0, 10.0, 0.1, 3.0, 0.0])  # one all-zero filter
    fig = plotting.plot_filters(W, image_shape=(2, 3), num_filters=4, ncols=2)
    ax = labelled(fig)
    assert "4 of 5" in ax.get_title()
    shown = shown_array(ax)
    assert shown.shape == (2 * 2 + 1, 2 * 3 + 1)
    for k in range(4):
        r, c = divmod(k, 2)
        tile = shown[r * 3:r * 3 + 2, c * 4:c * 4 + 3]
        expected = W[:, k].reshape(2, 3) / np.abs(W[:, k]).max()
        np.testing.assert_allclose(tile, expected)
    assert np.isnan(shown[2, 0])  # separators are drawn grey (masked)
    image = ax.get_images()[0]
    assert image.get_clim() == (-1.0, 1.0)
    zero = plotting.plot_filters(np.zeros((4, 1)), image_shape=(2, 2), title="zero W")
    assert np.all(shown_array(zero.axes[0]) == 0.0)


def test_plot_filters_rejects_bad_weights():
    with pytest.raises(ValueError, match=r"\(D, H\)"):
        plotting.plot_filters(np.zeros(6), image_shape=(2, 3))
    with pytest.raises(ValueError, match="d=6"):
        plotting.plot_filters(np.zeros((6, 2)), image_shape=(28, 28))
    with pytest.raises(ValueError, match="NaN"):
        plotting.plot_filters(np.full((6, 2), np.nan), image_shape=(2, 3))


# ----- curves --------------------------------------------------------------------------------


def test_plot_curves_legend_and_reference_lines():
    xs = np.arange(5)
    fig = plotting.plot_curves(
        {"CD-1": (xs, -100 + xs), "PCD": (xs, -95 + xs)}, xlabel="parameter updates",
        ylabel="mean log p(v) (nats)", title="Test log-likelihood",
        reference_lines={"published": -86.34})
    ax = labelled(fig)
    assert ax.get_xlabel() == "parameter updates"
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["CD-1", "PCD", "published (-86.34)"]
    lines = {line.get_label(): line for line in ax.get_lines()}
    np.testing.assert_array_equal(lines["PCD"].get_ydata(), -95 + xs)
    reference = lines["published (-86.34)"]
    assert reference.get_linestyle() == "--"
    assert np.all(np.asarray(reference.get_ydata()) == -86.34)


@pytest.mark.parametrize("curves, reference_lines, match", [
    ({}, None, "non-empty dict"),
    ({"a": ([1, 2], [1])}, None, "same non-zero length"),
    ({"a": [1, 2, 3]}, None, "pair"),
    ({"a": ([1], [1])}, {"paper": float("nan")}, "finite"),
    ({"a": ([1], [1])}, {"paper": "high"}, "finite"),
])
def test_plot_curves_rejects_bad_input(curves, reference_lines, match):
    with pytest.raises(ValueError, match=match):
        plotting.plot_curves(curves, xlabel="x", ylabel="y", title="t",
                             reference_lines=reference_lines)


def test_plot_curves_requires_axis_labels():
    with pytest.raises(ValueError, match="ylabel"):
        plotting.plot_curves({"a": ([1], [1])}, xlabel="x", ylabel="", title="t")


# ----- chains --------------------------------------------------------------------------------


def test_plot_chain_snapshots_rows_are_chains_columns_are_steps():
    T, n = 4, 3
    snapshots = np.zeros((T, n, 6))
    for t in range(T):
        for j in range(n):
            snapshots[t, j, 0] = 0.1 * t + 0.01 * j + 0.5  # top-left pixel encodes (t, j)
    fig = plotting.plot_chain_snapshots(snapshots, image_shape=(2, 3), steps=[1, 10, 100, 1000],
                                        title="3 chains")
    ax = labelled(fig)
    assert ax.get_xlabel() == "Gibbs step" and ax.get_ylabel() == "chain"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "10", "100", "1000"]
    shown = shown_array(ax)
    assert shown.shape == (n * 2 + (n - 1), T * 3 + (T - 1))
    for t in range(T):
        for j in range(n):
            assert shown[j * 3, t * 4] == pytest.approx(snapshots[t, j, 0])


def test_plot_chain_snapshots_accepts_images_and_rejects_bad_input():
    fig = plotting.plot_chain_snapshots(np.zeros((2, 3, 4, 4)), title="4-D input")
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["0", "1"]
    with pytest.raises(ValueError, match="one step number per snapshot"):
        plotting.plot_chain_snapshots(np.zeros((2, 3, 4)), image_shape=(2, 2), steps=[1],
                                      title="t")
    with pytest.raises(ValueError, match=r"\(T, n, d\)"):
        plotting.plot_chain_snapshots(np.zeros((3, 4)), title="t")


# ----- 2-D densities -------------------------------------------------------------------------


def gaussian_log_density(points, mean=(1.0, -2.0)):
    return -0.5 * np.sum((points - np.asarray(mean)) ** 2, axis=1) - np.log(2 * np.pi)


def test_plot_density_2d_orientation_values_and_samples():
    samples = np.random.default_rng(2).normal(size=(50, 2))
    fig = plotting.plot_density_2d(gaussian_log_density, resolution=81, samples=samples,
                                   title="Gaussian at (1, -2)")
    ax = labelled(fig)
    shown = shown_array(ax)
    assert shown.shape == (81, 81)
    row, col = np.unravel_index(np.argmax(shown), shown.shape)
    grid = np.linspace(-4, 4, 81)
    assert (grid[col], grid[row]) == pytest.approx((1.0, -2.0))  # x_1 across, x_2 up
    assert shown.max() == pytest.approx(1 / (2 * np.pi), rel=1e-6)
    assert ax.get_images()[0].origin == "lower"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["50 samples"]
    np.testing.assert_allclose(ax.collections[0].get_offsets(), samples)


@pytest.mark.parametrize("fn, kwargs, match", [
    (lambda p: np.zeros(3), {}, "one value per point"),
    (lambda p: np.full(len(p), np.nan), {}, "NaN"),
    (lambda p: np.full(len(p), 1000.0), {}, "overflows"),
    (gaussian_log_density, dict(bounds=((1, -1), (0, 1))), "min < max"),
    (gaussian_log_density, dict(resolution=1), "resolution"),
    (gaussian_log_density, dict(samples=np.zeros((5, 3))), r"\(k, 2\)"),
])
def test_plot_density_2d_rejects_bad_input(fn, kwargs, match):
    with pytest.raises(ValueError, match=match):
        plotting.plot_density_2d(fn, resolution=kwargs.pop("resolution", 20), title="t",
                                 **kwargs)


def test_plot_density_2d_needs_a_callable():
    with pytest.raises(TypeError, match="callable"):
        plotting.plot_density_2d(np.zeros(4), title="t")


# ----- bad arguments -------------------------------------------------------------------------
def test_numeric_arguments_are_refused_with_the_value_received():
    z, labels = np.zeros((4, 2)), np.zeros(4, int)
    with pytest.raises(ValueError, match="max_points must be an integer >= 1; got -1"):
        plotting.plot_latent_scatter(z, labels, title="codes", max_points=-1)
    decode = lambda p: np.zeros((len(p), 4))  # noqa: E731
    for bounds in ((-np.inf, 2.0), (2.0, -2.0), ("a", 1.0), 5.0):
        with pytest.raises(ValueError, match=r"bounds must be a pair \(low, high\)"):
            plotting.plot_latent_grid(decode, bounds=bounds, num=3, image_shape=(2, 2),
                                      title="grid")
    with pytest.raises(TypeError, match="decode must be callable"):
        plotting.plot_latent_grid("decoder", num=3, image_shape=(2, 2), title="grid")
    with pytest.raises(ValueError, match="ncols must be an integer >= 1; got 0"):
        plotting.plot_image_grid(np.zeros((2, 4)), image_shape=(2, 2), ncols=0, title="x")


def test_a_title_that_is_not_text_is_described_not_printed():
    with pytest.raises(ValueError, match="title must be a non-empty string") as info:
        plotting.plot_image_grid(np.zeros((2, 4)), image_shape=(2, 2), title=list(range(9999)))
    assert "a list of 9999 items" in str(info.value) and len(str(info.value)) < 200
