"""FlowModel: a normalised density (integrated on a grid), every bijector parameter tracked
and trained, maximum likelihood that finds a known Gaussian, the forward-only log q of
reverse KL against the inverse-direction log p, save/load, XLA, the divergence guard and
two replicas."""

import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf
from replicas import TWO_CPUS, run_script

from course_lib.flows import (
    ActNorm,
    AffineCoupling,
    FlowModel,
    InvertibleLinear,
    MAFStep,
    Permutation,
    PlanarStep,
    RadialStep,
    Scaling,
    architectures,
)
from course_lib.training import TrainingDivergedError


def randomize(model, seed=0, scale=0.3):
    rng = np.random.default_rng(seed)
    for variable in model.trainable_variables:
        variable.assign(rng.normal(0.0, scale, variable.shape).astype(variable.dtype))
    return model


def every_step(dim=2, **kwargs):
    return [PlanarStep(dim, **kwargs), RadialStep(dim, **kwargs), ActNorm(dim, **kwargs),
            InvertibleLinear(dim, seed=1, **kwargs), AffineCoupling(dim, (8,), **kwargs),
            Permutation(dim, **kwargs), MAFStep(dim, (8,), **kwargs), Scaling(dim, **kwargs),
            AffineCoupling(dim, (8,), parity=1, shift_only=True, **kwargs),
            MAFStep(dim, (8,), order="reversed", inverse=True, **kwargs)]


@pytest.mark.parametrize("base, half_width", [("normal", 9.0), ("logistic", 16.0)])
def test_a_2d_flow_density_integrates_to_one(base, half_width):
    """The midpoint rule over a box that holds all but a negligible tail of the mass."""
    keras.utils.set_random_seed(0)
    model = randomize(FlowModel(every_step(), base=base, seed=0))
    n = 400
    step = 2 * half_width / n
    axis = -half_width + step * (np.arange(n) + 0.5)
    grid = np.stack(np.meshgrid(axis, axis), -1).reshape(-1, 2).astype("float32")
    log_p = np.concatenate([model.log_prob(chunk).numpy()
                            for chunk in np.array_split(grid, 8)]).astype(np.float64)
    assert np.isfinite(log_p).all()
    total = np.exp(log_p).sum() * step**2
    assert abs(total - 1.0) < 2e-3, total
    base = -0.5 * (grid**2).sum(1) - np.log(2 * np.pi) if base == "normal" else None
    if base is not None:    # the random flow really reshapes the base density
        assert np.abs(log_p - base)[np.abs(grid).max(1) < 3].max() > 0.5


ARCHITECTURES = {
    "maf": lambda: FlowModel(architectures.maf(3, num_layers=2, hidden_units=(8,)), seed=0),
    "iaf": lambda: FlowModel(architectures.maf(3, num_layers=2, hidden_units=(8,),
                                               inverse=True), seed=0),
    "real_nvp": lambda: FlowModel(architectures.real_nvp(3, num_couplings=2,
                                                         hidden_units=(8,)), seed=0),
    "nice": lambda: FlowModel(architectures.nice(3, hidden_units=(8, 8)), base="logistic",
                              seed=0),
    "glow": lambda: FlowModel(architectures.glow(3, num_steps=2, hidden_units=(8,)), seed=0),
    "planar-U1": lambda: FlowModel(architectures.planar_flow(3), energy="U1", seed=0),
    "radial-U3": lambda: FlowModel(architectures.radial_flow(3), energy="U3", seed=0),
}


def fit(model, x, steps=3, **compile_kwargs):
    model.compile(keras.optimizers.Adam(1e-2), **compile_kwargs)
    if model.energy is None:
        return model.fit(x, batch_size=len(x) // steps, epochs=1, shuffle=False, verbose=0)
    return model.fit(batch_size=32, steps_per_epoch=steps, epochs=1, verbose=0)


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_every_bijector_parameter_is_tracked_and_trained(name):
    keras.utils.set_random_seed(0)
    model = ARCHITECTURES[name]()
    per_step = [v for step in model.steps for v in step.trainable_variables]
    assert len(per_step) > 0
    assert {id(v) for v in model.trainable_variables} == {id(v) for v in per_step}
    before = [v.numpy().copy() for v in model.trainable_variables]
    x = np.random.default_rng(0).normal(1.0, 2.0, (96, model.dim)).astype("float32")
    history = fit(model, x)
    assert np.isfinite(history.history[model.loss_name]).all()
    for start, variable in zip(before, model.trainable_variables, strict=True):
        assert not np.array_equal(start, variable.numpy()), variable.path


def test_maximum_likelihood_finds_a_known_gaussian():
    """A correlated 2-D Gaussian: the fitted MAF's held-out log-likelihood reaches the true
    one (the Gaussian's own log density, an upper bound in expectation) within 0.05 nats."""
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    cov = np.array([[2.0, 1.2], [1.2, 1.0]])
    chol = np.linalg.cholesky(cov)
    x = (rng.normal(size=(12_000, 2)) @ chol.T + [1.0, -3.0]).astype("float32")
    train, test = x[:10_000], x[10_000:]
    model = FlowModel(architectures.maf(2, num_layers=2, hidden_units=(16,)), seed=0)
    model.compile(keras.optimizers.Adam(5e-3))
    model.fit(train, batch_size=200, epochs=6, verbose=0)
    centred = test - [1.0, -3.0]
    true = (-0.5 * np.einsum("ni,ij,nj->n", centred, np.linalg.inv(cov), centred)
            - 0.5 * np.log(np.linalg.det(2 * np.pi * cov)))
    fitted = model.log_prob(test).numpy()
    assert abs(fitted.mean() - true.mean()) < 0.05, (fitted.mean(), true.mean())


@pytest.mark.parametrize("steps", ["planar", "radial", "mixed"])
def test_reverse_kl_log_q_agrees_with_the_inverse_direction(steps):
    """sample_and_log_prob computes log q from the forward pass only; log_prob inverts. On
    the same points they must agree (a sign or direction slip in either breaks it); float64,
    so that the only gap is rounding."""
    keras.utils.set_random_seed(1)
    f64 = dict(dtype="float64")
    made = {"planar": lambda: [PlanarStep(2, **f64) for _ in range(4)],
            "radial": lambda: [RadialStep(2, **f64) for _ in range(4)],
            "mixed": lambda: every_step(**f64)}[steps]
    model = randomize(FlowModel(made(), energy="U2", seed=0), scale=0.8)
    x, log_q = model.sample_and_log_prob(200, seed=3)
    assert x.dtype == tf.float64
    np.testing.assert_allclose(log_q.numpy(), model.log_prob(tf.identity(x)).numpy(), atol=1e-8)


def test_temperature_scales_the_base_draw():
    keras.utils.set_random_seed(0)
    model = randomize(FlowModel(every_step(), seed=0))
    z = model.sample_base(50, seed=5)
    np.testing.assert_allclose(model.sample(50, temperature=0.5, seed=5),
                               model(0.5 * z).numpy(), rtol=1e-5, atol=1e-5)


def test_save_and_load_restore_every_bijector_parameter(tmp_path):
    keras.utils.set_random_seed(0)
    model = FlowModel(every_step(), seed=4)
    x = np.random.default_rng(0).normal(size=(64, 2)).astype("float32")
    fit(model, x)                          # initialises the act-norm from the data
    norm = next(s for s in model.steps if isinstance(s, ActNorm))
    assert float(norm.initialized.numpy()) == 1.0
    path = tmp_path / "flow.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert len(loaded.weights) == len(model.weights)
    for a, b in zip(model.weights, loaded.weights, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)
    np.testing.assert_allclose(loaded.log_prob(x).numpy(), model.log_prob(x).numpy(),
                               rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(loaded.sample(5, seed=1), model.sample(5, seed=1), rtol=1e-6)
    assert loaded.get_config()["steps"] == model.get_config()["steps"]
    shift = norm.shift.numpy().copy()
    loaded.fit(x, batch_size=64, epochs=1, verbose=0)   # no second initialisation
    loaded_norm = next(s for s in loaded.steps if isinstance(s, ActNorm))
    assert np.abs(loaded_norm.shift.numpy() - shift).max() < 0.05


@pytest.mark.parametrize("name", ["maf", "real_nvp", "glow"])
def test_an_xla_step_equals_the_plain_step(name):
    """Maximum likelihood draws no random numbers, so one update under jit_compile=True must
    equal the update without it."""
    x = np.random.default_rng(0).normal(size=(32, 3)).astype("float32")
    results = []
    for jit in (False, True):
        keras.utils.set_random_seed(0)
        model = randomize(ARCHITECTURES[name]())
        for step in model.steps:                 # no data-dependent initialisation here
            if isinstance(step, ActNorm):
                step.initialized.assign(1.0)
        fit(model, x, steps=1, jit_compile=jit)
        assert model.jit_compile is jit
        results.append([v.numpy() for v in model.trainable_variables])
    for a, b in zip(*results, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_reverse_kl_trains_under_xla():
    keras.utils.set_random_seed(0)
    model = FlowModel(architectures.planar_flow(4), energy="U1", seed=0)
    before = [v.numpy().copy() for v in model.trainable_variables]
    history = fit(model, None, steps=4, jit_compile=True)
    assert model.jit_compile is True and np.isfinite(history.history["free_energy"]).all()
    assert all(not np.array_equal(a, v.numpy())
               for a, v in zip(before, model.trainable_variables, strict=True))


def test_nan_and_divergence_stop_training_with_a_clear_error():
    x = np.random.default_rng(0).normal(size=(64, 3)).astype("float32")
    model = ARCHITECTURES["real_nvp"]()
    model.compile(keras.optimizers.Adam(1e-3))
    bias = model.steps[1].network.layers[-1].bias
    bias.assign(np.full(bias.shape, np.nan, "float32"))
    with pytest.raises(TrainingDivergedError, match="(?i)nan") as info:
        model.fit(x, batch_size=16, epochs=2, verbose=0)
    assert "log_scale_bound" in str(info.value)
    model = FlowModel(architectures.planar_flow(2), energy="U1", seed=0)
    model.compile(keras.optimizers.SGD(1e9))
    with pytest.raises(TrainingDivergedError):
        model.fit(batch_size=16, steps_per_epoch=4, epochs=3, verbose=0)


REPLICAS = TWO_CPUS + textwrap.dedent("""
    from course_lib.flows import FlowModel, architectures

    x = np.random.default_rng(0).normal(size=(64, 3)).astype("float32")

    def train(strategy, make, start, **fit_kwargs):
        with strategy.scope():
            model = make()
            model.compile(optimizer=keras.optimizers.SGD(0.05))
        model.set_weights(start)
        model.fit(**fit_kwargs, epochs=1, verbose=0)
        same_on_every_replica(model)
        return model

    def start_of(make):
        keras.utils.set_random_seed(0)
        with ONE.scope():
            model = make()
        rng = np.random.default_rng(1)
        for v in model.trainable_variables:
            v.assign(rng.normal(0, 0.3, v.shape).astype("float32"))
        for step in model.steps:
            if hasattr(step, "initialized"):
                step.initialized.assign(1.0)
        return model.get_weights()

    for name, make in [("maf", lambda: FlowModel(architectures.maf(3, num_layers=2,
                                                                   hidden_units=(8,)))),
                       ("real_nvp", lambda: FlowModel(architectures.real_nvp(
                           3, num_couplings=2, hidden_units=(8,))))]:
        start = start_of(make)
        one = train(ONE, make, start, x=x, batch_size=32, shuffle=False)
        two = train(TWO, make, start, x=x, batch_size=32, shuffle=False)
        for a, b in zip(one.get_weights(), two.get_weights(), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6, err_msg=name)
        assert any(not np.allclose(a, b) for a, b in zip(start, one.get_weights()))
    make = lambda: FlowModel(architectures.planar_flow(3), energy="U1", seed=0)  # noqa: E731
    two = train(TWO, make, start_of(make), batch_size=32, steps_per_epoch=3)
    assert np.isfinite(two.get_weights()[0]).all()
    print("FLOWS_REPLICAS_OK")
""")


def test_two_replicas_train_as_one_device(tmp_path):
    run_script(tmp_path, REPLICAS, "FLOWS_REPLICAS_OK", shared=True)


def test_annealing_weights_the_energy_by_beta_and_logs_the_true_free_energy():
    """One SGD step replayed on the same draws: the update is -lr * grad of
    mean(log q + beta_0 U), and the logged free energy is mean(log q + U)."""
    keras.utils.set_random_seed(0)
    model = FlowModel(architectures.planar_flow(3), energy="U1", annealing_steps=100,
                      initial_beta=0.25, seed=0)
    assert model.beta(0).numpy() == pytest.approx(0.25)
    assert model.beta(50).numpy() == pytest.approx(0.75)
    assert model.beta(1000).numpy() == pytest.approx(1.0)
    model.compile(keras.optimizers.SGD(0.1))
    model.optimizer.build(model.trainable_variables)
    state = model.seed_state.numpy().copy()
    batch = tf.zeros((64, 2))
    with tf.GradientTape() as tape:
        annealed, reported = model.objective(batch, 0.25)
        loss = tf.reduce_mean(annealed)
    grads = tape.gradient(loss, model.trainable_variables)
    before = [v.numpy().copy() for v in model.trainable_variables]
    model.seed_state.assign(state)                     # the same draws again
    logs = model.train_step(batch)
    assert float(logs["free_energy"]) == pytest.approx(float(tf.reduce_mean(reported)),
                                                       rel=1e-5)
    for b, g, v in zip(before, grads, model.trainable_variables, strict=True):
        np.testing.assert_allclose(v.numpy(), b - 0.1 * g.numpy(), rtol=1e-5, atol=1e-6)
    assert not np.allclose(tf.reduce_mean(reported), loss)   # beta really mattered


def test_log_prob_agrees_with_tfp_transformed_distribution():
    """FlowModel walks the steps itself (Eq. 6.2); TFP's TransformedDistribution over the
    same bijectors is an independent composition of the same math."""
    keras.utils.set_random_seed(0)
    model = randomize(FlowModel(every_step(), seed=0))
    x = np.random.default_rng(2).normal(size=(64, 2)).astype("float32")
    np.testing.assert_allclose(model.log_prob(x).numpy(), model.distribution().log_prob(x).numpy(),
                               rtol=1e-5, atol=1e-4)
