"""Evaluation of generative models, one estimator family per module.

- ``exact``: log Z and log-likelihood by enumerating every hidden state (small models);
  the exact Markov chain of a small binary denoising autoencoder.
- ``ais``: annealed importance sampling for log Z, forward and reverse, with error bars,
  along the path a model returns from ``annealing_path`` (RBM and DBM in
  ``course_lib.boltzmann.annealing``); the log ratio of two DBMs' partition functions along
  the path ``annealing_path_from`` returns.
- ``variational``: the importance-weighted bound for any k, active units, KL per unit.
- ``scores``: pseudo-likelihood, reconstruction error, free-energy gap (overfitting).
- ``compare``: the paired difference of two models on the same examples, with its error bar.
- ``classifier``: the course's own MNIST classifier (shipped weights, checked by SHA-256),
  its features and class probabilities, the Inception-style score, and ``score_samples``
  (every sample score of generated digits at once).
- ``samples``: judging samples without a likelihood (Parzen windows, Fréchet and kernel
  distances on features, mode coverage on known mixtures, nearest-neighbour memorisation
  checks); any generator, any chapter.
- ``two_sample``: the kernel two-sample test, MMD^2 with a permutation p-value.
- ``translation``: unpaired translation between digit domains: label preservation and
  adaptation accuracies beside their source-only baselines, cycle error, feature distance.
"""

from course_lib.evaluation.ais import (
    AISResult,
    ais_log_partition,
    ais_log_partition_ratio,
    base_rate_visible_bias,
    dbm_schedule,
    published_schedule,
    reverse_ais_log_partition,
)
from course_lib.evaluation.classifier import (
    SampleScores,
    classifier_outputs,
    inception_score,
    load_mnist_classifier,
    score_samples,
)
from course_lib.evaluation.compare import paired_difference
from course_lib.evaluation.exact import (
    exact_dae_chain,
    exact_dbn_bound,
    exact_log_likelihood,
    exact_log_partition,
)
from course_lib.evaluation.samples import (
    MeanWithError,
    ModeCoverage,
    choose_parzen_sigma,
    frechet_distance,
    kernel_distance,
    mode_coverage,
    nearest_neighbour_distances,
    parzen_log_likelihood,
    parzen_log_likelihoods,
)
from course_lib.evaluation.scores import (
    free_energy_gap,
    pseudo_log_likelihood,
    reconstruction_error,
)
from course_lib.evaluation.translation import (
    TranslationAccuracy,
    adaptation_accuracy,
    classifier_images,
    cycle_error,
    feature_distance,
    label_preservation,
    train_digit_classifier,
)
from course_lib.evaluation.two_sample import TwoSampleTest, mmd_permutation_test
from course_lib.evaluation.variational import (
    active_units,
    importance_weighted_bound,
    kl_per_unit,
    posterior_means_and_log_vars,
)

__all__ = [
    "TranslationAccuracy", "adaptation_accuracy", "classifier_images", "cycle_error",
    "feature_distance", "label_preservation", "train_digit_classifier",
    "AISResult", "dbm_schedule",
    "ais_log_partition", "ais_log_partition_ratio", "base_rate_visible_bias", "exact_dae_chain",
    "exact_dbn_bound",
    "published_schedule", "reverse_ais_log_partition",
    "exact_log_likelihood", "exact_log_partition", "free_energy_gap",
    "pseudo_log_likelihood", "reconstruction_error", "active_units",
    "importance_weighted_bound", "kl_per_unit", "posterior_means_and_log_vars",
    "paired_difference", "MeanWithError", "ModeCoverage", "choose_parzen_sigma",
    "frechet_distance", "kernel_distance", "mode_coverage", "parzen_log_likelihood",
    "parzen_log_likelihoods", "TwoSampleTest", "mmd_permutation_test", "classifier_outputs",
    "inception_score", "load_mnist_classifier", "SampleScores", "score_samples",
    "nearest_neighbour_distances",
]
