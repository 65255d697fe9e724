"""Every public entry point of course_lib.flows refuses bad arguments with a message that
names the argument and shows the value: sizes, orders, parities, bases, energies,
temperatures, conventions, and data of the wrong shape or range. Tiny models only."""

import keras
import numpy as np
import pytest
from refusals import (
    BAD_COUNTS,
    BAD_FLAGS,
    BAD_POSITIVE,
    BAD_REQUIRED_SEEDS,
    INF,
    NAN,
    assert_refused,
    expand,
)

from course_lib.checks import DataError
from course_lib.flows import (
    MADE,
    AffineCoupling,
    BinaryMADE,
    FlowModel,
    InvertibleLinear,
    MAFStep,
    Permutation,
    PlanarStep,
    architectures,
    energies,
    pixels,
)

BAD_ENUMS = [("nope", ValueError), (3, ValueError), (None, ValueError)]
BAD_ORDERS = [("sideways", ValueError), ([0, 0, 1], ValueError), ([0, 1], ValueError),
              ([0.0, 1.0, 2.0], ValueError)]
BAD_DIMS_2 = [(1, ValueError), (0, ValueError), (2.0, TypeError), (None, TypeError)]
BAD_ALPHAS = [(0.0, ValueError), (0.5, ValueError), (-0.1, ValueError), (NAN, ValueError),
              (INF, ValueError), ("a", TypeError)]


def flow():
    return FlowModel(architectures.maf(3, num_layers=1, hidden_units=(4,)), seed=0)


CASES = [
    ("made-input_dim", lambda v: MADE(v, (4,)), "input_dim", BAD_DIMS_2),
    ("made-num_params", lambda v: MADE(3, (4,), num_params=v), "num_params", BAD_COUNTS),
    ("made-order", lambda v: MADE(3, (4,), order=v), "order", BAD_ORDERS),
    ("made-hidden", lambda v: MADE(3, v), "hidden_units",
     [((0,), ValueError), ((4, -1), ValueError), (4, TypeError)]),
    ("binary-made-seed", lambda v: BinaryMADE(3, (4,), seed=v), "seed",
     [(-1, ValueError), (1.5, TypeError)]),
    ("binary-made-samples", lambda v: BinaryMADE(3, (4,), seed=0).sample(v), "num_samples",
     BAD_COUNTS),
    ("coupling-dim", lambda v: AffineCoupling(v, (4,)), "dim", BAD_DIMS_2),
    ("coupling-parity", lambda v: AffineCoupling(4, (4,), parity=v), "parity",
     [(2, ValueError), (-1, ValueError), (True, ValueError), ("0", ValueError)]),
    ("coupling-shift_only", lambda v: AffineCoupling(4, (4,), shift_only=v), "shift_only",
     BAD_FLAGS),
    ("coupling-bound", lambda v: AffineCoupling(4, (4,), log_scale_bound=v),
     "log_scale_bound", BAD_POSITIVE),
    ("maf-inverse", lambda v: MAFStep(3, (4,), inverse=v), "inverse", BAD_FLAGS),
    ("maf-order", lambda v: MAFStep(3, (4,), order=v), "order", BAD_ORDERS),
    ("linear-seed", lambda v: InvertibleLinear(3, seed=v), "seed", BAD_REQUIRED_SEEDS),
    ("permutation-order", lambda v: Permutation(3, order=v), "order", BAD_ORDERS),
    ("planar-dim", lambda v: PlanarStep(v), "dim", BAD_COUNTS),
    ("architecture-layers", lambda v: architectures.maf(3, num_layers=v), "num_layers",
     BAD_COUNTS),
    ("architecture-flows", lambda v: architectures.planar_flow(v), "num_flows", BAD_COUNTS),
    ("flow-base", lambda v: FlowModel([PlanarStep(2)], base=v), "base", BAD_ENUMS),
    ("flow-energy", lambda v: FlowModel([PlanarStep(2)], energy=v), "energy",
     [("U5", ValueError), (1, ValueError)]),
    ("flow-annealing", lambda v: FlowModel([PlanarStep(2)], energy="U1", annealing_steps=v),
     "annealing_steps", [(-1, ValueError), (1.5, TypeError), (None, TypeError)]),
    ("flow-initial-beta", lambda v: FlowModel([PlanarStep(2)], energy="U1", initial_beta=v),
     "initial_beta", [(0.0, ValueError), (1.5, ValueError), (NAN, ValueError),
                      ("a", TypeError)]),
    ("flow-seed", lambda v: FlowModel([PlanarStep(2)], seed=v), "seed",
     [(-1, ValueError), (1.5, TypeError)]),
    ("flow-samples", lambda v: flow().sample(v), "num_samples", BAD_COUNTS),
    ("flow-temperature", lambda v: flow().sample(3, temperature=v), "temperature",
     BAD_POSITIVE),
    ("energy-name", lambda v: energies.energy(v, np.zeros((1, 2))), "name", BAD_ENUMS),
    ("log-partition-points", lambda v: energies.log_partition("U1", num_points=v),
     "num_points", [(5, ValueError), (1.5, TypeError)]),
    ("logit-alpha", lambda v: pixels.logit_transform(np.full((1, 2), 0.5), alpha=v), "alpha",
     BAD_ALPHAS),
    ("convert-source", lambda v: pixels.convert_log_likelihood(1.0, source=v, target="unit",
                                                               dim=4), "source", BAD_ENUMS),
    ("convert-target", lambda v: pixels.convert_log_likelihood(1.0, source="unit", target=v,
                                                               dim=4), "target", BAD_ENUMS),
    ("convert-dim", lambda v: pixels.convert_log_likelihood(1.0, source="unit",
                                                            target="bytes", dim=v), "dim",
     BAD_COUNTS),
    ("dequantize-seed", lambda v: pixels.dequantize(np.zeros((1, 2)), seed=v), "seed",
     BAD_REQUIRED_SEEDS),
]


@pytest.mark.parametrize("call, name, value, error", expand(CASES))
def test_bad_arguments_are_refused(call, name, value, error):
    assert_refused(lambda: call(value), name, value, error,
                   shows_value=not isinstance(value, list))


def test_bad_steps_and_data_are_refused_with_what_was_expected():
    with pytest.raises(TypeError, match="steps must be a non-empty list of flow steps"):
        FlowModel([keras.layers.Dense(2)])
    with pytest.raises(TypeError, match="steps must be a non-empty list"):
        FlowModel([])
    with pytest.raises(ValueError, match=r"same dim; got dims \[2, 3\]"):
        FlowModel([PlanarStep(2), PlanarStep(3)])
    with pytest.raises(ValueError, match="annealing_steps=10 anneals an energy"):
        FlowModel([PlanarStep(2)], annealing_steps=10)
    with pytest.raises(ValueError, match="energies are 2-D; got steps of dim 3"):
        FlowModel([PlanarStep(3)], energy="U1")
    model = flow()
    with pytest.raises(ValueError, match=r"x must have shape \(n, 3\); got shape \(4, 2\)"):
        model.log_prob(np.zeros((4, 2), "float32"))
    model.compile(keras.optimizers.Adam(1e-3))
    with pytest.raises(DataError, match="must be finite"):
        model.fit(np.full((8, 3), np.nan, "float32"), verbose=0)
    with pytest.raises(DataError, match=r"\(n, 3\)"):
        model.fit(np.zeros((8, 4), "float32"), verbose=0)
    energy = FlowModel([PlanarStep(2)], energy="U1", seed=0)
    energy.compile(keras.optimizers.Adam(1e-3))
    with pytest.raises(ValueError, match="takes no data"):
        energy.fit(np.zeros((8, 2), "float32"), verbose=0)
    with pytest.raises(TypeError, match="steps_per_epoch"):
        energy.fit(batch_size=8, verbose=0)
    made = BinaryMADE(3, (4,), seed=0)
    made.compile(keras.optimizers.Adam(1e-3))
    with pytest.raises(DataError, match="binary"):
        made.fit(np.full((4, 3), 0.5, "float32"), verbose=0)
    with pytest.raises(ValueError, match=r"x must have shape \(n, 3\)"):
        made.log_prob(np.zeros((2, 5), "float32"))
    with pytest.raises(ValueError, match=r"z must have shape \(\.\.\., 2\)"):
        energies.energy("U1", np.zeros((3, 3)))
    with pytest.raises(DataError, match=r"in \[0, 1\]"):
        pixels.logit_transform(np.full((1, 2), 1.5))
    with pytest.raises(DataError, match="0..255"):
        pixels.dequantize(np.array([[300, 2]]), seed=0)
