"""Figures for every chapter: image grids, filters, learning curves, chains and 2-D densities.

- :func:`tile_images` packs images into one 2-D mosaic array (no plotting).
- :func:`plot_image_grid` shows samples, reconstructions or data as a grid.
- :func:`plot_filters` shows columns of a weight matrix W (D, H) as images, each scaled to
  its own largest |w| on a diverging colour map (red positive, blue negative).
- :func:`plot_curves` draws learning curves (log-likelihood against updates, ...) with a
  legend, and dashed horizontal reference lines for published numbers.
- :func:`plot_chain_snapshots` shows Markov chains over time: one row per chain, one
  column per snapshot, columns labelled with the step.
- :func:`plot_density_2d` shows exp(log density) of a 2-D model on a grid, optionally with
  samples on top.
- :func:`plot_latent_scatter` shows 2-D latent codes coloured by class label.
- :func:`plot_latent_grid` decodes a regular grid of 2-D latent points and shows the images
  at their places (the "latent manifold" figure of Kingma & Welling).

Conventions: matplotlib only. Figures are made with pyplot, so a notebook shows them at the
end of the cell; the library never calls ``plt.show``. Every function returns the Figure
(pass ``ax=`` to draw into an existing Axes; its Figure is returned). Assign the result
(``fig = plot_curves(...)``): a Figure left as a cell's last value is shown twice. Every
figure has a title and labelled axes; sample grids require a title that says what they
show (which model, which sampler, how many steps).

Used by: every chapter notebook.
"""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes

from course_lib.checks import check_interval, check_positive_int, describe


def _check_text(text, name):
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"{name} must be a non-empty string saying what the figure shows; "
                         f"got {describe(text)}.")
    return text


def _numeric(array, name):
    array = np.asarray(array)
    if array.dtype.kind not in "fiub":
        raise TypeError(f"{name} must be numeric; got dtype {array.dtype}.")
    return array.astype(np.float64)


def _figure_and_axes(ax, figsize):
    if ax is None:
        return plt.subplots(figsize=figsize, layout="constrained")
    if not isinstance(ax, Axes):
        raise TypeError(f"ax must be a matplotlib Axes or None; got {type(ax).__name__}.")
    return ax.figure, ax


def _image_stack(images, image_shape, name="images"):
    """(n, h, w) float array from (n, h, w) images or (n, d) rows with image_shape=(h, w)."""
    images = _numeric(images, name)
    if images.ndim == 3:
        if image_shape is not None and tuple(image_shape) != images.shape[1:]:
            raise ValueError(f"{name} have shape {images.shape[1:]} each, but image_shape="
                             f"{tuple(image_shape)}; pass image_shape=None for (n, h, w) input.")
        stack = images
    elif images.ndim == 2:
        if image_shape is None or len(tuple(image_shape)) != 2:
            raise ValueError(f"{name} of shape (n, d) need image_shape=(h, w); "
                             f"got image_shape={image_shape!r}.")
        h, w = (int(x) for x in image_shape)
        if h < 1 or w < 1 or h * w != images.shape[1]:
            raise ValueError(f"image_shape={tuple(image_shape)} holds {h * w} pixels but each "
                             f"row of {name} has d={images.shape[1]}.")
        stack = images.reshape(len(images), h, w)
    else:
        raise ValueError(f"{name} must have shape (n, h, w), or (n, d) with image_shape; "
                         f"got {images.shape}.")
    if len(stack) == 0:
        raise ValueError(f"{name} is empty; nothing to show.")
    return stack


def tile_images(images, *, image_shape=None, ncols=10, padding=1, pad_value=1.0):
    """Packs images row by row into one 2-D mosaic.

    Image k goes to row ``k // ncols``, column ``k % ncols``; ``padding`` pixels of
    ``pad_value`` separate neighbouring tiles (none around the border), and unused slots of
    the last row are filled with ``pad_value``.

    Args:
        images: (n, h, w) images, or (n, d) rows together with ``image_shape=(h, w)``.
        image_shape: (h, w), needed for (n, d) input.
        ncols: tiles per row (fewer when n < ncols).
        padding: pixels between tiles.
        pad_value: value of the separators and empty slots.

    Returns:
        float64 array of shape (rows * h + (rows - 1) * padding,
        cols * w + (cols - 1) * padding) with cols = min(ncols, n), rows = ceil(n / cols).
    """
    stack = _image_stack(images, image_shape)
    ncols = check_positive_int(ncols, "ncols")
    padding = check_positive_int(padding, "padding", minimum=0)
    n, h, w = stack.shape
    cols = min(ncols, n)
    rows = math.ceil(n / cols)
    mosaic = np.full((rows * h + (rows - 1) * padding, cols * w + (cols - 1) * padding),
                     float(pad_value))
    for k, image in enumerate(stack):
        r, c = divmod(k, cols)
        top, left = r * (h + padding), c * (w + padding)
        mosaic[top:top + h, left:left + w] = image
    return mosaic


def _grid_labels(ax, n, cols, what="images"):
    rows = math.ceil(n / cols)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlabel(f"{n} {what}, {cols} per row (read row by row)")
    ax.set_ylabel(f"{rows} row{'s' if rows != 1 else ''}")


def plot_image_grid(images, *, image_shape=(28, 28), ncols=10, title, cmap="gray", ax=None):
    """Shows images (samples, reconstructions, data) as one grid.

    Pixel values in [0, 1] are shown on a fixed 0-1 scale (so grids are comparable);
    others on their own range.

    Args:
        images: (n, h, w), or (n, d) with ``image_shape``.
        image_shape: (h, w) for flat rows (ignored for (n, h, w) input).
        ncols: images per row.
        title: what the grid shows, e.g. "PCD-1 RBM: 100 samples after 1000 Gibbs steps".
        cmap: matplotlib colour map.
        ax: optional Axes to draw into.

    Returns:
        The Figure.
    """
    title = _check_text(title, "title")
    stack = _image_stack(images, image_shape if np.ndim(images) == 2 else None)
    lo, hi = float(stack.min()), float(stack.max())
    vmin, vmax = (0.0, 1.0) if lo >= 0.0 and hi <= 1.0 else (lo, hi)
    mosaic = tile_images(stack, ncols=ncols, pad_value=vmax)
    cols = min(int(ncols), len(stack))
    rows = math.ceil(len(stack) / cols)
    fig, ax = _figure_and_axes(ax, (max(3.0, 0.6 * cols), max(2.0, 0.6 * rows + 0.8)))
    ax.imshow(mosaic, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
    _grid_labels(ax, len(stack), cols)
    ax.set_title(title)
    return fig


def plot_filters(W, *, image_shape=(28, 28), num_filters=100, ncols=10, title=None, ax=None):
    """Shows the first ``num_filters`` columns of W (D, H) as images (receptive fields).

    Each filter is divided by its own largest |w|, so all tiles use the symmetric range
    [-1, 1] of a diverging colour map: red excites the hidden unit, blue inhibits it,
    white is zero. Separators are grey.

    Args:
        W: (D, H) weights with D = h * w.
        image_shape: (h, w).
        num_filters: how many columns to show (all when H is smaller).
        ncols: filters per row.
        title: defaults to a description of what is shown.
        ax: optional Axes to draw into.

    Returns:
        The Figure.
    """
    W = _numeric(W, "W")
    if W.ndim != 2:
        raise ValueError(f"W must be a (D, H) matrix; got shape {W.shape}.")
    if not np.all(np.isfinite(W)):
        raise ValueError("W contains NaN or inf values.")
    num_filters = check_positive_int(num_filters, "num_filters")
    k = min(num_filters, W.shape[1])
    filters = W[:, :k].T
    scale = np.abs(filters).max(axis=1, keepdims=True)
    filters = filters / np.where(scale > 0, scale, 1.0)
    mosaic = tile_images(filters, image_shape=image_shape, ncols=ncols, pad_value=np.nan)
    if title is None:
        title = (f"Filters: first {k} of {W.shape[1]} columns of W, "
                 "each scaled to its own max |w|")
    title = _check_text(title, "title")
    cols = min(int(ncols), k)
    rows = math.ceil(k / cols)
    fig, ax = _figure_and_axes(ax, (max(3.0, 0.6 * cols + 1.0), max(2.0, 0.6 * rows + 0.8)))
    cmap = plt.get_cmap("RdBu_r").with_extremes(bad="0.6")
    image = ax.imshow(mosaic, cmap=cmap, vmin=-1.0, vmax=1.0, interpolation="nearest")
    fig.colorbar(image, ax=ax, label="w / max |w| (per filter)", shrink=0.8)
    _grid_labels(ax, k, cols, what="hidden units")
    ax.set_title(title)
    return fig


def plot_curves(curves, *, xlabel, ylabel, title, reference_lines=None, ax=None):
    """Draws one line per named curve, plus dashed horizontal reference lines.

    Args:
        curves: {name: (xs, ys)}, e.g. {"CD-1": (updates, log_likelihoods)}; curves with
            at most 30 points get markers.
        xlabel, ylabel, title: axis labels and title (required).
        reference_lines: optional {name: value}, e.g. published numbers; each is drawn
            dashed and listed in the legend as "name (value)".
        ax: optional Axes to draw into.

    Returns:
        The Figure.
    """
    xlabel, ylabel = _check_text(xlabel, "xlabel"), _check_text(ylabel, "ylabel")
    title = _check_text(title, "title")
    if not isinstance(curves, dict) or not curves:
        raise ValueError("curves must be a non-empty dict {name: (xs, ys)}; "
                         f"got {type(curves).__name__} {curves!r:.60}.")
    checked = {}
    for name, pair in curves.items():
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise ValueError(f"curve '{name}' must be a pair (xs, ys); got {pair!r:.60}.")
        xs, ys = _numeric(pair[0], f"xs of '{name}'"), _numeric(pair[1], f"ys of '{name}'")
        if xs.ndim != 1 or ys.shape != xs.shape or len(xs) == 0:
            raise ValueError(f"curve '{name}' needs 1-D xs and ys of the same non-zero "
                             f"length; got shapes {xs.shape} and {ys.shape}.")
        checked[str(name)] = (xs, ys)
    reference_lines = dict(reference_lines or {})
    for name, value in reference_lines.items():
        if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) \
                or not math.isfinite(value):
            raise ValueError(f"reference line '{name}' must be a finite number; got "
                             f"{describe(value)}.")
    fig, ax = _figure_and_axes(ax, (6.0, 4.0))
    for name, (xs, ys) in checked.items():
        ax.plot(xs, ys, marker="o" if len(xs) <= 30 else None, markersize=3, label=name)
    for k, (name, value) in enumerate(reference_lines.items()):
        ax.axhline(float(value), linestyle="--", linewidth=1.0,
                   color=f"C{(len(checked) + k) % 10}", label=f"{name} ({value:g})")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    return fig


def plot_chain_snapshots(snapshots, *, image_shape=(28, 28), steps=None, title, ax=None):
    """Shows Markov chains over time: row j is chain j, column t is snapshot t.

    Args:
        snapshots: (T, n, d) flat states with ``image_shape``, or (T, n, h, w); for example
            the stacked snapshots returned by ``RBM.sample(..., every=...)``.
        image_shape: (h, w) for flat states.
        steps: optional T step numbers used as column labels (default: 0 .. T-1, labelled
            as snapshot indices).
        title: what the chains are, e.g. "PCD-1 RBM: 8 chains from noise".
        ax: optional Axes to draw into.

    Returns:
        The Figure.
    """
    title = _check_text(title, "title")
    snapshots = _numeric(snapshots, "snapshots")
    if snapshots.ndim not in (3, 4) or 0 in snapshots.shape[:2]:
        raise ValueError("snapshots must have shape (T, n, d) or (T, n, h, w) with T, n >= 1; "
                         f"got {snapshots.shape}.")
    T, n = snapshots.shape[:2]
    if steps is None:
        labels, xlabel = [str(t) for t in range(T)], "snapshot"
    else:
        steps = list(steps)
        if len(steps) != T:
            raise ValueError(f"steps must give one step number per snapshot ({T}); "
                             f"got {len(steps)}.")
        labels, xlabel = [f"{s:g}" if isinstance(s, float) else str(s) for s in steps], \
            "Gibbs step"
    by_chain = np.swapaxes(snapshots, 0, 1).reshape(n * T, *snapshots.shape[2:])
    stack = _image_stack(by_chain, image_shape if snapshots.ndim == 3 else None, "snapshots")
    h, w = stack.shape[1:]
    lo, hi = float(stack.min()), float(stack.max())
    vmin, vmax = (0.0, 1.0) if lo >= 0.0 and hi <= 1.0 else (lo, hi)
    mosaic = tile_images(stack, ncols=T, padding=1, pad_value=vmax)
    fig, ax = _figure_and_axes(ax, (max(3.5, 0.8 * T + 1.0), max(2.5, 0.8 * n + 1.0)))
    ax.imshow(mosaic, cmap="gray", vmin=vmin, vmax=vmax, interpolation="nearest")
    ax.set_xticks([t * (w + 1) + (w - 1) / 2 for t in range(T)], labels)
    ax.set_yticks([j * (h + 1) + (h - 1) / 2 for j in range(n)], [str(j) for j in range(n)])
    ax.set_xlabel(xlabel)
    ax.set_ylabel("chain")
    ax.set_title(title)
    return fig


def plot_density_2d(log_density_fn, *, bounds=((-4, 4), (-4, 4)), resolution=200,
                    samples=None, title, xlabel="x_1", ylabel="x_2", ax=None):
    """Shows exp(log density) of a 2-D model on a grid, optionally with samples on top.

    Args:
        log_density_fn: maps an (m, 2) float32 array of points (x_1, x_2) to m log
            densities (numpy or tensor); normalized or not.
        bounds: ((x1_min, x1_max), (x2_min, x2_max)) of the grid.
        resolution: grid points per axis (the function sees resolution^2 points at once).
        samples: optional (k, 2) samples drawn as white dots.
        title: what is shown, e.g. "RealNVP density and 500 samples".
        xlabel, ylabel: axis labels.
        ax: optional Axes to draw into.

    Returns:
        The Figure.
    """
    title = _check_text(title, "title")
    if not callable(log_density_fn):
        raise TypeError(f"log_density_fn must be callable; got {type(log_density_fn).__name__}.")
    bounds = _numeric(bounds, "bounds")
    if bounds.shape != (2, 2) or not np.all(np.isfinite(bounds)) \
            or not np.all(bounds[:, 0] < bounds[:, 1]):
        raise ValueError("bounds must be ((x1_min, x1_max), (x2_min, x2_max)) with finite "
                         f"min < max; got {bounds.tolist()}.")
    resolution = check_positive_int(resolution, "resolution", minimum=2)
    xs = np.linspace(bounds[0, 0], bounds[0, 1], resolution)
    ys = np.linspace(bounds[1, 0], bounds[1, 1], resolution)
    grid_x, grid_y = np.meshgrid(xs, ys)  # rows follow x_2, columns follow x_1
    points = np.stack([grid_x.ravel(), grid_y.ravel()], axis=1).astype("float32")
    log_density = _numeric(log_density_fn(points), "log_density_fn(points)")
    if log_density.size != resolution**2:
        raise ValueError(f"log_density_fn must return one value per point "
                         f"({resolution**2}); got shape {log_density.shape}.")
    if np.any(np.isnan(log_density)):
        raise ValueError("log_density_fn returned NaN.")
    with np.errstate(over="ignore"):
        density = np.exp(log_density.reshape(resolution, resolution))
    if not np.all(np.isfinite(density)):
        raise ValueError(f"exp(log density) overflows (max log density "
                         f"{log_density.max():.4g}); subtract a constant first.")
    fig, ax = _figure_and_axes(ax, (5.0, 4.2))
    image = ax.imshow(density, origin="lower", aspect="auto", cmap="viridis",
                      extent=(bounds[0, 0], bounds[0, 1], bounds[1, 0], bounds[1, 1]))
    fig.colorbar(image, ax=ax, label="density exp(log p)")
    if samples is not None:
        samples = _numeric(samples, "samples")
        if samples.ndim != 2 or samples.shape[1] != 2:
            raise ValueError(f"samples must have shape (k, 2); got {samples.shape}.")
        ax.scatter(samples[:, 0], samples[:, 1], s=4, c="white", alpha=0.7,
                   edgecolors="none", label=f"{len(samples)} samples")
        ax.legend(loc="upper right")
        ax.set_xlim(bounds[0])
        ax.set_ylim(bounds[1])
    ax.set_xlabel(_check_text(xlabel, "xlabel"))
    ax.set_ylabel(_check_text(ylabel, "ylabel"))
    ax.set_title(title)
    return fig


def plot_latent_scatter(z, labels, *, title, ax=None, max_points=5000):
    """Scatters 2-D latent codes (e.g. posterior means) coloured by their class label.

    Args:
        z: (n, 2) codes. labels: (n,) integer classes.
        title: what the codes are, e.g. "posterior means of 5,000 test images".
        max_points: plot at most this many (the first ones), to keep the figure light.

    Returns:
        The Figure.
    """
    title = _check_text(title, "title")
    max_points = check_positive_int(max_points, "max_points")
    z, labels = _numeric(z, "z"), np.asarray(labels)
    if z.ndim != 2 or z.shape[1] != 2:
        raise ValueError(f"z must have shape (n, 2); got {z.shape}. Use a 2-D latent space "
                         "or project the codes first.")
    if labels.shape != (len(z),):
        raise ValueError(f"labels must have shape ({len(z)},); got {labels.shape}.")
    z, labels = z[:max_points], labels[:max_points]
    fig, ax = _figure_and_axes(ax, (5.5, 4.5))
    points = ax.scatter(z[:, 0], z[:, 1], c=labels, cmap="tab10", s=3, alpha=0.7)
    fig.colorbar(points, ax=ax, label="class label")
    ax.set_xlabel("$z_1$")
    ax.set_ylabel("$z_2$")
    ax.set_title(title)
    return fig


def plot_latent_grid(decode, *, bounds=(-2.0, 2.0), num=15, image_shape=(28, 28), title,
                     ax=None):
    """Decodes a ``num`` x ``num`` grid of points of [bounds]^2 and tiles the images, with
    z_1 along the horizontal axis and z_2 increasing upwards.

    Args:
        decode: function from (m, 2) latent points to (m, h*w) images.
        bounds: (low, high) of both coordinates.
        num: grid points per axis.
        title: what is decoded, e.g. "decoder means on a grid of z".

    Returns:
        The Figure.
    """
    title = _check_text(title, "title")
    num = check_positive_int(num, "num", minimum=2)
    if not callable(decode):
        raise TypeError(f"decode must be callable; got {type(decode).__name__}.")
    low, high = check_interval(bounds, "bounds")
    values = np.linspace(low, high, num)
    z1, z2 = np.meshgrid(values, values[::-1])           # top row: the largest z_2
    points = np.stack([z1.ravel(), z2.ravel()], axis=1).astype(np.float32)
    images = _image_stack(np.asarray(decode(points)), image_shape)
    mosaic = tile_images(images, ncols=num, padding=0)
    h, w = image_shape
    fig, ax = _figure_and_axes(ax, (6.0, 6.0))
    ax.imshow(mosaic, cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
    ticks = np.linspace(0, num - 1, 5).round().astype(int)
    ax.set_xticks(ticks * w + w / 2, [f"{values[i]:.1f}" for i in ticks])
    ax.set_yticks(ticks * h + h / 2, [f"{values[::-1][i]:.1f}" for i in ticks])
    ax.set_xlabel("$z_1$")
    ax.set_ylabel("$z_2$")
    ax.set_title(title)
    return fig
