"""Tests of course_lib.variational.vqvae against numpy oracles written from Eqs. (4.8)-(4.11).

The oracles never call the library's math: nearest codebook vectors by brute force over
every (vector, code) pair, perplexity as exp(entropy) of counted codes, the loss terms and
their gradients written out in numpy, and the per-position prior as explicit counting with
``alpha`` pseudo-counts. Tiny 8x8 images with filters (4, 8) give a 2x2 grid of codes and
keep every test to about a second.
"""

import itertools
import math

import keras
import numpy as np
import pytest
import tensorflow as tf
from scipy import stats

from course_lib.variational.vqvae import VQVAE, PositionwisePrior, VectorQuantizer, perplexity

IMAGE_SHAPE, FILTERS, K, D = (8, 8), (4, 8), 8, 3
GRID = (2, 2)  # 8 / 2 ** len(FILTERS)


def np_of(tensor):
    return np.asarray(keras.ops.convert_to_numpy(tensor), dtype=np.float64)


def random_binary(n, d, seed=0, p=0.5):
    return (np.random.default_rng(seed).random((n, d)) < p).astype("float32")


def small_model(seed=0, init=True, **kwargs):
    """A VQ-VAE on 8x8 images; with ``init`` its codebook is started from data, so that
    several codes are in use (a random codebook near 0 maps every vector to one code).
    The convolutions draw their initial weights from Keras' global generator (``seed``
    seeds only the model's own draws), so it is seeded here for repeatable tests."""
    keras.utils.set_random_seed(seed)
    kwargs = dict(dict(num_embeddings=K, embedding_dim=D, filters=FILTERS, seed=seed), **kwargs)
    model = VQVAE(IMAGE_SHAPE, **kwargs)
    if init:
        model.init_codebook(random_binary(32, 64, seed=seed + 100), seed=seed)
    return model


def nearest_codes_np(z, codebook):
    """Eq. (4.8) by brute force: argmin_j ||z - e_j||^2 over every pair, in float64."""
    flat = np.asarray(z, np.float64).reshape(-1, codebook.shape[1])
    squared = ((flat[:, None, :] - codebook[None, :, :]) ** 2).sum(-1)
    return squared.argmin(1).reshape(np.shape(z)[:-1])


def softplus_np(a):
    return np.logaddexp(0.0, a)


def bernoulli_log_prob_np(x, logits):
    """sum_i x_i log sigmoid(l_i) + (1 - x_i) log(1 - sigmoid(l_i))."""
    return (x * -softplus_np(-logits) + (1 - x) * -softplus_np(logits)).sum(-1)


def perplexity_np(codes, num_embeddings):
    counts = np.array([(np.ravel(codes) == k).sum() for k in range(num_embeddings)], float)
    p = counts / counts.sum()
    p = p[p > 0]
    return math.exp(-(p * np.log(p)).sum())


# ----- VectorQuantizer --------------------------------------------------------------------
def test_codes_are_the_brute_force_nearest_codebook_vectors():
    quantizer = VectorQuantizer(K, D)
    rng = np.random.default_rng(0)
    codebook = rng.normal(size=(K, D)).astype("float32")
    quantizer.codebook.assign(codebook)
    z = rng.normal(size=(5, 3, 4, D)).astype("float32")
    codes = np_of(quantizer.codes(z)).astype(int)
    expected = nearest_codes_np(z, codebook.astype(np.float64))
    np.testing.assert_array_equal(codes, expected)
    assert len(np.unique(expected)) > K // 2  # a test that exercises many codes


def test_lookup_and_call_shapes():
    quantizer = VectorQuantizer(K, D)
    codebook = np.random.default_rng(1).normal(size=(K, D)).astype("float32")
    quantizer.codebook.assign(codebook)
    codes = np.array([[0, 7], [3, 3], [5, 1]])
    np.testing.assert_array_equal(np_of(quantizer.lookup(codes)), codebook[codes])

    z = np.random.default_rng(2).normal(size=(2, 3, 5, D)).astype("float32")
    z_q, codes = quantizer(z)
    assert tuple(z_q.shape) == (2, 3, 5, D) and tuple(codes.shape) == (2, 3, 5)
    np.testing.assert_array_equal(np_of(z_q), codebook[np_of(codes).astype(int)])
    z_q, codes = quantizer(z.reshape(-1, D))  # a plain batch of vectors works too
    assert tuple(z_q.shape) == (30, D) and tuple(codes.shape) == (30,)


def test_quantizer_config_round_trips():
    quantizer = VectorQuantizer(5, 2, name="vq")
    config = quantizer.get_config()
    assert config["num_embeddings"] == 5 and config["embedding_dim"] == 2
    clone = VectorQuantizer.from_config(config)
    assert clone.get_config() == config
    assert tuple(clone.codebook.shape) == (5, 2)
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(quantizer))
    assert isinstance(restored, VectorQuantizer) and restored.get_config() == config


@pytest.mark.parametrize("kwargs", [dict(num_embeddings=1, embedding_dim=2),
                                    dict(num_embeddings=2.5, embedding_dim=2),
                                    dict(num_embeddings=True, embedding_dim=2),
                                    dict(num_embeddings=4, embedding_dim=0)])
def test_quantizer_rejects_bad_sizes(kwargs):
    with pytest.raises(ValueError, match="num_embeddings|embedding_dim"):
        VectorQuantizer(**kwargs)


# ----- perplexity -------------------------------------------------------------------------
def test_perplexity_is_exp_entropy_of_the_code_counts():
    codes = np.random.default_rng(0).choice(6, size=(40, 2, 2), p=[.4, .3, .1, .1, .1, 0.0])
    assert float(perplexity(codes, 6)) == pytest.approx(perplexity_np(codes, 6), rel=1e-5)


def test_perplexity_limits():
    assert float(perplexity(np.full((10, 2, 2), 3), 8)) == pytest.approx(1.0, abs=1e-6)
    uniform = np.tile(np.arange(8), 5).reshape(10, 2, 2)
    assert float(perplexity(uniform, 8)) == pytest.approx(8.0, rel=1e-5)


# ----- VQVAE: the loss and its gradients ---------------------------------------------------
def test_loss_terms_match_numpy():
    model = small_model(commitment_cost=0.3)
    x = random_binary(6, 64, seed=1)
    terms = model.loss_terms(x)
    z_e = np_of(model.encode(x))
    codebook = np_of(model.quantizer.codebook)
    codes = nearest_codes_np(z_e, codebook)
    z_q = codebook[codes]
    logits = np_of(model.decode(z_q.astype("float32")))
    np.testing.assert_array_equal(np_of(terms["codes"]), codes)
    np.testing.assert_allclose(np_of(terms["reconstruction"]),
                               -bernoulli_log_prob_np(x, logits), rtol=1e-5)
    squared = ((z_e - z_q) ** 2).sum(axis=(1, 2, 3))
    np.testing.assert_allclose(np_of(terms["codebook_loss"]), squared, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np_of(terms["commitment_loss"]), squared, rtol=1e-5, atol=1e-6)
    # The reported loss is the mean of (4.10), as evaluate() sees it.
    model.compile(keras.optimizers.SGD(0.0))
    logs = model.evaluate(x, batch_size=len(x), verbose=0, return_dict=True)
    expected = (-bernoulli_log_prob_np(x, logits) + 1.3 * squared).mean()
    assert logs["total_loss"] == pytest.approx(expected, rel=1e-5)
    assert logs["perplexity"] == pytest.approx(perplexity_np(codes, K), rel=1e-5)


def test_straight_through_passes_the_decoder_gradient_to_the_encoder_exactly(monkeypatch):
    """Eq. (4.9): d reconstruction / d z_e through the model's own loss equals
    d reconstruction / d z_q of -log p(x | z_q) differentiated at z_q."""
    model = small_model()
    x = random_binary(6, 64, seed=2)
    z_e = tf.constant(model.encode(x))
    z_q, _ = model.quantizer(z_e)
    assert float(tf.reduce_max(tf.abs(z_q - z_e))) > 1e-3  # not trivially z_q == z_e

    with tf.GradientTape() as tape:                         # the decoder's own gradient
        tape.watch(z_q)
        direct = -tf.reduce_sum(x * model.decode(z_q) - tf.nn.softplus(model.decode(z_q)))
    grad_z_q = tape.gradient(direct, z_q)

    monkeypatch.setattr(model, "encode", lambda _: z_e)     # make z_e a watchable input
    with tf.GradientTape() as tape:
        tape.watch(z_e)
        reconstruction = tf.reduce_sum(model.loss_terms(x)["reconstruction"])
    grad_z_e = tape.gradient(reconstruction, z_e)
    # Equal up to float32 rounding: z_e + (z_q - z_e) is z_q to within an ulp or so.
    assert float(reconstruction) == pytest.approx(float(direct), rel=1e-6)
    np.testing.assert_allclose(np_of(grad_z_e), np_of(grad_z_q), rtol=1e-5, atol=1e-6)


def test_straight_through_gradient_of_the_encoder_weights():
    """The encoder's weights get J_enc^T (d rec / d z_q): a vector-Jacobian product of the
    encoder with the decoder's gradient, without touching the loss code."""
    model = small_model()
    x = random_binary(6, 64, seed=3)
    z_q, _ = model.quantizer(model.encode(x))
    with tf.GradientTape() as tape:
        tape.watch(z_q)
        logits = model.decode(z_q)
        direct = -tf.reduce_sum(x * logits - tf.nn.softplus(logits))
    grad_z_q = tape.gradient(direct, z_q)
    encoder = model.encoder.trainable_variables
    with tf.GradientTape() as tape:
        z_e = model.encode(x)
    expected = tape.gradient(z_e, encoder, output_gradients=grad_z_q)
    with tf.GradientTape() as tape:
        reconstruction = tf.reduce_sum(model.loss_terms(x)["reconstruction"])
    got = tape.gradient(reconstruction, encoder)
    for g, e, v in zip(got, expected, encoder, strict=True):
        np.testing.assert_allclose(np_of(g), np_of(e), rtol=1e-4, atol=1e-5, err_msg=v.path)


def test_each_loss_term_reaches_only_its_own_parameters():
    model = small_model()
    x = random_binary(8, 64, seed=4)
    groups = {"encoder": model.encoder.trainable_variables,
              "decoder": model.decoder.trainable_variables,
              "codebook": [model.quantizer.codebook]}
    reaches = {}
    for term in ("reconstruction", "codebook_loss", "commitment_loss"):
        with tf.GradientTape(persistent=True) as tape:
            value = tf.reduce_sum(model.loss_terms(x)[term])
        reaches[term] = set()
        for name, variables in groups.items():
            grads = tape.gradient(value, variables)
            if any(g is not None and np.any(np_of(tf.convert_to_tensor(g)) != 0)
                   for g in grads):
                reaches[term].add(name)
    assert reaches == {"reconstruction": {"encoder", "decoder"},
                       "codebook_loss": {"codebook"},
                       "commitment_loss": {"encoder"}}


def test_codebook_and_commitment_gradients_match_numpy(monkeypatch):
    """d/de_k sum ||sg[z_e] - e||^2 = sum over positions coded k of 2 (e_k - z_e);
    d/dz_e sum ||z_e - sg[e]||^2 = 2 (z_e - z_q)."""
    model = small_model()
    x = random_binary(8, 64, seed=5)
    z_e = tf.constant(model.encode(x))
    monkeypatch.setattr(model, "encode", lambda _: z_e)
    codebook = model.quantizer.codebook
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(z_e)
        terms = model.loss_terms(x)
        codebook_loss = tf.reduce_sum(terms["codebook_loss"])
        commitment_loss = tf.reduce_sum(terms["commitment_loss"])
    z = np_of(z_e).reshape(-1, D)
    e = np_of(codebook)
    codes = nearest_codes_np(z, e)
    expected_e = np.zeros_like(e)
    for vector, k in zip(z, codes, strict=True):
        expected_e[k] += 2.0 * (e[k] - vector)
    got_e = np_of(tf.convert_to_tensor(tape.gradient(codebook_loss, codebook)))
    np.testing.assert_allclose(got_e, expected_e, rtol=1e-5, atol=1e-5)
    got_z = np_of(tape.gradient(commitment_loss, z_e)).reshape(-1, D)
    np.testing.assert_allclose(got_z, 2.0 * (z - e[codes]), rtol=1e-5, atol=1e-5)


def test_one_train_step_changes_encoder_decoder_and_codebook():
    model = small_model()
    model.compile(keras.optimizers.SGD(0.05))
    assert len(model.trainable_variables) > 0
    x = random_binary(16, 64, seed=6)
    codes = np_of(model.codes(x)).astype(int)
    before = {v.path: np_of(v) for v in model.trainable_variables}
    history = model.fit(x, batch_size=16, epochs=1, shuffle=False, verbose=0)
    assert np.isfinite(history.history["total_loss"][0])
    # No metric shadows the "loss" that keras.Model.compile tracks on its own.
    assert set(history.history) == {"total_loss", "reconstruction", "codebook_loss",
                                    "commitment_loss", "perplexity"}
    changed = {path for path, value in before.items()
               if not np.array_equal(value, np_of(next(v for v in model.trainable_variables
                                                       if v.path == path)))}
    for net in (model.encoder, model.decoder):
        assert changed & {v.path for v in net.trainable_variables}, (net.name, changed)
    codebook = np_of(model.quantizer.codebook)
    old = before[model.quantizer.codebook.path]
    used = np.unique(codes)
    # With plain SGD the rows used in the batch move and the unused ones stay put.
    assert all(not np.array_equal(codebook[k], old[k]) for k in used)
    unused = np.setdiff1d(np.arange(K), used)
    np.testing.assert_array_equal(codebook[unused], old[unused])


def test_fit_rejects_labels():
    model = small_model()
    model.compile(keras.optimizers.SGD(0.05))
    with pytest.raises(ValueError, match="labels"):
        model.fit(random_binary(16, 64), np.zeros(16, int), batch_size=8, verbose=0)


# ----- VQVAE: codebook start, saving, inputs ----------------------------------------------
def test_init_codebook_uses_encoder_outputs():
    model = small_model(init=False)
    x = random_binary(10, 64, seed=7)
    model.init_codebook(x, seed=3)
    vectors = np_of(model.encode(x)).reshape(-1, D)
    codebook = np_of(model.quantizer.codebook)
    matches = [np.flatnonzero(np.all(vectors == row, axis=1)) for row in codebook]
    assert all(len(m) > 0 for m in matches)
    assert len({int(m[0]) for m in matches}) == K  # K different positions were drawn
    model.init_codebook(x, seed=4)
    assert not np.array_equal(np_of(model.quantizer.codebook), codebook)
    model.init_codebook(x, seed=3)  # the same seed draws the same positions
    np.testing.assert_array_equal(np_of(model.quantizer.codebook), codebook)
    codes = model.codes_of(x)
    assert perplexity_np(codes, K) > 2.0  # codes spread over several codewords


def test_init_codebook_needs_enough_vectors():
    model = small_model(init=False)
    with pytest.raises(ValueError, match=f"at least {K}"):
        model.init_codebook(random_binary(1, 64))  # 1 image gives 4 vectors


def test_save_and_load_round_trip(tmp_path):
    model = small_model(commitment_cost=0.4)
    model.compile(keras.optimizers.Adam(1e-2))
    x = random_binary(16, 64, seed=8)
    model.fit(x, batch_size=8, epochs=1, verbose=0)
    path = tmp_path / "vqvae.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, VQVAE)
    assert loaded.get_config() == model.get_config()
    assert loaded.commitment_cost == 0.4 and loaded.grid_shape == GRID
    np.testing.assert_array_equal(np_of(loaded(x)), np_of(model(x)))
    np.testing.assert_array_equal(loaded.codes_of(x), model.codes_of(x))
    np.testing.assert_array_equal(np_of(loaded.quantizer.codebook),
                                  np_of(model.quantizer.codebook))


def test_the_model_is_built_by_keras_build_at_construction():
    """__init__ calls build(), which creates the networks and the codebook, so Keras marks
    the model and every layer built and records the input shape (what a .keras file stores
    to rebuild it), rather than the model declaring itself built."""
    model = small_model(init=False)
    assert model.get_build_config() == {"input_shape": (None, 64)}
    for layer in (model, model.quantizer, model.encoder, model.decoder):
        assert layer.built, layer.name
    assert model.quantizer.get_build_config() == {"input_shape": (None, D)}
    with pytest.raises(ValueError, match="embedding_dim"):
        VectorQuantizer(K, D).build((None, D + 1))


def test_save_and_load_keeps_the_optimizer_state(tmp_path):
    """A checkpoint resumes Adam where it stopped (SafeCheckpoint / resume rely on it)."""
    model = small_model()
    model.compile(keras.optimizers.Adam(1e-2))
    model.fit(random_binary(16, 64, seed=8), batch_size=8, epochs=1, verbose=0)
    path = tmp_path / "vqvae.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert int(loaded.optimizer.iterations) == int(model.optimizer.iterations) == 2
    saved, restored = model.optimizer.variables, loaded.optimizer.variables
    assert len(restored) == len(saved)  # (sublayer names, hence paths, differ on loading)
    assert any(np.any(np_of(v) != 0) for v in saved if "momentum" in v.path)
    for old, new in zip(saved, restored, strict=True):
        np.testing.assert_array_equal(np_of(new), np_of(old), err_msg=old.path)


def test_shapes_of_the_public_methods():
    model = small_model()
    x = random_binary(5, 64, seed=9)
    assert tuple(model.encode(x).shape) == (5, *GRID, D)
    assert model.codes_of(x, batch_size=2).shape == (5, *GRID)
    assert model.codes_of(x).dtype == np.int64
    reconstruction = np_of(model(x))
    assert reconstruction.shape == (5, 64) and reconstruction.min() >= 0
    assert reconstruction.max() <= 1
    assert tuple(model.decode_codes(model.codes_of(x)).shape) == (5, 64)


@pytest.mark.parametrize("method", ["fit", "codes_of", "init_codebook",
                                    "log_likelihood_given_codes"])
@pytest.mark.parametrize("bad, match", [
    (random_binary(16, 63), r"\(n, 64\)"),
    (random_binary(16, 64) * 2.0, r"\[0, 1\]"),
    (random_binary(16, 64).reshape(16, 8, 8), "2-D"),
])
def test_bad_images_are_refused(method, bad, match):
    model = small_model()
    model.compile(keras.optimizers.SGD(0.01))
    calls = {"fit": lambda: model.fit(bad, batch_size=8, verbose=0),
             "codes_of": lambda: model.codes_of(bad),
             "init_codebook": lambda: model.init_codebook(bad),
             "log_likelihood_given_codes":
                 lambda: model.log_likelihood_given_codes(bad, np.zeros((16, *GRID), int))}
    with pytest.raises(ValueError, match=match):
        calls[method]()


def test_encoding_refuses_images_of_the_wrong_width():
    """32 rows of 32 pixels hold as many numbers as 16 images of 8x8: the reshape inside
    ``encode`` must not silently turn them into 16 wrong images."""
    model = small_model()
    wrong = random_binary(32, 32)
    with pytest.raises(ValueError, match="64"):
        model.encode(wrong)
    with pytest.raises(ValueError, match="64"):
        model(wrong)


@pytest.mark.parametrize("kwargs, match", [
    (dict(image_shape=(8, 6)), "divisible by 4"),
    (dict(image_shape=(28, 28), filters=(4, 8, 16)), "divisible by 8"),
    (dict(num_embeddings=1), "num_embeddings"),
    (dict(num_embeddings=0), "num_embeddings"),
    (dict(num_embeddings=4.0), "num_embeddings"),
    (dict(embedding_dim=0), "embedding_dim"),
    (dict(filters=(4, 0)), "filters"),
    (dict(commitment_cost=-0.1), "commitment_cost"),
])
def test_bad_constructor_arguments(kwargs, match):
    kwargs = dict(dict(image_shape=IMAGE_SHAPE, filters=FILTERS), **kwargs)
    with pytest.raises(ValueError, match=match):
        VQVAE(kwargs.pop("image_shape"), **kwargs)


# ----- PositionwisePrior ------------------------------------------------------------------
def prior_oracle(codes, num_embeddings, alpha):
    """log pi_p[k] = log (count of k at p + alpha) / (n + K alpha), counted by hand."""
    flat = np.asarray(codes).reshape(len(codes), -1)
    table = np.empty((flat.shape[1], num_embeddings))
    for p in range(flat.shape[1]):
        for k in range(num_embeddings):
            table[p, k] = math.log(((flat[:, p] == k).sum() + alpha)
                                   / (len(flat) + num_embeddings * alpha))
    return table


@pytest.mark.parametrize("alpha", [1.0, 0.1, 5.0])
def test_prior_fit_and_log_prob_match_counting(alpha):
    rng = np.random.default_rng(0)
    codes = rng.choice(5, size=(30, 2, 3), p=[0.5, 0.2, 0.2, 0.1, 0.0])
    prior = PositionwisePrior(5, alpha=alpha).fit(codes)
    table = prior_oracle(codes, 5, alpha)
    np.testing.assert_allclose(prior.log_probs, table, rtol=1e-12)
    query = rng.integers(0, 5, size=(7, 2, 3))
    expected = [sum(table[p, k] for p, k in enumerate(row.ravel())) for row in query]
    np.testing.assert_allclose(prior.log_prob(query), expected, rtol=1e-12)
    np.testing.assert_allclose(prior.log_prob(query.reshape(7, 6)), expected, rtol=1e-12)


def test_prior_is_normalized():
    codes = np.random.default_rng(1).integers(0, 3, size=(20, 1, 2))
    prior = PositionwisePrior(3, alpha=0.5).fit(codes)
    np.testing.assert_allclose(np.exp(prior.log_probs).sum(axis=1), 1.0, rtol=1e-12)
    every = np.array(list(itertools.product(range(3), repeat=2))).reshape(-1, 1, 2)
    assert np.exp(prior.log_prob(every)).sum() == pytest.approx(1.0, rel=1e-12)


def test_prior_samples_follow_its_probabilities():
    codes = np.random.default_rng(2).choice(4, size=(50, 2, 2), p=[0.55, 0.25, 0.15, 0.05])
    prior = PositionwisePrior(4, alpha=1.0).fit(codes)
    n = 20_000
    samples = prior.sample(n, seed=0)
    assert samples.shape == (n, 2, 2) and samples.min() >= 0 and samples.max() < 4
    np.testing.assert_array_equal(samples, prior.sample(n, seed=0))
    assert not np.array_equal(samples, prior.sample(n, seed=1))
    flat, probs = samples.reshape(n, -1), np.exp(prior.log_probs)
    for p in range(4):
        counts = np.bincount(flat[:, p], minlength=4)
        chi2 = ((counts - n * probs[p]) ** 2 / (n * probs[p])).sum()
        assert chi2 < stats.chi2.ppf(1 - 1e-4, df=3), (p, counts, n * probs[p])


def test_prior_errors():
    with pytest.raises(ValueError, match="num_embeddings"):
        PositionwisePrior(1)
    with pytest.raises(ValueError, match="alpha"):
        PositionwisePrior(4, alpha=0.0)
    prior = PositionwisePrior(4)
    with pytest.raises(RuntimeError, match="fit"):
        prior.log_prob(np.zeros((2, 2, 2), int))
    with pytest.raises(RuntimeError, match="fit"):
        prior.sample(3)
    with pytest.raises(ValueError, match="integer"):
        prior.fit(np.zeros((3, 2, 2)))                    # float codes
    with pytest.raises(ValueError, match="shape"):
        prior.fit(np.zeros(3, int))                       # no positions axis
    with pytest.raises(ValueError, match=r"\[0, 4\)"):
        prior.fit(np.full((3, 2, 2), 4))
    with pytest.raises(ValueError, match=r"\[0, 4\)"):
        prior.fit(np.full((3, 2, 2), -1))
    prior.fit(np.zeros((3, 2, 2), int))
    with pytest.raises(ValueError, match="4 positions"):
        prior.log_prob(np.zeros((3, 3, 2), int))
    with pytest.raises(ValueError, match=r"\[0, 4\)"):
        prior.log_prob(np.full((3, 2, 2), 7))


def test_the_bound_log_p_x_given_codes_plus_log_prior_is_a_log_probability():
    """Eq. (4.11): with one-hot q(k | x), log p(x | z_q(k)) + log p(k) <= log p(x) <= 0."""
    model = small_model()
    x_train, x_test = random_binary(40, 64, seed=10), random_binary(10, 64, seed=11)
    prior = PositionwisePrior(K).fit(model.codes_of(x_train))
    codes = model.codes_of(x_test)
    log_px_given_codes = model.log_likelihood_given_codes(x_test, codes)
    logits = np_of(model.decode_codes(codes))
    np.testing.assert_allclose(log_px_given_codes, bernoulli_log_prob_np(x_test, logits),
                               rtol=1e-5)
    bound = log_px_given_codes + prior.log_prob(codes)
    assert bound.shape == (10,)
    assert np.all(np.isfinite(bound)) and np.all(bound <= 0.0)
    assert np.all(prior.log_prob(codes) <= 0.0)
