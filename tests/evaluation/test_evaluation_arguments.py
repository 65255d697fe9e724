"""Every public function of course_lib.evaluation refuses bad arguments with a message that
names the argument and shows the value: counts, seeds, schedules, smoothing, log Z, verbose. In
particular AIS never returns NaN for a NaN in its schedule or an infinite base-rate bias,
and reconstruction_error never returns 0.0 for a negative batch size. Tiny models only."""

import numpy as np
import pytest
from refusals import (
    BAD_COUNTS,
    BAD_FINITE,
    BAD_JIT,
    BAD_POSITIVE,
    BAD_REQUIRED_SEEDS,
    BAD_VERBOSE,
    INF,
    NAN,
    assert_refused,
    expand,
)

from course_lib.boltzmann import DBN, BernoulliRBM
from course_lib.evaluation import (
    active_units,
    ais_log_partition,
    base_rate_visible_bias,
    dbm_schedule,
    exact_dbn_bound,
    exact_log_likelihood,
    exact_log_partition,
    free_energy_gap,
    importance_weighted_bound,
    kl_per_unit,
    posterior_means_and_log_vars,
    pseudo_log_likelihood,
    reconstruction_error,
    reverse_ais_log_partition,
)
from course_lib.evaluation.ais import log_mean_exp_with_bars
from course_lib.variational import VAE

X = (np.random.default_rng(0).random((8, 6)) < 0.5).astype("float32")
BETAS = np.linspace(0.0, 1.0, 5).astype("float32")
BASE = np.zeros(6, "float32")


@pytest.fixture(scope="module")
def models():
    return dict(rbm=BernoulliRBM(6, 4, seed=0), dbn=DBN([6, 4, 3], seed=0),
                vae=VAE(6, 2, (4,), seed=0))


BAD_BATCH_SIZES = BAD_COUNTS
BAD_SCHEDULES = [([0.0, NAN, 1.0], ValueError), ([NAN, 0.5, 1.0], ValueError),
                 ([0.0, 0.6, 0.5, 1.0], ValueError), ([0.0, 0.5, 0.5, 1.0], ValueError),
                 ([0.1, 1.0], ValueError), ([0.0, 0.9], ValueError), ([0.0, INF], ValueError),
                 ([0.0], ValueError), (["a", "b"], TypeError)]


CASES = [
    ("ais", lambda m, v: ais_log_partition(m["rbm"], BASE, num_chains=v, betas=BETAS),
     "num_chains", BAD_COUNTS),
    ("ais", lambda m, v: ais_log_partition(m["rbm"], BASE, num_chains=2, betas=BETAS, seed=v),
     "seed", BAD_REQUIRED_SEEDS),
    ("reverse_ais", lambda m, v: reverse_ais_log_partition(m["rbm"], BASE, X, betas=BETAS,
                                                           seed=v), "seed", BAD_REQUIRED_SEEDS),
    ("ais", lambda m, v: ais_log_partition(m["rbm"], BASE, num_chains=2, betas=BETAS,
                                           verbose=v), "verbose", BAD_VERBOSE),
    ("reverse_ais", lambda m, v: reverse_ais_log_partition(m["rbm"], BASE, X, betas=BETAS,
                                                           verbose=v), "verbose", BAD_VERBOSE),
    ("ais", lambda m, v: ais_log_partition(m["rbm"], BASE, num_chains=2, betas=BETAS,
                                           jit_compile=v), "jit_compile", BAD_JIT),
    ("reverse_ais", lambda m, v: reverse_ais_log_partition(m["rbm"], BASE, X, betas=BETAS,
                                                           jit_compile=v), "jit_compile",
     BAD_JIT),
    ("base_rate_visible_bias", lambda m, v: base_rate_visible_bias(X, smoothing=v),
     "smoothing", BAD_POSITIVE),
    ("dbm_schedule", lambda m, v: dbm_schedule(v), "num_distributions",
     [(1, ValueError), (-1, ValueError), (1.5, TypeError), ("100", TypeError),
      (None, TypeError)]),
    ("exact_log_partition", lambda m, v: exact_log_partition(m["rbm"], chunk_size=v),
     "chunk_size", BAD_COUNTS),
    ("exact_log_partition", lambda m, v: exact_log_partition(v), "model", [("rbm", TypeError)]),
    ("exact_log_partition", lambda m, v: exact_log_partition(m["rbm"], verbose=v), "verbose",
     BAD_VERBOSE),
    ("exact_log_likelihood", lambda m, v: exact_log_likelihood(m["rbm"], X, batch_size=v),
     "batch_size", BAD_BATCH_SIZES),
    ("exact_log_likelihood", lambda m, v: exact_log_likelihood(m["rbm"], X, log_z=v), "log_z",
     BAD_FINITE),
    ("exact_dbn_bound", lambda m, v: exact_dbn_bound(m["dbn"], X, log_z_top=v), "log_z_top",
     BAD_FINITE),
    ("reconstruction_error", lambda m, v: reconstruction_error(m["rbm"], X, batch_size=v),
     "batch_size", BAD_BATCH_SIZES),
    ("free_energy_gap", lambda m, v: free_energy_gap(m["rbm"], X, X, batch_size=v),
     "batch_size", BAD_BATCH_SIZES),
    ("pseudo_log_likelihood", lambda m, v: pseudo_log_likelihood(m["rbm"], X, batch_size=v),
     "batch_size", BAD_BATCH_SIZES),
    ("pseudo_log_likelihood", lambda m, v: pseudo_log_likelihood(m["rbm"], X, num_bits=v),
     "num_bits", [(0, ValueError), (-1, ValueError), (1.5, TypeError), ("2", TypeError)]),
    ("pseudo_log_likelihood", lambda m, v: pseudo_log_likelihood(m["rbm"], X, num_bits=2,
                                                                 seed=v), "seed",
     BAD_REQUIRED_SEEDS),
    ("log_mean_exp_with_bars", lambda m, v: log_mean_exp_with_bars([0.0, 1.0], num_sigma=v),
     "num_sigma", [(-1.0, ValueError), (NAN, ValueError), (None, TypeError)]),
    ("importance_weighted_bound", lambda m, v: importance_weighted_bound(m["vae"], X,
                                                                         num_samples=v),
     "num_samples", BAD_COUNTS),
    ("importance_weighted_bound", lambda m, v: importance_weighted_bound(
        m["vae"], X, num_samples=2, batch_size=v), "batch_size", BAD_BATCH_SIZES),
    ("importance_weighted_bound", lambda m, v: importance_weighted_bound(
        m["vae"], X, num_samples=2, samples_per_chunk=v), "samples_per_chunk", BAD_COUNTS),
    ("importance_weighted_bound", lambda m, v: importance_weighted_bound(
        m["vae"], X, num_samples=2, seed=v), "seed", BAD_REQUIRED_SEEDS),
    ("importance_weighted_bound", lambda m, v: importance_weighted_bound(
        m["vae"], X, num_samples=2, verbose=v), "verbose", BAD_VERBOSE),
    ("posterior_means_and_log_vars", lambda m, v: posterior_means_and_log_vars(
        m["vae"], X, batch_size=v), "batch_size", BAD_BATCH_SIZES),
    ("kl_per_unit", lambda m, v: kl_per_unit(m["vae"], X, batch_size=v), "batch_size",
     BAD_BATCH_SIZES),
    ("active_units", lambda m, v: active_units(m["vae"], X, threshold=v), "threshold",
     [(-0.1, ValueError), (NAN, ValueError), (INF, ValueError), (None, TypeError),
      ("a", TypeError)]),
]


@pytest.mark.parametrize("call, name, value, error", expand(CASES))
def test_bad_arguments_are_refused(models, call, name, value, error):
    assert_refused(lambda: call(models, value), name, value, error)


@pytest.mark.parametrize("betas, error", BAD_SCHEDULES, ids=[str(b) for b, _ in BAD_SCHEDULES])
def test_ais_refuses_schedules_that_are_not_finite_increasing_from_0_to_1(models, betas, error):
    for run in (lambda: ais_log_partition(models["rbm"], BASE, num_chains=2, betas=betas),
                lambda: reverse_ais_log_partition(models["rbm"], BASE, X, betas=betas)):
        assert_refused(run, "betas", betas, error, shows_value=False)


@pytest.mark.parametrize("base", [np.full(6, -np.inf), np.full(6, np.nan), np.zeros(5)],
                         ids=["-inf", "nan", "shape"])
def test_ais_refuses_base_rate_biases_that_are_not_finite(models, base):
    assert_refused(lambda: ais_log_partition(models["rbm"], base, num_chains=2, betas=BETAS),
                   "base_visible_bias", base, ValueError, shows_value=False)


def test_base_rate_bias_needs_smoothing_for_pixels_that_are_never_on(models):
    never_on = np.zeros((4, 6), "float32")
    never_on[:, 0] = 1.0                                  # and one that is always on
    bias = base_rate_visible_bias(never_on, smoothing=1e-30)
    assert np.all(np.isfinite(bias)) and bias[0] > 60 and bias[1] < -60
    with pytest.raises(ValueError, match="smoothing must be positive.*got 0"):
        base_rate_visible_bias(never_on, smoothing=0)
    for bad in (np.full((4, 6), np.nan), np.full((4, 6), 2.0), np.zeros((0, 6)), np.zeros(6)):
        with pytest.raises(ValueError, match="v_train"):
            base_rate_visible_bias(bad)


def test_ais_refuses_a_model_with_nan_weights():
    rbm = BernoulliRBM(6, 4, seed=0)
    rbm.W.assign(np.full((6, 4), np.nan, "float32"))
    with pytest.raises(ValueError, match="W holds 24 NaN or inf"):
        ais_log_partition(rbm, BASE, num_chains=2, betas=BETAS)


def test_reverse_ais_refuses_bad_model_samples(models):
    with pytest.raises(ValueError, match="model_samples must be finite"):
        reverse_ais_log_partition(models["rbm"], BASE, np.full((3, 6), np.nan), betas=BETAS)


def test_log_weights_that_are_nan_are_an_error_not_a_result():
    with pytest.raises(ValueError, match="1 of 2 AIS log weights are NaN"):
        log_mean_exp_with_bars([np.nan, 0.0])
    with pytest.raises(ValueError, match="at least one"):
        log_mean_exp_with_bars([])
