"""Every public constructor and function of course_lib.boltzmann refuses bad arguments with
a message that names the argument and shows the value (no deep TensorFlow or NumPy error, no
silent default); and the DBN evaluates on held-out data. Tiny models, no training."""

import keras
import numpy as np
import pytest
from refusals import (
    BAD_COUNTS,
    BAD_FINITE,
    BAD_FLAGS,
    BAD_JIT,
    BAD_NONNEGATIVE,
    BAD_POSITIVE,
    BAD_REQUIRED_SEEDS,
    BAD_SEEDS,
    BAD_STEPS,
    BAD_VERBOSE,
    INF,
    NAN,
    assert_refused,
    expand,
)

from course_lib.boltzmann import (
    DBM,
    DBN,
    BernoulliRBM,
    BoltzmannMachine,
    DoublingRBM,
    GaussianBernoulliRBM,
    dbm_pretraining_rbms,
    greedy_layerwise,
    propagate_up,
    transposed_rbm,
)

X = (np.random.default_rng(0).random((8, 6)) < 0.5).astype("float32")


@pytest.fixture(scope="module")
def models():
    return dict(rbm=BernoulliRBM(6, 4, seed=0), gauss=GaussianBernoulliRBM(6, 4, seed=0),
                bm=BoltzmannMachine(3, 2, seed=0), dbn=DBN([6, 4, 3], seed=0),
                dbm=DBM([6, 4, 3], num_chains=3, seed=0))


def rbm_with(name):
    return lambda m, v: BernoulliRBM(**{"n_visible": 6, "n_hidden": 4, name: v})


CASES = [
    ("BernoulliRBM", rbm_with("n_visible"), "n_visible", BAD_COUNTS),
    ("BernoulliRBM", rbm_with("n_hidden"), "n_hidden", BAD_COUNTS),
    ("BernoulliRBM", rbm_with("k"), "k", BAD_COUNTS),
    ("BernoulliRBM", lambda m, v: BernoulliRBM(6, 4, sampler="pcd", num_chains=v),
     "num_chains", BAD_COUNTS),
    ("BernoulliRBM", rbm_with("seed"), "seed", BAD_SEEDS),
    ("BernoulliRBM", lambda m, v: BernoulliRBM(6, 4, sampler="fpcd", fast_learning_rate=v),
     "fast_learning_rate", BAD_NONNEGATIVE),
    ("BernoulliRBM", rbm_with("fast_decay"), "fast_decay",
     [(1.0, ValueError), (-0.5, ValueError), (NAN, ValueError), (None, TypeError)]),
    ("BernoulliRBM", rbm_with("weight_init_std"), "weight_init_std", BAD_NONNEGATIVE),
    ("BernoulliRBM", rbm_with("hidden_bias_init"), "hidden_bias_init", BAD_FINITE),
    ("BernoulliRBM", rbm_with("sampler"), "sampler", [("xyz", ValueError),
                                                      (["cd"] * 50, ValueError)]),
    ("GaussianBernoulliRBM", lambda m, v: GaussianBernoulliRBM(6, 4, sigma_init=v),
     "sigma_init", BAD_POSITIVE),
    ("GaussianBernoulliRBM", lambda m, v: GaussianBernoulliRBM(6, 4, learn_sigma=v),
     "learn_sigma", BAD_FLAGS),
    ("DoublingRBM", lambda m, v: DoublingRBM(6, 4, up_factor=v), "up_factor", BAD_POSITIVE),
    ("DoublingRBM", lambda m, v: DoublingRBM(6, 4, down_factor=v), "down_factor",
     [(INF, ValueError), (None, TypeError)]),
    ("rbm.gibbs_chain", lambda m, v: m["rbm"].gibbs_chain(X, v), "num_steps", BAD_STEPS),
    ("rbm.sample", lambda m, v: m["rbm"].sample(v, 2, seed=0), "num_samples", BAD_COUNTS),
    ("rbm.sample", lambda m, v: m["rbm"].sample(3, v, seed=0), "num_steps", BAD_STEPS),
    ("rbm.sample", lambda m, v: m["rbm"].sample(3, 2, seed=0, every=v), "every",
     [(0, ValueError), (-1, ValueError), (1.5, TypeError), (True, TypeError)]),
    ("rbm.sample", lambda m, v: m["rbm"].sample(3, 2, seed=v), "seed", BAD_REQUIRED_SEEDS),
    ("rbm.sample", lambda m, v: m["rbm"].sample(3, 2, seed=0, verbose=v), "verbose",
     BAD_VERBOSE),
    ("rbm.sample", lambda m, v: m["rbm"].sample(3, 2, seed=0, jit_compile=v), "jit_compile",
     BAD_JIT),
    ("rbm.gibbs_step", lambda m, v: m["rbm"].gibbs_step(X, seed=v), "seed", BAD_SEEDS),
    ("BoltzmannMachine", lambda m, v: BoltzmannMachine(3, v), "n_hidden",
     [(-1, ValueError), (1.5, TypeError), (None, TypeError)]),
    ("BoltzmannMachine", lambda m, v: BoltzmannMachine(3, 2, weight_init_std=v),
     "weight_init_std", BAD_NONNEGATIVE),
    ("BoltzmannMachine", lambda m, v: BoltzmannMachine(3, 2, seed=v), "seed", BAD_SEEDS),
    ("bm.sample", lambda m, v: m["bm"].sample(v, 1, seed=0), "num_samples", BAD_COUNTS),
    ("bm.sample", lambda m, v: m["bm"].sample(2, v, seed=0), "num_sweeps", BAD_STEPS),
    ("bm.sample", lambda m, v: m["bm"].sample(2, 1, seed=v), "seed", BAD_REQUIRED_SEEDS),
    ("bm.sample", lambda m, v: m["bm"].sample(2, 1, seed=0, full_state=v), "full_state",
     BAD_FLAGS),
    ("bm.sample", lambda m, v: m["bm"].sample(2, 1, seed=0, verbose=v), "verbose",
     BAD_VERBOSE),
    ("bm.sample", lambda m, v: m["bm"].sample(2, 1, seed=0, jit_compile=v), "jit_compile",
     BAD_JIT),
    ("dbn.sample", lambda m, v: m["dbn"].sample(2, 1, seed=0, jit_compile=v), "jit_compile",
     BAD_JIT),
    ("dbn.sample", lambda m, v: m["dbn"].sample(2, 0, seed=0, jit_compile=v), "jit_compile",
     BAD_JIT),
    ("DBN", lambda m, v: DBN([6, 4, 3], k=v), "k", BAD_COUNTS),
    ("DBN", lambda m, v: DBN([6, 4, 3], weight_init_std=v), "weight_init_std",
     BAD_NONNEGATIVE),
    ("DBN", lambda m, v: DBN([6, 4, 3], seed=v), "seed", BAD_SEEDS),
    ("DBN", lambda m, v: DBN(v), "layer_sizes", [(5, TypeError), ("643", TypeError),
                                                  ([6, 1.5, 3], TypeError),
                                                  ([6, 0, 3], ValueError)]),
    ("dbn.sample", lambda m, v: m["dbn"].sample(v, 1, seed=0), "num_samples", BAD_COUNTS),
    ("dbn.sample", lambda m, v: m["dbn"].sample(2, v, seed=0), "num_steps", BAD_STEPS),
    ("dbn.sample", lambda m, v: m["dbn"].sample(2, 1, seed=v), "seed", BAD_REQUIRED_SEEDS),
    ("dbn.log_importance_weights",
     lambda m, v: m["dbn"].log_importance_weights(X, 1.0, num_samples=v), "num_samples",
     BAD_COUNTS),
    ("dbn.log_importance_weights",
     lambda m, v: m["dbn"].log_importance_weights(X, 1.0, batch_size=v), "batch_size",
     BAD_COUNTS),
    ("dbn.log_importance_weights",
     lambda m, v: m["dbn"].log_importance_weights(X, 1.0, verbose=v), "verbose", BAD_VERBOSE),
    ("dbn.lower_bound", lambda m, v: m["dbn"].lower_bound(X, 1.0, verbose=v), "verbose",
     BAD_VERBOSE),
    ("dbn.sample", lambda m, v: m["dbn"].sample(2, 1, seed=0, verbose=v), "verbose",
     BAD_VERBOSE),
    ("dbn.log_importance_weights",
     lambda m, v: m["dbn"].log_importance_weights(X, v), "log_z_top",
     BAD_FINITE + [(None, TypeError)]),
    ("dbn.log_importance_weights",
     lambda m, v: m["dbn"].log_importance_weights(X, 1.0, seed=v), "seed", BAD_REQUIRED_SEEDS),
    ("dbn.lower_bound", lambda m, v: m["dbn"].lower_bound(X, 1.0, importance_weighted=v),
     "importance_weighted", BAD_FLAGS),
    ("dbn.classifier", lambda m, v: m["dbn"].classifier(v), "num_classes",
     [(1, ValueError), (1.5, TypeError), (None, TypeError)]),
    ("dbn.classifier", lambda m, v: m["dbn"].classifier(10, seed=v), "seed", BAD_SEEDS),
    ("DBM", lambda m, v: DBM([6, 4], num_chains=v), "num_chains", BAD_COUNTS),
    ("DBM", lambda m, v: DBM([6, 4], gibbs_steps=v), "gibbs_steps", BAD_COUNTS),
    ("DBM", lambda m, v: DBM([6, 4], mean_field_steps=v), "mean_field_steps", BAD_COUNTS),
    ("DBM", lambda m, v: DBM([6, 4], weight_init_std=v), "weight_init_std", BAD_NONNEGATIVE),
    ("DBM", lambda m, v: DBM([6, 4], seed=v), "seed", BAD_SEEDS),
    ("DBM", lambda m, v: DBM(v), "layer_sizes", [(5, TypeError), ([6, True], TypeError)]),
    ("dbm.mean_field", lambda m, v: m["dbm"].mean_field(X, v), "num_steps", BAD_STEPS[:-2]),
    ("dbm.reconstruct", lambda m, v: m["dbm"].reconstruct(X, v), "num_steps", BAD_STEPS[:-2]),
    ("dbm.mean_field_bound", lambda m, v: m["dbm"].mean_field_bound(X, 0.0, num_steps=v),
     "num_steps", BAD_STEPS[:-2]),
    ("dbm.mean_field_bound", lambda m, v: m["dbm"].mean_field_bound(X, 0.0, batch_size=v),
     "batch_size", BAD_COUNTS),
    ("dbm.mean_field_bound", lambda m, v: m["dbm"].mean_field_bound(X, v), "log_z",
     BAD_FINITE + [(None, TypeError)]),
    ("dbm.sample", lambda m, v: m["dbm"].sample(v, 1, seed=0), "num_samples", BAD_COUNTS),
    ("dbm.sample", lambda m, v: m["dbm"].sample(2, v, seed=0), "num_steps", BAD_STEPS),
    ("dbm.sample", lambda m, v: m["dbm"].sample(2, 2, seed=0, every=v), "every",
     [(0, ValueError), (1.5, TypeError)]),
    ("dbm.sample", lambda m, v: m["dbm"].sample(2, 1, seed=v), "seed", BAD_REQUIRED_SEEDS),
    ("dbm.sample", lambda m, v: m["dbm"].sample(2, 1, seed=0, verbose=v), "verbose",
     BAD_VERBOSE),
    ("dbm.sample", lambda m, v: m["dbm"].sample(2, 1, seed=0, jit_compile=v), "jit_compile",
     BAD_JIT),
    ("dbm.gibbs_states", lambda m, v: m["dbm"].gibbs_states(1, seed=0, jit_compile=v),
     "jit_compile", BAD_JIT),
    ("dbm_pretraining_rbms", lambda m, v: dbm_pretraining_rbms([6, 4, 3], seed=v), "seed",
     BAD_SEEDS),
    ("dbm_pretraining_rbms", lambda m, v: dbm_pretraining_rbms(v), "layer_sizes",
     [(5, TypeError)]),
    ("propagate_up", lambda m, v: propagate_up(m["rbm"], X, batch_size=v), "batch_size",
     BAD_COUNTS),
    ("propagate_up", lambda m, v: propagate_up(m["rbm"], X, seed=v), "seed",
     BAD_REQUIRED_SEEDS),
    ("propagate_up", lambda m, v: propagate_up(v, X), "rbm", [("rbm", TypeError)]),
    ("greedy_layerwise", lambda m, v: greedy_layerwise([m["rbm"]], X, epochs=1, batch_size=v),
     "batch_size", BAD_COUNTS),
    ("greedy_layerwise", lambda m, v: greedy_layerwise([m["rbm"]], X, epochs=1, seed=v),
     "seed", BAD_REQUIRED_SEEDS),
    ("greedy_layerwise", lambda m, v: greedy_layerwise([m["rbm"]], X, epochs=1, optimizer=v),
     "optimizer", [("sgd", TypeError)]),
    ("greedy_layerwise", lambda m, v: greedy_layerwise(v, X, epochs=1), "rbms",
     [(BernoulliRBM, TypeError), ("rbm", TypeError)]),
    ("transposed_rbm", lambda m, v: transposed_rbm(v), "rbm", [("rbm", TypeError)]),
]


@pytest.mark.parametrize("call, name, value, error", expand(CASES))
def test_bad_arguments_are_refused(models, call, name, value, error):
    assert_refused(lambda: call(models, value), name, value, error)


@pytest.mark.parametrize("call, name", [
    (lambda m, v: BernoulliRBM(6, 4, visible_bias_init=v), "visible_bias_init"),
    (lambda m, v: DBM([6, 4], visible_bias_init=v), "visible_bias_init"),
    (lambda m, v: m["rbm"].annealing_path(v), "base_visible_bias"),
    (lambda m, v: m["dbm"].annealing_path(v), "base_visible_bias"),
])
@pytest.mark.parametrize("value", [np.full(6, np.nan), np.full(6, -np.inf), np.zeros(5),
                                   ["a"] * 6], ids=["nan", "-inf", "shape", "strings"])
def test_bad_bias_vectors_are_refused(models, call, name, value):
    assert_refused(lambda: call(models, value), name, value, ValueError, shows_value=False)


def test_a_transposed_rbm_needs_binary_visible_units(models):
    with pytest.raises(TypeError, match="rbm must be a BernoulliRBM"):
        transposed_rbm(models["gauss"])


def test_data_of_the_wrong_width_is_refused_before_tensorflow_sees_it(models):
    with pytest.raises(ValueError, match=r"shape \(n, 6\)"):
        models["rbm"].reconstruction_error(X[:, :3])
    with pytest.raises(ValueError, match=r"shape \(n, 6\)"):
        models["dbm"].reconstruct(X[:, :3])
    with pytest.raises(ValueError, match=r"shape \(n, 6\)"):
        DBM([6, 2], seed=0).unnormalized_log_prob(X[:, :3])


def test_messages_never_hold_the_data():
    sizes = list(range(1, 10_001)) + [0]
    with pytest.raises(ValueError) as info:
        DBN(sizes)
    assert len(str(info.value)) < 300 and "10001 items" in str(info.value)


def test_dbn_evaluates_on_held_out_data():
    dbn = DBN([6, 4, 3], seed=0)
    dbn.compile(optimizer=keras.optimizers.SGD(0.01))
    held_out = dbn.evaluate(X, batch_size=4, verbose=0, return_dict=True)
    assert set(held_out) >= {"wake_nll", "sleep_nll", "top_free_energy"}
    assert all(np.isfinite(v) for v in held_out.values())
    # The wake term of near-zero weights: -log p(v | h_1) with every p = 1/2, D log 2.
    assert held_out["wake_nll"] == pytest.approx(6 * np.log(2.0), rel=0.02)
    before = [np.array(w) for w in dbn.weights]
    history = dbn.fit(X, batch_size=4, epochs=1, validation_data=X, verbose=0)
    assert {"val_wake_nll", "val_sleep_nll", "val_top_free_energy"} <= set(history.history)
    assert any(not np.array_equal(a, np.array(b)) for a, b in zip(before, dbn.weights,
                                                                  strict=True))
