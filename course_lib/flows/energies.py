"""The four 2-D energies of Rezende & Mohamed (2015), Table 1, as targets for reverse KL.

A target density is p(z) = exp(-U(z)) / Z. Equations as numbered in
``notebooks/06_flows.ipynb`` (6.12), with w_1 = sin(2 pi z_1 / 4),
w_2 = 3 exp(-((z_1 - 1) / 0.6)^2 / 2), w_3 = 3 sigma((z_1 - 1) / 0.3):

* U1 = ((||z|| - 2) / 0.4)^2 / 2 - log(exp(-((z_1 - 2) / 0.6)^2 / 2)
  + exp(-((z_1 + 2) / 0.6)^2 / 2));
* U2 = ((z_2 - w_1) / 0.4)^2 / 2;
* U3 = -log(exp(-((z_2 - w_1) / 0.35)^2 / 2) + exp(-((z_2 - w_1 + w_2) / 0.35)^2 / 2));
* U4 = -log(exp(-((z_2 - w_1) / 0.4)^2 / 2) + exp(-((z_2 - w_1 + w_3) / 0.35)^2 / 2)).

Deviation from the paper, stated: U2-U4 do not depend on how far z_1 goes, so exp(-U) has
no finite integral and reverse KL has no minimum (q could spread along z_1 for ever). The
paper draws them on the box [-4, 4]^2; here every energy gets walls at that box,
U(z) + sum_i max(|z_i| - 4, 0)^2 / (2 * 0.1^2), which leaves U unchanged inside it and makes
Z finite, so that KL(q || p) = E_q[log q + U] + log Z can be reported in nats.
:func:`log_partition` computes log Z by quadrature.
"""

from __future__ import annotations

import math

import numpy as np
from keras import ops

from course_lib.checks import check_positive_int, describe

ENERGY_NAMES = ("U1", "U2", "U3", "U4")
BOX = 4.0          # the paper's plotting box [-4, 4]^2, where the walls begin
WALL_WIDTH = 0.1   # the walls' length scale outside the box


def _log_two_bumps(a, b):
    """log(exp(-a^2 / 2) + exp(-b^2 / 2)), stably."""
    return ops.logaddexp(-0.5 * ops.square(a), -0.5 * ops.square(b))


def energy(name, z):
    """Eq. (6.12): U(z) of the energy ``name`` (one of ``ENERGY_NAMES``) plus the walls, for
    z of shape (..., 2). Any float dtype; differentiable (Keras ops)."""
    if not isinstance(name, str) or name not in ENERGY_NAMES:
        raise ValueError(f"name must be one of {ENERGY_NAMES}; got {describe(name)}.")
    z = ops.convert_to_tensor(z)
    if z.shape[-1] != 2:
        raise ValueError(f"z must have shape (..., 2); got shape {tuple(z.shape)}.")
    z1, z2 = z[..., 0], z[..., 1]
    w1 = ops.sin(2.0 * math.pi * z1 / 4.0)
    if name == "U1":
        radius = ops.sqrt(ops.sum(ops.square(z), axis=-1))
        u = 0.5 * ops.square((radius - 2.0) / 0.4) - _log_two_bumps((z1 - 2.0) / 0.6,
                                                                     (z1 + 2.0) / 0.6)
    elif name == "U2":
        u = 0.5 * ops.square((z2 - w1) / 0.4)
    elif name == "U3":
        w2 = 3.0 * ops.exp(-0.5 * ops.square((z1 - 1.0) / 0.6))
        u = -_log_two_bumps((z2 - w1) / 0.35, (z2 - w1 + w2) / 0.35)
    else:
        w3 = 3.0 * ops.sigmoid((z1 - 1.0) / 0.3)
        u = -_log_two_bumps((z2 - w1) / 0.4, (z2 - w1 + w3) / 0.35)
    outside = ops.maximum(ops.abs(z) - BOX, 0.0)
    return u + ops.sum(ops.square(outside), axis=-1) / (2.0 * WALL_WIDTH**2)


def log_partition(name, *, num_points=2001):
    """log Z = log of the integral of exp(-U) over the plane, by the midpoint rule on a
    ``num_points`` x ``num_points`` grid over [-4.6, 4.6]^2 (beyond it the walls leave less
    than exp(-18) of the mass) in float64."""
    num_points = check_positive_int(num_points, "num_points", minimum=10)
    half = BOX + 6 * WALL_WIDTH
    step = 2 * half / num_points
    axis = -half + step * (np.arange(num_points) + 0.5)
    grid = np.stack(np.meshgrid(axis, axis, indexing="ij"), axis=-1)
    neg_u = -ops.convert_to_numpy(energy(name, grid.astype(np.float64)))
    top = neg_u.max()
    return float(top + np.log(np.exp(neg_u - top).sum() * step**2))
