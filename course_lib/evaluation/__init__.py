"""Evaluation of generative models, one estimator family per module.

- ``exact``: log Z and log-likelihood by enumerating every hidden state (small models).
- ``ais``: annealed importance sampling for log Z, forward and reverse, with error bars.
- ``scores``: pseudo-likelihood, reconstruction error, free-energy gap (overfitting).
"""

from course_lib.evaluation.ais import (
    AISResult,
    RBMAnnealingPath,
    ais_log_partition,
    base_rate_visible_bias,
    published_schedule,
    reverse_ais_log_partition,
)
from course_lib.evaluation.exact import (
    all_binary_states,
    exact_log_likelihood,
    exact_log_partition,
)
from course_lib.evaluation.scores import (
    free_energy_gap,
    pseudo_log_likelihood,
    reconstruction_error,
)

__all__ = [
    "AISResult", "RBMAnnealingPath", "ais_log_partition", "base_rate_visible_bias",
    "published_schedule", "reverse_ais_log_partition", "all_binary_states",
    "exact_log_likelihood", "exact_log_partition", "free_energy_gap",
    "pseudo_log_likelihood", "reconstruction_error",
]
