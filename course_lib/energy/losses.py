"""The loss both energy models train with, Eqs. (7.10) and (7.14) of ``07_gmmn_gsn_ebm.ipynb``:

    (7.10) mean E(x_data) - mean E(x_model)          its gradient: data term minus model term
    (7.14) + alpha (mean E(x_data)^2 + mean E(x_model)^2)

whatever the model's samples come from (a generator in ``deep_energy``, Langevin chains in
``langevin_ebm``). The samples must carry no gradient to the energy's weights.
"""

from __future__ import annotations

from keras import ops

LOSS_DTYPE = "float32"   # losses and metrics, whatever the networks compute in


def energy_difference_and_penalty(energy_data, energy_model, alpha):
    """``(mean E(x_data) - mean E(x_model), alpha (mean E(x_data)^2 + mean E(x_model)^2))``,
    both in float32, from the energies (n, 1) of data and of model samples."""
    energy_data = ops.cast(energy_data, LOSS_DTYPE)
    energy_model = ops.cast(energy_model, LOSS_DTYPE)
    difference = ops.mean(energy_data) - ops.mean(energy_model)
    penalty = alpha * (ops.mean(ops.square(energy_data)) + ops.mean(ops.square(energy_model)))
    return difference, penalty
