"""The papers' flows as lists of steps for :class:`~course_lib.flows.model.FlowModel`.

Each function returns the steps from the base side to the data side; sizes default to the
papers' where they fit a CPU course budget, and the notebook says when it shrinks them.

* :func:`planar_flow`, :func:`radial_flow`: K planar or radial steps (Rezende & Mohamed
  2015, whose Figure 3 uses K = 2, 8 and 32).
* :func:`nice`: NICE (Dinh, Krueger & Bengio 2014): the diagonal scaling layer, then four
  additive couplings of alternating parity (each a 5 x 1000 relu MLP on MNIST); use it with
  ``base="logistic"``.
* :func:`real_nvp`: RealNVP (Dinh et al. 2017) as the MAF paper's RealNVP(K) baseline: K
  affine couplings of alternating parity, each preceded by an act-norm (the paper used
  batch norm).
* :func:`maf`: MAF(K) (Papamakarios et al. 2017): K MAF steps whose MADE orderings
  alternate natural / reversed, each preceded by an act-norm (the paper used batch norm);
  ``inverse=True`` gives the IAF with the same architecture.
* :func:`glow`: Glow's step (Kingma & Dhariwal 2018) on vectors: act-norm, invertible linear
  map ("1x1 convolution"), affine coupling.

Deviation, stated: act-norm replaces batch normalisation (a batch-norm bijector behaves
differently in training and evaluation, and TFP's needs a tf-keras layer).
"""

from __future__ import annotations

from course_lib.checks import check_bool, check_positive_int
from course_lib.flows.steps import (
    ActNorm,
    AffineCoupling,
    InvertibleLinear,
    MAFStep,
    PlanarStep,
    RadialStep,
    Scaling,
)


def planar_flow(num_flows, dim=2):
    """K = ``num_flows`` planar steps, Eq. (6.5)."""
    return [PlanarStep(dim) for _ in range(check_positive_int(num_flows, "num_flows"))]


def radial_flow(num_flows, dim=2):
    """K = ``num_flows`` radial steps, Eq. (6.7)."""
    return [RadialStep(dim) for _ in range(check_positive_int(num_flows, "num_flows"))]


def nice(dim=784, *, num_couplings=4, hidden_units=(1000,) * 5, activation="relu"):
    """NICE: scaling (nearest the base), then ``num_couplings`` additive couplings."""
    num_couplings = check_positive_int(num_couplings, "num_couplings")
    return [Scaling(dim)] + [AffineCoupling(dim, hidden_units, parity=i % 2, shift_only=True,
                                            activation=activation)
                             for i in range(num_couplings)]


def real_nvp(dim, *, num_couplings=5, hidden_units=(1024,), activation="relu",
             act_norm=True):
    """RealNVP(K): K affine couplings of alternating parity (each after an act-norm)."""
    num_couplings = check_positive_int(num_couplings, "num_couplings")
    act_norm = check_bool(act_norm, "act_norm")
    steps = []
    for i in range(num_couplings):
        steps += [ActNorm(dim)] if act_norm else []
        steps.append(AffineCoupling(dim, hidden_units, parity=i % 2, activation=activation))
    return steps


def maf(dim, *, num_layers=5, hidden_units=(1024,), activation="relu", act_norm=True,
        inverse=False):
    """MAF(K) (or IAF(K) with ``inverse``): K MAF steps, orderings alternating."""
    num_layers = check_positive_int(num_layers, "num_layers")
    act_norm = check_bool(act_norm, "act_norm")
    steps = []
    for i in range(num_layers):
        steps += [ActNorm(dim)] if act_norm else []
        steps.append(MAFStep(dim, hidden_units, order=("natural", "reversed")[i % 2],
                             inverse=inverse, activation=activation))
    return steps


def glow(dim, *, num_steps=4, hidden_units=(256, 256), activation="relu", seed=0):
    """Glow's steps on vectors: act-norm, invertible linear, affine coupling, K times."""
    num_steps = check_positive_int(num_steps, "num_steps")
    steps = []
    for i in range(num_steps):
        steps += [ActNorm(dim), InvertibleLinear(dim, seed=seed + i),
                  AffineCoupling(dim, hidden_units, parity=i % 2, activation=activation)]
    return steps
