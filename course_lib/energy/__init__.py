"""The energy family (Chapter 7): p(x) = exp(-E(x)) / Z with a deep energy E, trained by the
data-minus-model gradient of Chapter 1, with two answers to where the model's samples come
from.

- ``deep_energy``: ``DeepEnergyModel`` (Kim & Bengio 2016), whose samples come from a
  generator trained on KL(p_G || p_E) with a batch-normalization entropy estimate
  (``batch_norm_entropy``); ``ExpertsEnergy`` and ``energy_network``, their energy function.
- ``losses``: the data-minus-model loss both models train their energy with.
- ``langevin_ebm``: ``LangevinEBM`` (Du & Mordatch 2019), whose samples come from short-run
  Langevin chains (``course_lib.langevin``) with a replay buffer.
"""

from course_lib.energy.deep_energy import (
    DeepEnergyModel,
    ExpertsEnergy,
    batch_norm_entropy,
    batch_norm_layers,
    energy_network,
)
from course_lib.energy.langevin_ebm import LangevinEBM

__all__ = ["DeepEnergyModel", "ExpertsEnergy", "LangevinEBM", "batch_norm_entropy",
           "batch_norm_layers", "energy_network"]
