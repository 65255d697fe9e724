"""Tests of course_lib.variational.vae: the bounds against a numpy forward pass of the same weights
and noise (scipy/TFP densities), one SGD step against w - lr * grad by autodiff, serialization,
input validation, XLA, two-replica MirroredStrategy, KL annealing and the conditional VAE.
"""

import math
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp
from replicas import run_script
from scipy import special, stats

from course_lib.evaluation.variational import importance_weighted_bound
from course_lib.training import TrainingDivergedError, replica_scale
from course_lib.variational.vae import VAE, KLAnnealing

tfd = tfp.distributions
D, LATENT, HIDDEN = 6, 2, (5,)


def np_of(tensor):
    return np.asarray(keras.ops.convert_to_numpy(tensor), dtype=np.float64)


def random_binary(n, d=D, seed=0, p=0.5):
    return (np.random.default_rng(seed).random((n, d)) < p).astype("float32")


def random_data(likelihood, n, seed=0):
    rng = np.random.default_rng(seed)
    if likelihood == "bernoulli":
        return random_binary(n, seed=seed)
    if likelihood == "continuous_bernoulli":
        return rng.random((n, D)).astype("float32")
    return rng.normal(0.0, 1.5, (n, D)).astype("float32")


def randomize_weights(model, seed, std=0.8):
    """N(0, std^2) values for every Dense kernel and bias (larger than Glorot's, so the
    nonlinearities and the log-variance clip are exercised)."""
    rng = np.random.default_rng(seed)
    for net in (model.encoder, model.decoder):
        for layer in net.layers:
            layer.kernel.assign(rng.normal(0.0, std, layer.kernel.shape).astype("float32"))
            layer.bias.assign(rng.normal(0.0, std, layer.bias.shape).astype("float32"))


def dense_params(net):
    return [(np_of(layer.kernel), np_of(layer.bias)) for layer in net.layers]


def mlp_np(params, a, activation=np.tanh):
    """Dense layers with ``activation`` between them and a linear output, in float64."""
    for i, (kernel, bias) in enumerate(params):
        a = a @ kernel + bias
        if i < len(params) - 1:
            a = activation(a)
    return a


def oracle_terms(model, x, eps, y=None):
    """Eqs. (4.1)-(4.7) in float64 from the model's weights and the noise ``eps`` (k, n, d):
    a dict like ``bound_terms`` plus ``log_w`` (k, n) and the posterior ``mean``/``log_var``.
    """
    x = np.asarray(x, np.float64)
    one_hot = None if y is None else np.eye(model.num_classes)[np.asarray(y)]
    enc_in = x if y is None else np.concatenate([x, one_hot], axis=1)
    out = mlp_np(dense_params(model.encoder), enc_in)
    d = model.latent_dim
    low, high = model.log_var_range
    mean, log_var = out[:, :d], np.clip(out[:, d:], low, high)
    std = np.exp(0.5 * log_var)
    z = mean + std * eps                                            # (k, n, d)
    dec_in = z if y is None else np.concatenate(
        [z, np.broadcast_to(one_hot, (len(z), *one_hot.shape))], axis=-1)
    params = mlp_np(dense_params(model.decoder), dec_in)            # (k, n, D)
    if model.likelihood == "bernoulli":
        log_px = stats.bernoulli.logpmf(x, special.expit(params)).sum(-1)
    elif model.likelihood == "continuous_bernoulli":
        log_px = np_of(tfd.ContinuousBernoulli(logits=params).log_prob(x)).sum(-1)
    else:
        dec_log_var = np.clip(np_of(model.decoder_log_var), low, high)
        log_px = stats.norm.logpdf(x, params, np.exp(0.5 * dec_log_var)).sum(-1)
    log_ratio = (stats.norm.logpdf(z).sum(-1) - stats.norm.logpdf(z, mean, std).sum(-1))
    kl = 0.5 * np.sum(mean**2 + std**2 - log_var - 1.0, axis=-1)
    reconstruction = log_px.mean(axis=0)
    beta = float(np_of(model.kl_weight))
    if model.objective == "elbo":
        objective = reconstruction - beta * kl
    else:
        objective = special.logsumexp(log_px + beta * log_ratio, axis=0) - math.log(len(z))
    return dict(objective=objective, elbo=reconstruction - kl, reconstruction=reconstruction,
                kl=kl, log_w=log_px + log_ratio, mean=mean, log_var=log_var)


def stateless_eps(shape, seed):
    """The noise a stateless (2,) seed gives: the documented contract of ``reparameterize``."""
    return np_of(tf.random.stateless_normal(shape, seed=tf.constant(seed, tf.int32)))


def copy_of(generator):
    """A SeedGenerator in the same state: it draws what ``generator`` will draw next."""
    twin = keras.random.SeedGenerator(0)
    twin.state.assign(generator.state.value)
    return twin


CASES = {
    "bernoulli-elbo": dict(likelihood="bernoulli"),
    "bernoulli-iwae": dict(likelihood="bernoulli", objective="iwae", num_samples=4,
                           kl_weight=0.3),
    "cb-elbo": dict(likelihood="continuous_bernoulli", num_samples=3, kl_weight=0.5),
    "gaussian-learned-iwae": dict(likelihood="gaussian", objective="iwae", num_samples=3),
    "gaussian-fixed-elbo": dict(likelihood="gaussian", decoder_log_var=-1.0, num_samples=2),
    "conditional-iwae": dict(likelihood="bernoulli", objective="iwae", num_samples=3,
                             num_classes=3, kl_weight=0.7),
}


def make_case(name, seed=0, **overrides):
    kwargs = dict(CASES[name], **overrides)
    kwargs.setdefault("log_var_range", (-1.5, 0.5))   # random weights hit both ends
    model = VAE(D, LATENT, HIDDEN, seed=seed, **kwargs)
    randomize_weights(model, seed + 10)
    if model.likelihood == "gaussian" and kwargs.get("decoder_log_var") is None:
        model.decoder_log_var.assign(np.linspace(-4.0, 1.5, D).astype("float32"))
    labels = (np.arange(8) % 3).astype(np.int32) if model.num_classes else None
    return model, random_data(model.likelihood, 8, seed=seed + 20), labels


# ----- Eqs. (4.1)-(4.7) against the numpy oracle ------------------------------------------
@pytest.mark.parametrize("case", list(CASES))
def test_bound_terms_and_log_weights_match_a_numpy_forward_pass(case):
    model, x, y = make_case(case)
    seed = [5, 9]
    terms = model.bound_terms(x, y, seed=tf.constant(seed))
    eps = stateless_eps((model.num_samples, len(x), LATENT), seed)
    expected = oracle_terms(model, x, eps, y)
    clipped = np.isin(expected["log_var"], model.log_var_range)
    assert clipped.any() and not clipped.all()                     # the clip is exercised
    for key in ("objective", "elbo", "reconstruction", "kl"):
        assert tuple(terms[key].shape) == (len(x),), key
        np.testing.assert_allclose(np_of(terms[key]), expected[key], rtol=1e-4, atol=1e-4,
                                   err_msg=key)
    log_w = model.log_importance_weights(x, y, num_samples=5, seed=tf.constant(seed))
    assert tuple(log_w.shape) == (5, len(x))
    eps5 = stateless_eps((5, len(x), LATENT), seed)
    np.testing.assert_allclose(np_of(log_w), oracle_terms(model, x, eps5, y)["log_w"],
                               rtol=1e-4, atol=1e-4)
    mean, log_var = model.encode(x, y)
    np.testing.assert_allclose(np_of(mean), expected["mean"], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np_of(log_var), expected["log_var"], rtol=1e-5, atol=1e-5)


def test_iwae_objective_at_k1_and_beta1_is_the_single_sample_elbo():
    model, x, _ = make_case("bernoulli-iwae", num_samples=1, kl_weight=1.0)
    eps = stateless_eps((1, len(x), LATENT), [1, 1])
    expected = oracle_terms(model, x, eps)
    got = np_of(model.bound_terms(x, seed=tf.constant([1, 1]))["objective"])
    np.testing.assert_allclose(got, expected["log_w"][0], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("likelihood", ["bernoulli", "continuous_bernoulli", "gaussian"])
def test_call_is_the_mean_image_at_the_posterior_mean(likelihood):
    model, x, _ = make_case({"bernoulli": "bernoulli-elbo", "continuous_bernoulli": "cb-elbo",
                             "gaussian": "gaussian-fixed-elbo"}[likelihood])
    mean = oracle_terms(model, x, np.zeros((1, len(x), LATENT)))["mean"]
    params = mlp_np(dense_params(model.decoder), mean)
    expected = {"bernoulli": special.expit(params),
                "continuous_bernoulli": np_of(tfd.ContinuousBernoulli(logits=params).mean()),
                "gaussian": params}[likelihood]
    np.testing.assert_allclose(np_of(model(x)), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np_of(model.predict(x, verbose=0)), expected, rtol=1e-5,
                               atol=1e-5)


def test_log_variances_are_clipped_to_the_range():
    model = VAE(D, LATENT, (), likelihood="gaussian", log_var_range=(-5.0, 2.0), seed=0)
    out = model.encoder.layers[-1]
    out.bias.assign(np.array([0.0, 0.0, 100.0, -100.0], "float32"))
    out.kernel.assign(np.zeros(out.kernel.shape, "float32"))
    _, log_var = model.encode(np.zeros((3, D), "float32"))
    np.testing.assert_array_equal(np_of(log_var), np.tile([2.0, -5.0], (3, 1)))
    model.decoder_log_var.assign(np.full(D, -100.0, "float32"))
    x, decoded = np.ones((2, D), "float32"), np.zeros((2, D), "float32")
    np.testing.assert_allclose(np_of(model.log_likelihood(x, decoded)),
                               stats.norm.logpdf(1.0, 0.0, math.exp(-2.5)) * D, rtol=1e-5)


# ----- one training step --------------------------------------------------------------------
STEP_CASES = ["bernoulli-elbo", "bernoulli-iwae", "gaussian-learned-iwae", "gaussian-fixed-elbo",
              "conditional-iwae"]


@pytest.mark.parametrize("case", STEP_CASES)
def test_one_sgd_step_is_w_minus_lr_times_the_autodiff_gradient(case):
    """fit on one batch with SGD(lr) moves every trainable weight by -lr times the gradient
    of -mean(objective) taken by GradientTape with the same noise (a copy of the model's
    seed generator); kl_weight and a fixed decoder_log_var stay put, a learned one moves."""
    lr = 0.05
    model, x, y = make_case(case, log_var_range=(-12.0, 8.0))
    twin = copy_of(model.seed_generator)
    trainable = model.trainable_variables
    with tf.GradientTape() as tape:
        reference = model.bound_terms(x, y, seed=twin)
        loss = -tf.reduce_mean(reference["objective"])
    grads = [np_of(g) for g in tape.gradient(loss, trainable)]
    before = {v.path: np_of(v) for v in model.weights}
    model.compile(optimizer=keras.optimizers.SGD(lr))
    history = model.fit(x, y, batch_size=len(x), epochs=1, shuffle=False, verbose=0)
    assert int(model.optimizer.iterations) == 1
    assert history.history["negative_bound"][0] == pytest.approx(float(loss), rel=1e-5)
    assert history.history["elbo"][0] == pytest.approx(
        float(tf.reduce_mean(reference["elbo"])), rel=1e-5)

    names = {v.path for v in trainable}
    expected_trainable = {v.path for v in model.encoder.weights + model.decoder.weights}
    learned_log_var = model.likelihood == "gaussian" and model.decoder_log_var_init is None
    if learned_log_var:
        expected_trainable.add(model.decoder_log_var.path)
    assert names == expected_trainable
    for variable, grad in zip(trainable, grads, strict=True):
        assert np.abs(grad).max() > 1e-6, variable.path
        np.testing.assert_allclose(np_of(variable), before[variable.path] - lr * grad,
                                   rtol=1e-5, atol=1e-6, err_msg=variable.path)
        assert not np.allclose(np_of(variable), before[variable.path]), variable.path
    assert np_of(model.kl_weight) == before[model.kl_weight.path]
    if model.likelihood == "gaussian" and not learned_log_var:
        assert not model.decoder_log_var.trainable
        np.testing.assert_array_equal(np_of(model.decoder_log_var), -1.0)


def test_metrics_are_named_and_negative_bound_is_minus_the_elbo_at_beta_one():
    model = VAE(D, LATENT, HIDDEN, seed=1)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    history = model.fit(random_binary(64), batch_size=16, epochs=2, verbose=0)
    assert set(history.history) == {"negative_bound", "elbo", "reconstruction", "kl"}
    h = {k: np.array(v) for k, v in history.history.items()}
    np.testing.assert_allclose(h["negative_bound"], -h["elbo"], rtol=1e-6)
    np.testing.assert_allclose(h["elbo"], h["reconstruction"] - h["kl"], rtol=1e-5)
    assert np.all(h["kl"] > 0)
    results = model.evaluate(random_binary(32, seed=1), batch_size=16, verbose=0,
                             return_dict=True)
    assert set(results) == {"negative_bound", "elbo", "reconstruction", "kl"}
    assert all(np.isfinite(v) for v in results.values())


def test_training_improves_the_bound():
    x = random_binary(64, seed=3, p=0.2)
    x[:32, :3] = 1.0                                  # two clusters the model can learn
    keras.utils.set_random_seed(0)
    model = VAE(D, LATENT, (16,), seed=0)
    model.compile(optimizer=keras.optimizers.Adam(3e-2))
    elbo = model.fit(x, batch_size=16, epochs=15, verbose=0).history["elbo"]
    assert elbo[-1] > elbo[0] + 0.5, elbo


def test_dynamic_binarization_feeds_fresh_binary_draws(monkeypatch):
    seen = []

    def spy(model):
        original = model.bound_terms

        def record(x, y=None, seed=None):
            seen.append(np_of(x))
            return original(x, y, seed)
        monkeypatch.setattr(model, "bound_terms", record)

    grey = np.full((64, D), 0.3, "float32")
    model = VAE(D, LATENT, HIDDEN, dynamic_binarization=True, seed=2)
    model.compile(optimizer=keras.optimizers.SGD(0.0), run_eagerly=True)
    spy(model)
    model.fit(grey, batch_size=64, epochs=2, verbose=0)
    assert len(seen) == 2
    for x in seen:
        assert set(np.unique(x)) == {0.0, 1.0}
        assert abs(x.mean() - 0.3) < 5 * math.sqrt(0.21 / x.size)
    assert not np.array_equal(seen[0], seen[1])

    seen.clear()
    plain = VAE(D, LATENT, HIDDEN, seed=2)
    plain.compile(optimizer=keras.optimizers.SGD(0.0), run_eagerly=True)
    spy(plain)
    plain.fit(grey, batch_size=64, epochs=1, verbose=0)
    np.testing.assert_array_equal(seen[0], grey)


# ----- XLA ------------------------------------------------------------------------------------
def test_training_under_xla_changes_the_weights_with_finite_metrics():
    model = VAE(D, LATENT, HIDDEN, objective="iwae", num_samples=3, seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), jit_compile=True)
    assert model.jit_compile is True  # Keras did not fall back to a plain tf.function
    before = [np_of(v) for v in model.trainable_variables]
    history = model.fit(random_binary(32), batch_size=16, epochs=1, verbose=0)
    assert all(np.isfinite(v).all() for v in history.history.values())
    for a, variable in zip(before, model.trainable_variables, strict=True):
        assert not np.allclose(a, np_of(variable)), variable.path
    results = model.evaluate(random_binary(16), verbose=0, return_dict=True)
    assert np.isfinite(results["negative_bound"])


@pytest.mark.parametrize("case", ["bernoulli-iwae", "gaussian-learned-iwae", "cb-elbo"])
def test_xla_bound_terms_match_the_oracle_on_the_noise_drawn_under_xla(case):
    """Under XLA the stateless RNG gives other numbers than TensorFlow's CPU kernel for the
    same seed (also with alg="philox"), so XLA and eager are compared through the oracle:
    the jit-compiled function returns the terms and the noise it drew with that seed."""
    model, x, y = make_case(case)
    seed = tf.constant([2, 7])
    shape = (model.num_samples, len(x), LATENT)

    @tf.function(jit_compile=True)
    def terms_and_noise(x):
        return model.bound_terms(x, y, seed=seed), tf.random.stateless_normal(shape, seed)

    xla, eps = terms_and_noise(tf.constant(x))
    expected = oracle_terms(model, x, np_of(eps), y)
    eager = model.bound_terms(x, y, seed=seed)
    for key in eager:
        np.testing.assert_allclose(np_of(xla[key]), expected[key], rtol=1e-4, atol=1e-4,
                                   err_msg=key)
    # The deterministic part agrees exactly: the closed-form KL does not depend on the noise.
    np.testing.assert_allclose(np_of(xla["kl"]), np_of(eager["kl"]), rtol=1e-6)


# ----- serialization ------------------------------------------------------------------------
def test_config_round_trip_keeps_every_argument():
    kwargs = dict(input_dim=7, latent_dim=3, hidden_units=[6, 4], activation="relu",
                  likelihood="gaussian", objective="iwae", num_samples=5, num_classes=4,
                  kl_weight=0.25, decoder_log_var=-2.0, log_var_range=[-9.0, 5.0],
                  dynamic_binarization=False, seed=13)
    model = VAE(**kwargs, name="my_vae")
    config = model.get_config()
    for key, value in kwargs.items():
        assert config[key] == value, key
    clone = VAE.from_config(config)
    assert type(clone) is VAE and clone.name == "my_vae"
    assert clone.get_config() == config
    assert [tuple(v.shape) for v in clone.weights] == [tuple(v.shape) for v in model.weights]
    np.testing.assert_allclose(np_of(clone.kl_weight), 0.25)
    np.testing.assert_allclose(np_of(clone.decoder_log_var), -2.0)


@pytest.mark.parametrize("case", ["conditional-iwae", "gaussian-learned-iwae",
                                  "gaussian-fixed-elbo"])
def test_keras_file_round_trip_keeps_outputs_config_and_random_stream(case, tmp_path):
    assert keras.saving.get_registered_object("course_lib>VAE") is VAE
    model, x, y = make_case(case)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    model.fit(x, y, batch_size=4, epochs=1, verbose=0)     # advances weights and the stream
    model.kl_weight.assign(0.4)
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded) is VAE
    assert loaded.get_config() == model.get_config()
    for a, b in zip(model.weights, loaded.weights, strict=True):
        assert a.path == b.path
        np.testing.assert_array_equal(np_of(a), np_of(b))
    np.testing.assert_array_equal(np_of(loaded(x, y)), np_of(model(x, y)))
    for key, value in model.bound_terms(x, y, seed=3).items():
        np.testing.assert_array_equal(np_of(loaded.bound_terms(x, y, seed=3)[key]),
                                      np_of(value))
    # The seed generator resumes where it stopped instead of replaying from the start.
    state = np_of(model.seed_generator.state)
    assert state[1] > 0
    np.testing.assert_array_equal(np_of(loaded.seed_generator.state), state)
    label = None if y is None else 1
    continued = loaded.sample(4, y=label)
    np.testing.assert_array_equal(continued, model.sample(4, y=label))
    restarted = VAE.from_config(model.get_config())
    restarted.set_weights(model.get_weights())
    assert not np.allclose(restarted.sample(4, y=label), continued)


# ----- input validation -----------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, match", [
    (dict(likelihood="poisson"), "likelihood must be one of"),
    (dict(objective="vimco"), "objective must be one of"),
    (dict(log_var_range=(2.0, 2.0)), "low < high"),
    (dict(log_var_range=(3.0, -3.0)), "low < high"),
    (dict(likelihood="gaussian", dynamic_binarization=True), "dynamic_binarization needs"),
    (dict(likelihood="continuous_bernoulli", dynamic_binarization=True), "needs likelihood"),
    (dict(num_samples=0), "num_samples must be an integer >= 1"),
    (dict(num_classes=1), "num_classes must be an integer >= 2"),
    (dict(latent_dim=0), "latent_dim must be"),
    (dict(hidden_units=(4, 0)), "hidden layer width"),
])
def test_constructor_rejects_bad_arguments(kwargs, match):
    kwargs = {"input_dim": D, "latent_dim": LATENT, **kwargs}
    with pytest.raises(ValueError, match=match):
        VAE(**kwargs)


def test_fit_and_checks_reject_bad_arrays():
    model = VAE(D, LATENT, HIDDEN, seed=0)
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    with pytest.raises(ValueError, match=rf"shape \(n, {D}\)"):
        model.fit(random_binary(16, D + 1), batch_size=8, verbose=0)
    bad = random_binary(16)
    bad[3, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        model.fit(bad, batch_size=8, verbose=0)
    with pytest.raises(ValueError, match=r"\[0, 1\] for the bernoulli likelihood"):
        model.fit(random_binary(16) * 2.0, batch_size=8, verbose=0)
    cb = VAE(D, LATENT, HIDDEN, likelihood="continuous_bernoulli")
    with pytest.raises(ValueError, match=r"\[0, 1\].*got values in \[-0.5"):
        cb.check_visible(np.full((2, D), -0.5))
    VAE(D, LATENT, HIDDEN, likelihood="gaussian").check_visible(np.full((2, D), -7.0))
    with pytest.raises(ValueError, match=rf"shape \(n, {D}\)"):
        importance_weighted_bound(model, random_binary(4, D - 1), num_samples=2)
    assert int(model.optimizer.iterations) == 0     # nothing ran


def test_label_errors_are_clear():
    x, y = random_binary(12), np.arange(12) % 3
    plain = VAE(D, LATENT, HIDDEN, seed=0)
    plain.compile(optimizer=keras.optimizers.SGD(0.1))
    with pytest.raises(ValueError, match="labels were given to an unconditional VAE"):
        plain.fit(x, y, batch_size=4, verbose=0)
    with pytest.raises(ValueError, match="unconditional VAE"):
        plain.sample(2, y=1)
    with pytest.raises(ValueError, match="unconditional VAE"):
        plain.encode(x, y)

    cond = VAE(D, LATENT, HIDDEN, num_classes=3, seed=0)
    cond.compile(optimizer=keras.optimizers.SGD(0.1))
    with pytest.raises(ValueError, match=r"labels in \[0, 3\); got values in \[0, 3\]"):
        cond.fit(x, np.arange(12) % 4, batch_size=4, verbose=0)
    with pytest.raises(ValueError, match=r"labels in \[0, 3\)"):
        cond.fit(x, -(np.arange(12) % 3), batch_size=4, verbose=0)
    with pytest.raises(ValueError, match="one label per row"):
        cond.fit(x, y[:-1], batch_size=4, verbose=0)
    with pytest.raises(ValueError, match="integer labels"):
        cond.fit(x, y.astype("float32"), batch_size=4, verbose=0)
    with pytest.raises(ValueError, match=r"labels in \[0, 3\)"):
        cond.sample(2, y=5)
    with pytest.raises(ValueError, match="needs the labels y"):
        cond.sample(2)
    with pytest.raises(ValueError, match="needs the labels y"):
        importance_weighted_bound(cond, x, num_samples=2)
    with pytest.raises(ValueError, match="needs the labels y"):
        cond.fit(x, batch_size=4, verbose=0)


def test_a_forgotten_label_array_does_not_break_the_next_fit():
    """The usual notebook slip: fit(x) on a conditional VAE, read the error, call
    fit(x, y). The error must come before Keras traces the train function; otherwise
    the half-traced function refuses Adam's slot variables on the second call ("Creating
    variables on a non-first call to a function decorated with tf.function")."""
    x, y = random_binary(12), np.arange(12) % 3
    cond = VAE(D, LATENT, HIDDEN, num_classes=3, seed=0)
    cond.compile(optimizer=keras.optimizers.Adam(1e-2))
    with pytest.raises(ValueError, match="needs the labels y"):
        cond.fit(x, batch_size=4, verbose=0)
    history = cond.fit(x, y, batch_size=4, epochs=1, verbose=0)
    assert np.isfinite(history.history["negative_bound"][0])


def test_nan_weights_stop_training_with_a_clear_error():
    model = VAE(D, LATENT, HIDDEN, seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    bias = model.decoder.layers[-1].bias
    bias.assign(np.full(bias.shape, np.nan, "float32"))
    with pytest.raises(TrainingDivergedError, match="(?i)nan") as info:
        model.fit(random_binary(32), batch_size=8, epochs=2, verbose=0)
    assert "lower the learning rate" in str(info.value)
    assert model.stop_training


def test_an_enormous_learning_rate_stops_training():
    model = VAE(D, LATENT, HIDDEN, likelihood="gaussian", seed=0)
    model.compile(optimizer=keras.optimizers.SGD(1e8))
    with pytest.raises(TrainingDivergedError, match="Training diverged"):
        model.fit(random_data("gaussian", 64), batch_size=8, epochs=3, verbose=0)


# ----- KL annealing and the conditional VAE ---------------------------------------------------
def test_kl_annealing_schedule_and_arguments():
    anneal = KLAnnealing(warmup_steps=4, start=0.2)
    assert [anneal.beta(s) for s in range(7)] == pytest.approx([0.2, 0.4, 0.6, 0.8, 1, 1, 1])
    assert KLAnnealing(10).beta(0) == 0.0 and KLAnnealing(10).beta(5) == pytest.approx(0.5)
    for kwargs, match in ((dict(warmup_steps=0), "warmup_steps"),
                          (dict(warmup_steps=2.5), "warmup_steps"),
                          (dict(warmup_steps=3, start=1.5), r"start must be in \[0, 1\]"),
                          (dict(warmup_steps=3, start=-0.1), r"start must be in \[0, 1\]")):
        with pytest.raises(ValueError, match=match):
            KLAnnealing(**kwargs)


class BetaLoggingVAE(VAE):
    """A VAE that writes the beta each update's objective reads (``kl_weight`` at the time
    ``bound_terms`` runs) into ``beta_log[step]``, inside the compiled step."""

    def build(self, input_shape):
        super().build(input_shape)
        self.beta_log = self.add_weight(shape=(64,), initializer=keras.initializers.Constant(-1.0),
                                        trainable=False, name="beta_log")

    def bound_terms(self, x, y=None, seed=None):
        step = tf.reshape(tf.cast(self.optimizer.iterations, tf.int32), (1, 1))
        beta = tf.reshape(tf.convert_to_tensor(self.kl_weight), (1,))
        self.beta_log.assign(tf.tensor_scatter_nd_update(self.beta_log, step, beta))
        return super().bound_terms(x, y, seed)


ANNEAL_X = random_binary(64, seed=5)


def annealed_run(steps_per_execution, model_class=VAE):
    """3 epochs of 16 updates (batch 4) with beta from 0.1 to 1 over 20 updates."""
    keras.utils.set_random_seed(0)
    model = model_class(D, LATENT, HIDDEN, kl_weight=0.9, seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-2),
                  steps_per_execution=steps_per_execution)
    anneal = KLAnnealing(warmup_steps=20, start=0.1)
    history = model.fit(ANNEAL_X, batch_size=4, epochs=3, shuffle=False, verbose=0,
                        callbacks=[anneal])
    assert int(model.optimizer.iterations) == 48
    return model, anneal, history.history


def test_kl_weight_follows_the_annealing_schedule_at_every_step_of_a_compiled_call():
    """With 8 updates per compiled call (callbacks run only between calls) update t still
    uses beta(t): a schedule applied from a callback would be a staircase of 8-step treads."""
    model, anneal, history = annealed_run(8, BetaLoggingVAE)
    used = np_of(model.beta_log)[:48]
    np.testing.assert_allclose(used, [anneal.beta(t) for t in range(48)], rtol=1e-6)
    assert len(np.unique(used[:20])) == 20                       # no two steps share a beta
    assert anneal.history == pytest.approx([anneal.beta(15), 1.0, 1.0])
    # beta entered the objective: -(rec - beta KL) < -ELBO while beta < 1, equal after.
    negative_bound, elbo = np.array(history["negative_bound"]), np.array(history["elbo"])
    assert negative_bound[0] < -elbo[0] - 1e-3
    np.testing.assert_allclose(negative_bound[2], -elbo[2], rtol=1e-6)
    # The schedule ends with the fit; beta then stays where it is.
    assert float(np_of(model.kl_warmup_steps)) == 0.0
    model.kl_weight.assign(0.3)
    model.fit(ANNEAL_X, batch_size=16, epochs=1, verbose=0)
    assert float(np_of(model.kl_weight)) == pytest.approx(0.3)


def test_annealed_training_does_not_depend_on_steps_per_execution():
    one, _, one_history = annealed_run(1)
    eight, _, eight_history = annealed_run(8)
    assert float(np_of(eight.kl_weight)) == float(np_of(one.kl_weight)) == 1.0
    for a, b in zip(one.weights, eight.weights, strict=True):
        np.testing.assert_allclose(np_of(b), np_of(a), rtol=1e-5, atol=1e-6, err_msg=a.path)
    for key, values in one_history.items():
        np.testing.assert_allclose(eight_history[key], values, rtol=1e-5, err_msg=key)


def test_annealed_kl_weight_is_the_schedule_or_the_current_beta():
    model = VAE(D, LATENT, HIDDEN, kl_weight=0.7, seed=0)
    assert float(np_of(model.annealed_kl_weight(5))) == pytest.approx(0.7)   # no schedule
    model.kl_warmup_start.assign(0.2)
    model.kl_warmup_steps.assign(8.0)
    anneal = KLAnnealing(warmup_steps=8, start=0.2)
    for step in (0, 3, 8, 100):
        assert float(np_of(model.annealed_kl_weight(step))) == pytest.approx(anneal.beta(step))
    with pytest.raises(TypeError, match="needs a VAE"):
        keras_model = keras.Sequential([keras.Input((D,)), keras.layers.Dense(1)])
        keras_model.compile(optimizer="sgd", loss="mse")
        keras_model.fit(ANNEAL_X, ANNEAL_X[:, :1], epochs=1, verbose=0,
                        callbacks=[KLAnnealing(4)])


def test_conditional_vae_trains_and_samples_each_class():
    rng = np.random.default_rng(0)
    y = np.arange(48) % 3
    prototypes = np.eye(3, D)
    x = (rng.random((48, D)) < 0.1 + 0.8 * prototypes[y]).astype("float32")
    model = VAE(D, LATENT, HIDDEN, num_classes=3, seed=4)
    model.compile(optimizer=keras.optimizers.Adam(2e-2))
    before = [np_of(v) for v in model.trainable_variables]
    history = model.fit(x, y, batch_size=12, epochs=4, verbose=0,
                        callbacks=[KLAnnealing(warmup_steps=8)])
    assert np.all(np.isfinite(history.history["negative_bound"]))
    for a, variable in zip(before, model.trainable_variables, strict=True):
        assert not np.allclose(a, np_of(variable)), variable.path
    images = [model.sample(5, y=label, seed=1) for label in range(3)]
    for image in images:
        assert image.shape == (5, D) and image.dtype == np.float32
        assert image.min() >= 0.0 and image.max() <= 1.0
    # Same z (same seed), different labels: different images; a label array works too.
    assert not np.allclose(images[0], images[1])
    mixed = model.sample(3, y=np.array([0, 1, 2]), seed=1)
    np.testing.assert_allclose(mixed, np.stack([images[k][k] for k in range(3)]), rtol=1e-6)


def test_replica_scale_is_identity_on_one_device():
    assert float(replica_scale(tf.constant(3.0))) == 3.0


# ----- two replicas ---------------------------------------------------------------------------
MIRRORED_SCRIPT = textwrap.dedent("""
    import numpy as np
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()])
    import keras
    from course_lib.variational.vae import VAE

    rng = np.random.default_rng(0)
    x = (rng.random((8, 6)) < 0.5).astype("float32")
    kwargs = dict(input_dim=6, latent_dim=2, hidden_units=(5,), seed=0,
                  log_var_range=(-25.0, -24.0))           # posterior noise ~1e-5: negligible

    def one_step(weights, strategy):
        with strategy.scope():           # the model and its optimizer live on the replicas
            model = VAE(**kwargs)
            model.set_weights(weights)
            model.compile(optimizer=keras.optimizers.SGD(0.5))
        model.fit(x, batch_size=8, epochs=1, shuffle=False, verbose=0)
        return model, [v.numpy() - w for v, w in zip(model.weights, weights)]

    keras.utils.set_random_seed(0)
    weights = [w.copy() for w in VAE(**kwargs).get_weights()]
    single, single_delta = one_step(weights, tf.distribute.get_strategy())
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    assert strategy.num_replicas_in_sync == 2, strategy.num_replicas_in_sync
    mirrored, mirrored_delta = one_step(weights, strategy)
    assert isinstance(mirrored.encoder.layers[0].kernel.value, tf.distribute.DistributedValues)
    for a, b, v in zip(single_delta, mirrored_delta, single.weights):
        assert np.all(np.isfinite(b)), v.path
        scale = np.abs(a).max()
        if v.trainable:
            assert scale > 1e-4, (v.path, scale)
        err = np.abs(a - b).max() / max(scale, 1e-12)
        assert err < 1e-3, (v.path, err, np.abs(b).max() / max(scale, 1e-12))

    with strategy.scope():
        trained = VAE(6, 2, (5,), objective="iwae", num_samples=2, seed=1)
        trained.compile(optimizer=keras.optimizers.Adam(1e-2))
    before = trained.encoder.layers[0].kernel.numpy().copy()
    data = (rng.random((64, 6)) < 0.5).astype("float32")
    history = trained.fit(data, batch_size=16, epochs=2, verbose=0)
    assert all(np.isfinite(v).all() for v in history.history.values()), history.history
    assert not np.allclose(before, trained.encoder.layers[0].kernel.numpy())
    print("MIRRORED_OK")
""")


def test_mirrored_strategy_step_equals_the_single_device_step(tmp_path):
    """One SGD step on a batch of 8 split over two logical CPUs moves every weight exactly as
    one step on one device (the replicas' gradients are summed, so each replica's mean loss
    must be divided by 2; without that the step would be twice as long)."""
    run_script(tmp_path, MIRRORED_SCRIPT, "MIRRORED_OK", shared=True)
