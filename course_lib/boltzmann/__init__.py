"""The Boltzmann family (Chapters 1-3): energy-based models with binary hidden units.

- ``rbm``: Bernoulli and Gaussian-Bernoulli RBMs trained by CD-k, PCD and FPCD (Chapter 1).
- ``boltzmann_machine``: the fully connected Boltzmann machine, exact by enumeration
  (Chapter 1).
- ``dbn``: deep belief networks, the variational bound, up-down fine-tuning (Chapter 2).
- ``dbm``: deep Boltzmann machines, mean field, persistent chains (Chapter 3).
- ``stacking``: greedy layer-wise training and the DBM's doubled RBMs (Chapters 2-3).
- ``annealing``: the tempered paths that AIS walks, one per model (Chapters 1-3).

Each model offers the named methods that ``course_lib.evaluation`` uses:
``enumerated_free_energy`` and ``unnormalized_log_prob`` (exact log Z and likelihood) and
``annealing_path`` (AIS), and for DBMs ``annealing_path_from`` (AIS between two models).
"""

from course_lib.boltzmann.annealing import (
    DBMAnnealingPath,
    DBMInterpolationPath,
    RBMAnnealingPath,
)
from course_lib.boltzmann.boltzmann_machine import BoltzmannMachine
from course_lib.boltzmann.dbm import DBM, dbm_pretraining_rbms
from course_lib.boltzmann.dbn import DBN
from course_lib.boltzmann.rbm import RBM, BernoulliRBM, GaussianBernoulliRBM
from course_lib.boltzmann.stacking import (
    DoublingRBM,
    greedy_layerwise,
    propagate_up,
    transposed_rbm,
)

__all__ = [
    "RBM", "BernoulliRBM", "GaussianBernoulliRBM", "BoltzmannMachine", "DBN", "DBM",
    "dbm_pretraining_rbms", "DoublingRBM", "greedy_layerwise", "propagate_up",
    "transposed_rbm", "RBMAnnealingPath", "DBMAnnealingPath", "DBMInterpolationPath",
]
