"""Langevin dynamics: sampling p(x) proportional to exp(-E(x)) from the gradient of E alone.

Eq. (7.13) of ``07_gmmn_gsn_ebm.ipynb``, the unadjusted Langevin algorithm:

    (7.13) x_{t+1} = x_t - epsilon grad_x E(x_t) + sqrt(2 epsilon) xi_t,    xi_t ~ N(0, I)

For small step sizes epsilon its stationary distribution approaches exp(-E) / Z; with a
finite step it is biased (for E = x^2 / (2 s^2) the stationary variance is
s^2 / (1 - epsilon / (2 s^2)), which the tests check exactly). Energy-based models trained
with short chains (Du & Mordatch 2019; Nijkamp et al. 2019) often take a noise scale smaller
than sqrt(2 epsilon), ``noise_scale``, which samples a colder distribution; the default is
the proper Langevin scale.

The chain runs as one ``tf.while_loop`` (one trace, any number of steps) that can sit inside
a ``train_step``: the energy's gradient is taken with respect to x only and the result
carries no gradient to the energy's weights. Used by ``course_lib.energy.LangevinEBM`` and
on its own in the chapter notebook.
"""

from __future__ import annotations

import math

import tensorflow as tf
from keras import ops

from course_lib import sampling
from course_lib.checks import check_finite_float, check_interval, check_nonneg_int


def energy_gradient(energy, x):
    """grad_x E(x) for a batch x (n, d), where ``energy`` maps (n, d) to (n,) or (n, 1)
    (each row's energy depends on that row only)."""
    x = tf.convert_to_tensor(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        total = tf.reduce_sum(tf.cast(energy(x), tf.float32))
    return tf.cast(tape.gradient(total, x), x.dtype)


def check_langevin_arguments(step_size, noise_scale, clip):
    """Validated ``(step_size, noise_scale, clip)``; ``noise_scale=None`` -> sqrt(2 eps)."""
    step_size = check_finite_float(step_size, "step_size", above=0.0)
    noise_scale = (math.sqrt(2.0 * step_size) if noise_scale is None
                   else check_finite_float(noise_scale, "noise_scale", at_least=0.0))
    clip = None if clip is None else check_interval(clip, "clip")
    return step_size, noise_scale, clip


def langevin_chain(energy, x0, num_steps, *, step_size, seed, noise_scale=None, clip=None):
    """Runs Eq. (7.13) for ``num_steps`` steps from the rows of ``x0``.

    Args:
        energy: a callable from (n, d) to (n,) or (n, 1) energies (a Keras model or layer).
        x0: (n, d) starting points.
        num_steps: a Python int >= 0.
        step_size: epsilon > 0.
        seed: a stateless (2,) seed tensor (``sampling.as_stateless_seed``) or an int;
            step t draws with ``sampling.step_seed(seed, t)``.
        noise_scale: the noise's standard deviation per step (default sqrt(2 epsilon)).
        clip: optional (low, high) that every coordinate is clipped to after each step.

    Returns:
        The final points (a tensor, no gradient to ``energy``'s weights).
    """
    num_steps = check_nonneg_int(num_steps, "num_steps")
    step_size, noise_scale, clip = check_langevin_arguments(step_size, noise_scale, clip)
    if not tf.is_tensor(seed):
        seed = sampling.as_stateless_seed(seed)     # an int; refused if anything else
    x0 = tf.stop_gradient(tf.convert_to_tensor(x0))

    def step(t, x):
        x = (x - step_size * energy_gradient(energy, x)
             + noise_scale * sampling.normal(ops.shape(x), sampling.step_seed(seed, t),
                                             dtype=x.dtype))
        return x if clip is None else ops.clip(x, clip[0], clip[1])

    _, x = tf.while_loop(lambda t, _: t < num_steps, lambda t, x: (t + 1, step(t, x)),
                         (tf.constant(0), x0))
    return tf.stop_gradient(x)
