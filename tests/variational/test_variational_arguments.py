"""Every public constructor and function of course_lib.variational refuses bad arguments
with a message that names the argument and shows the value; a conditional VAE refuses labels
out of range on every array path (a one-hot of an out-of-range label is silently all zeros);
VQ-VAE codes out of range are refused before TensorFlow gathers them. Tiny models only."""

import numpy as np
import pytest
from refusals import (
    BAD_COUNTS,
    BAD_FINITE,
    BAD_FLAGS,
    BAD_NONNEGATIVE,
    BAD_POSITIVE,
    BAD_REQUIRED_SEEDS,
    BAD_SEEDS,
    INF,
    NAN,
    assert_refused,
    expand,
)

from course_lib.variational import (
    VAE,
    VQVAE,
    KLAnnealing,
    PositionwisePrior,
    VectorQuantizer,
    latent,
)
from course_lib.variational.vqvae import perplexity

D = 16
X = (np.random.default_rng(0).random((8, D)) < 0.5).astype("float32")
XQ = (np.random.default_rng(1).random((8, 64)) < 0.5).astype("float32")
Z = np.zeros((3, 2), "float32")


@pytest.fixture(scope="module")
def models():
    return dict(vae=VAE(D, 2, (4,), seed=0), cvae=VAE(D, 2, (4,), num_classes=3, seed=0),
                vq=VQVAE((8, 8), num_embeddings=4, embedding_dim=2, filters=(4,), seed=0),
                prior=PositionwisePrior(4).fit(np.zeros((3, 2, 2), int)))


def vae_with(name):
    return lambda m, v: VAE(**{"input_dim": D, "latent_dim": 2, "hidden_units": (4,), name: v})


def vq_with(name):
    return lambda m, v: VQVAE(**{"image_shape": (8, 8), "filters": (4,), name: v})


CASES = [
    ("VAE", vae_with("input_dim"), "input_dim", BAD_COUNTS),
    ("VAE", vae_with("latent_dim"), "latent_dim", BAD_COUNTS),
    ("VAE", vae_with("num_samples"), "num_samples", BAD_COUNTS),
    ("VAE", vae_with("num_classes"), "num_classes",
     [(1, ValueError), (0, ValueError), (2.5, TypeError), ("10", TypeError)]),
    ("VAE", vae_with("hidden_units"), "hidden_units",
     [(200, TypeError), ([0], ValueError), ([200, 1.5], TypeError)]),
    ("VAE", vae_with("kl_weight"), "kl_weight", BAD_NONNEGATIVE),
    ("VAE", vae_with("log_var_range"), "log_var_range",
     [((NAN, 1.0), ValueError), ((-INF, 8.0), ValueError), ((1, 2, 3), ValueError),
      (None, ValueError), (5.0, ValueError), ((2.0, 1.0), ValueError), (("a", 1.0), TypeError)]),
    ("VAE", lambda m, v: VAE(D, 2, (4,), likelihood="gaussian", decoder_log_var=v),
     "decoder_log_var", BAD_FINITE + [(20.0, ValueError)]),
    ("VAE", vae_with("dynamic_binarization"), "dynamic_binarization", BAD_FLAGS),
    ("VAE", vae_with("activation"), "activation", [("nope", ValueError), (3, ValueError)]),
    ("VAE", vae_with("likelihood"), "likelihood", [("poisson", ValueError),
                                                   (["bernoulli"], ValueError)]),
    ("VAE", vae_with("seed"), "seed", BAD_SEEDS),
    ("vae.sample", lambda m, v: m["vae"].sample(v), "num_samples", BAD_COUNTS),
    ("vae.sample", lambda m, v: m["vae"].sample(2, seed=v), "seed", BAD_SEEDS),
    ("vae.log_importance_weights",
     lambda m, v: m["vae"].log_importance_weights(X, num_samples=v), "num_samples", BAD_COUNTS),
    ("KLAnnealing", lambda m, v: KLAnnealing(v), "warmup_steps", BAD_COUNTS),
    ("KLAnnealing", lambda m, v: KLAnnealing(10, start=v), "start",
     [(1.5, ValueError), (-0.1, ValueError), (NAN, ValueError), (None, TypeError),
      (True, TypeError)]),
    ("VectorQuantizer", lambda m, v: VectorQuantizer(v, 2), "num_embeddings",
     [(1, ValueError), (1.5, TypeError), (None, TypeError)]),
    ("VectorQuantizer", lambda m, v: VectorQuantizer(4, v), "embedding_dim", BAD_COUNTS),
    ("VQVAE", vq_with("num_embeddings"), "num_embeddings", [(1, ValueError), (1.5, TypeError)]),
    ("VQVAE", vq_with("embedding_dim"), "embedding_dim", [(0, ValueError), ("2", TypeError)]),
    ("VQVAE", vq_with("commitment_cost"), "commitment_cost", BAD_NONNEGATIVE),
    ("VQVAE", vq_with("seed"), "seed", BAD_SEEDS),
    ("VQVAE", vq_with("image_shape"), "image_shape",
     [(8, TypeError), ((8, 8, 1), ValueError), ((8, 0), ValueError), ((8.0, 8), TypeError)]),
    ("VQVAE", vq_with("filters"), "filters", [(4, TypeError), ((4, -1), ValueError)]),
    ("vq.codes_of", lambda m, v: m["vq"].codes_of(XQ, batch_size=v), "batch_size", BAD_COUNTS),
    ("vq.init_codebook", lambda m, v: m["vq"].init_codebook(XQ, seed=v), "seed",
     BAD_REQUIRED_SEEDS),
    ("perplexity", lambda m, v: perplexity(np.array([0, 1]), v), "num_embeddings", BAD_COUNTS),
    ("PositionwisePrior", lambda m, v: PositionwisePrior(4, alpha=v), "alpha", BAD_POSITIVE),
    ("prior.sample", lambda m, v: m["prior"].sample(v), "num_samples", BAD_COUNTS),
    ("prior.sample", lambda m, v: m["prior"].sample(2, seed=v), "seed", BAD_REQUIRED_SEEDS),
    ("reparameterize", lambda m, v: latent.reparameterize(Z, Z, 0, v), "num_samples",
     BAD_COUNTS[:-2] + [("3", TypeError)]),
    ("score_function_gradients",
     lambda m, v: latent.score_function_gradients(lambda z: z, 0.0, v, 3, 0), "std",
     BAD_POSITIVE),
    ("score_function_gradients",
     lambda m, v: latent.score_function_gradients(lambda z: z, v, 1.0, 3, 0), "mean",
     BAD_FINITE + [(None, TypeError)]),
    ("score_function_gradients",
     lambda m, v: latent.score_function_gradients(lambda z: z, 0.0, 1.0, v, 0), "num_samples",
     BAD_COUNTS),
    ("score_function_gradients",
     lambda m, v: latent.score_function_gradients(v, 0.0, 1.0, 3, 0), "f", [(3, TypeError)]),
    ("score_function_gradients",
     lambda m, v: latent.score_function_gradients(lambda z: z, 0.0, 1.0, 3, v), "seed",
     BAD_SEEDS),
    ("reparameterized_gradients",
     lambda m, v: latent.reparameterized_gradients(lambda z: z, 0.0, v, 3, 0), "std",
     BAD_POSITIVE),
]


@pytest.mark.parametrize("call, name, value, error", expand(CASES))
def test_bad_arguments_are_refused(models, call, name, value, error):
    assert_refused(lambda: call(models, value), name, value, error)


LABEL_PATHS = [
    ("encode", lambda m, y: m["cvae"].encode(X, y)),
    ("decode", lambda m, y: m["cvae"].decode(np.zeros((8, 2), "float32"), y)),
    ("call", lambda m, y: m["cvae"](X, y)),
    ("log_importance_weights", lambda m, y: m["cvae"].log_importance_weights(X, y,
                                                                            num_samples=2)),
    ("bound_terms", lambda m, y: m["cvae"].bound_terms(X, y)),
    ("sample", lambda m, y: m["cvae"].sample(8, y=y)),
]


@pytest.mark.parametrize("path", [call for _, call in LABEL_PATHS],
                         ids=[name for name, _ in LABEL_PATHS])
@pytest.mark.parametrize("labels, match", [
    (np.full(8, 3), r"labels in \[0, 3\); got values in \[3, 3\]"),
    (np.full(8, -1), r"labels in \[0, 3\); got values in \[-1, -1\]"),
    (np.full(8, 1.0), "integer labels"),
], ids=["too-large", "negative", "float"])
def test_conditional_vae_refuses_labels_out_of_range_on_every_array_path(models, path, labels,
                                                                         match):
    with pytest.raises(ValueError, match=match):
        path(models, labels)


def test_inputs_of_the_wrong_width_are_refused(models):
    with pytest.raises(ValueError, match=rf"x must have shape \(n, {D}\)"):
        models["vae"].encode(X[:, :5])
    with pytest.raises(ValueError, match=r"z must have shape \(n, 2\)"):
        models["vae"].decode(np.zeros((3, 5), "float32"))


@pytest.mark.parametrize("codes, error, match", [
    (np.full((2, 4, 4), 9), ValueError, r"codes must lie in \[0, 4\); got values in \[9, 9\]"),
    (np.full((2, 4, 4), -1), ValueError, r"codes must lie in \[0, 4\)"),
    (np.full((2, 4, 4), 1.5), TypeError, "integer codes"),
    (np.full((2, 3, 4), 1), ValueError, r"codes must have shape \(n, 4, 4\)"),
], ids=["too-large", "negative", "float", "shape"])
def test_vqvae_refuses_codes_it_cannot_decode(models, codes, error, match):
    with pytest.raises(error, match=match):
        models["vq"].decode_codes(codes)


def test_vqvae_and_prior_refuse_mismatched_or_empty_codes(models):
    with pytest.raises(ValueError, match="one code grid per image"):
        models["vq"].log_likelihood_given_codes(XQ[:2], np.ones((3, 4, 4), int))
    with pytest.raises(ValueError, match=r"codes must lie in \[0, 4\)"):
        perplexity(np.array([0, 5]), 4)
    with pytest.raises(ValueError, match="non-empty integer array"):
        PositionwisePrior(4).fit(np.zeros((0, 2, 2), int))


def test_conditional_samples_take_one_label_or_one_per_sample(models):
    assert models["cvae"].sample(3, y=2, seed=0).shape == (3, D)
    assert models["cvae"].sample(3, y=[0, 1, 2], seed=0).shape == (3, D)
    with pytest.raises(ValueError, match=r"one label per row of x \(3\); got 2"):
        models["cvae"].sample(3, y=[0, 1])
