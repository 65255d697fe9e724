"""Greedy layer-wise training of a stack of RBMs, shared by the DBN and DBM chapters.

Paper card
----------
Hinton, Osindero & Teh 2006 (greedy training of a DBN: each RBM models the hidden
activities of the one below); Salakhutdinov & Hinton 2009, section 3.1, and 2012 (the
double-counting correction used to pre-train a DBM). Used by ``02_dbn.ipynb`` and
``03_dbm.ipynb``.

Equations (numbered as in the DBM notebook)::

    (3.6) first RBM of a DBM:  p(h_j = 1 | v) = sigmoid(c_j + 2 (v W)_j),
                               p(v_i = 1 | h) = sigmoid(b_i + (W h)_i)
    (3.7) last RBM of a DBM:   p(h_j = 1 | v) = sigmoid(c_j + (v W)_j),
                               p(v_i = 1 | h) = sigmoid(b_i + 2 (W h)_i)
          middle RBMs are ordinary RBMs whose weights are halved when the DBM is composed.

A layer in the middle of a DBM receives input from below *and* above; an RBM trained alone
learns to explain its input with bottom-up weights only. Doubling the input the combined
model will receive from the missing side, and halving weights that will be used twice,
stops the composed DBM from counting the evidence twice.

Symbol -> attribute: the factor 2 on the bottom-up input -> ``DoublingRBM.up_factor``, on
the top-down input -> ``DoublingRBM.down_factor``.
"""

from __future__ import annotations

import itertools

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from course_lib import sampling
from course_lib.boltzmann.rbm import RBM, BernoulliRBM
from course_lib.checks import (
    ArgumentTypeError,
    check_finite_float,
    check_positive_int,
    check_seed,
    describe,
)

PROPAGATE = ("probabilities", "samples")


def stack_sizes(rbms):
    """Layer sizes ``[D, n_1, ..., n_L]`` of a stack of RBMs; checks that neighbours fit."""
    if not isinstance(rbms, (list, tuple)):
        raise ArgumentTypeError(f"rbms must be a list of RBMs; got {describe(rbms)}.")
    if not rbms:
        raise ValueError("a stack needs at least one RBM.")
    for i, rbm in enumerate(rbms):
        if not isinstance(rbm, RBM):
            raise ArgumentTypeError(f"rbms[{i}] must be an RBM; got {describe(rbm)}.")
    for i, (below, above) in enumerate(itertools.pairwise(rbms)):
        if below.n_hidden != above.n_visible:
            raise ValueError(f"RBM {i} has {below.n_hidden} hidden units but RBM {i + 1} has "
                             f"{above.n_visible} visible units; they must match to stack.")
    return [rbms[0].n_visible] + [r.n_hidden for r in rbms]


@keras.saving.register_keras_serializable(package="course_lib")
class DoublingRBM(BernoulliRBM):
    """A Bernoulli RBM whose bottom-up and/or top-down input is multiplied, Eqs. (3.6)/(3.7).

    The conditionals of Eqs. (3.6)/(3.7) do not come from one energy function, so there is
    no free energy whose difference gives the update; the loss is the expected energy
    ``E(v, p(h | v)) = -b.v - c.p - v.W.p`` at the data minus at the negative particles.
    Its gradient is the CD update as written in the papers' code:
    ``dW = <v p(h|v)>_data - <v p(h|v)>_model``.

    Args:
        up_factor: multiplies ``v W`` in p(h | v) (2 for the first RBM of a DBM).
        down_factor: multiplies ``W h`` in p(v | h) (2 for the last RBM of a DBM).
        **kwargs: as for :class:`course_lib.boltzmann.rbm.BernoulliRBM`.
    """

    def __init__(self, n_visible, n_hidden, *, up_factor=1.0, down_factor=1.0, **kwargs):
        self.up_factor = check_finite_float(up_factor, "up_factor", above=0.0)
        self.down_factor = check_finite_float(down_factor, "down_factor", above=0.0)
        super().__init__(n_visible, n_hidden, **kwargs)

    def hidden_preactivation(self, v, params=None):
        W, _, c = params or self.parameters()
        return self.up_factor * ops.matmul(v, W) + c

    def visible_mean(self, h, params=None):
        W, b, _ = params or self.parameters()
        return ops.sigmoid(self.down_factor * ops.matmul(h, ops.transpose(W)) + b)

    def expected_energy(self, v, h_probs):
        """E(v, p) = -b.v - c.p - v.W.p with p = p(h | v) held fixed; one value per row."""
        W, b, c = self.parameters()
        return -ops.sum(v * b, -1) - ops.sum(h_probs * c, -1) - ops.sum(
            ops.matmul(v, W) * h_probs, -1)

    def contrastive_divergence_loss(self, v_data, v_model, h_data_preactivation=None):
        """CD update for the conditionals of Eqs. (3.6)/(3.7), as an expected-energy loss."""
        if h_data_preactivation is None:
            h_data_preactivation = self.hidden_preactivation(v_data)
        h_data = ops.stop_gradient(ops.sigmoid(h_data_preactivation))
        v_model = ops.stop_gradient(v_model)
        h_model = ops.stop_gradient(self.prob_h_given_v(v_model))
        energy_data = ops.mean(self.expected_energy(v_data, h_data))
        return energy_data - ops.mean(self.expected_energy(v_model, h_model)), energy_data

    def get_config(self):
        config = super().get_config()
        config.update(up_factor=self.up_factor, down_factor=self.down_factor)
        return config


def transposed_rbm(rbm, **kwargs):
    """An RBM with the weights of ``rbm`` turned upside down: W -> W^T, b <-> c.

    Stacked on ``rbm``, it models the hidden layer with exactly the prior ``rbm`` already
    implies, so the DBN's variational bound starts equal to ``rbm``'s log-likelihood
    (Hinton, Osindero & Teh 2006, section 4).
    """
    if not isinstance(rbm, BernoulliRBM):
        raise ArgumentTypeError(f"rbm must be a BernoulliRBM (binary units on both sides); "
                                f"got {describe(rbm)}.")
    top = BernoulliRBM(rbm.n_hidden, rbm.n_visible, **kwargs)
    top.W.assign(ops.transpose(rbm.W))
    top.visible_bias.assign(rbm.hidden_bias)
    top.hidden_bias.assign(rbm.visible_bias)
    return top


def propagate_up(rbm, x, *, propagate="probabilities", seed=0, batch_size=1000):
    """The representation the next RBM of a stack trains on: p(h | x), or a binary sample.

    Args:
        rbm: a trained RBM.
        x: (n, D) array of the layer below's states or probabilities.
        propagate: ``"probabilities"`` (p(h | x), the usual choice) or ``"samples"``
            (one binary draw per unit, as in Hinton, Osindero & Teh 2006).
        seed: Python int for the ``"samples"`` draws.
        batch_size: rows computed at once.
    """
    if not isinstance(propagate, str) or propagate not in PROPAGATE:
        raise ValueError(f"propagate must be one of {PROPAGATE}; got {describe(propagate)}.")
    if not isinstance(rbm, RBM):
        raise ArgumentTypeError(f"rbm must be an RBM; got {describe(rbm)}.")
    batch_size = check_positive_int(batch_size, "batch_size")
    x = rbm.check_visible(x)
    base = sampling.as_stateless_seed(seed)
    out = []
    for i, start in enumerate(range(0, len(x), batch_size)):
        probs = rbm.prob_h_given_v(tf.constant(x[start:start + batch_size]))
        if propagate == "samples":
            probs = sampling.bernoulli(probs, sampling.step_seed(base, i))
        out.append(ops.convert_to_numpy(probs))
    return np.concatenate(out).astype("float32")


def greedy_layerwise(rbms, x, *, epochs, batch_size=100, optimizer=None,
                     propagate="probabilities", seed=0, callbacks=None, verbose=0):
    """Trains ``rbms`` one after the other, each on the representation of the one below.

    Args:
        rbms: list of RBMs; ``rbms[i].n_visible`` must equal ``rbms[i - 1].n_hidden``.
        x: (n, D) training data for the first RBM.
        epochs: an int, or one int per RBM.
        batch_size: minibatch size.
        optimizer: a function returning a fresh optimizer for each RBM (default
            ``SGD(0.05)``); RBMs that are already compiled keep their optimizer.
        propagate: how data moves up, see :func:`propagate_up`.
        seed: Python int for the propagation draws.
        callbacks: Keras callbacks passed to every ``fit``.

    Returns:
        The list of Keras ``History`` objects, one per RBM.
    """
    stack_sizes(rbms)
    batch_size = check_positive_int(batch_size, "batch_size")
    if optimizer is not None and not callable(optimizer):
        raise ArgumentTypeError("optimizer must be None or a function returning a fresh "
                                f"optimizer (e.g. lambda: keras.optimizers.SGD(0.05)); got "
                                f"{describe(optimizer)}.")
    epochs = [epochs] * len(rbms) if not isinstance(epochs, (list, tuple)) else list(epochs)
    if len(epochs) != len(rbms):
        raise ValueError(f"expected one epoch count per RBM ({len(rbms)}); got {len(epochs)}.")
    for n_epochs in epochs:                     # every argument checked before any training
        check_positive_int(n_epochs, "epochs")
    if not isinstance(propagate, str) or propagate not in PROPAGATE:
        raise ValueError(f"propagate must be one of {PROPAGATE}; got {describe(propagate)}.")
    seed = check_seed(seed)
    optimizer = optimizer or (lambda: keras.optimizers.SGD(0.05))
    histories = []
    for i, (rbm, n_epochs) in enumerate(zip(rbms, epochs, strict=True)):
        if getattr(rbm, "optimizer", None) is None:
            rbm.compile(optimizer=optimizer())
        histories.append(rbm.fit(x, batch_size=batch_size, epochs=n_epochs,
                                 callbacks=callbacks, verbose=verbose))
        if i + 1 < len(rbms):
            x = propagate_up(rbm, x, propagate=propagate, seed=seed + i)
    return histories
