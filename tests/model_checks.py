"""Checks several model test files make the same way.

- ``saved_and_loaded``: a ``.keras`` round trip that must give back the model's class and
  its config; each test then checks what its own model must keep (weights, optimizer and
  seed states, samples).
- ``assert_mixed_precision_step_matches_float32``: for a two-player model (the GAN of
  Chapter 5, the deep energy model of Chapter 7), one ``train_step`` under mixed_float16
  must move each player as far as the float32 step from the same start weights does. A
  player whose loss is not scaled (``optimizer.scale_loss``) has its update divided by the
  loss-scale optimizer's 2^15.
"""

import json

import keras
import numpy as np


def saved_and_loaded(model, path, cls):
    """Saves ``model`` to ``path``, loads it back, asserts the loaded model is a ``cls`` with
    the same config, and returns it. The configs are compared after a JSON round trip, which
    drops the tuple/list difference Keras' own configs have after a reload."""
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, cls), type(loaded)
    assert json.loads(json.dumps(loaded.get_config())) == json.loads(json.dumps(
        model.get_config()))
    return loaded


def _weights(variables):
    return [v.numpy().copy() for v in variables]


def _players(model):
    """The generator's and the second player's (discriminator's, energy's) variables."""
    return (model.generator.trainable_variables,
            getattr(model, model.second_player).trainable_variables)


def _one_step(make, x, learning_rate, policy, start):
    """One SGD ``train_step`` on ``x`` under ``policy`` from the weights ``start``; returns the
    model and each player's weights before and after it."""
    keras.mixed_precision.set_global_policy(policy)
    try:
        model = make()
        model.set_weights(start)
        model.compile(**{"generator_optimizer": keras.optimizers.SGD(learning_rate),
                         f"{model.second_player}_optimizer":
                             keras.optimizers.SGD(learning_rate)})
        model._build_optimizers()
        before = [_weights(v) for v in _players(model)]
        model.train_step(x)
        return model, before, [_weights(v) for v in _players(model)]
    finally:
        keras.mixed_precision.set_global_policy("float32")


def assert_mixed_precision_step_matches_float32(make, x, learning_rate, tolerance=0.05):
    """``make()`` builds a seeded, uncompiled two-player model. Runs one SGD step on ``x``
    under float32 and one under mixed_float16 from the same start weights; asserts that the
    mixed model computes in float16, that both its optimizers are wrapped in a
    ``LossScaleOptimizer``, and that each player's update norm is within ``tolerance`` of the
    float32 one, as a ratio. Returns the (generator, second player) ratios."""
    start = make().get_weights()
    _, before, reference = _one_step(make, x, learning_rate, "float32", start)
    mixed, _, after = _one_step(make, x, learning_rate, "mixed_float16", start)
    assert mixed.generator.layers[0].compute_dtype == "float16"
    assert isinstance(mixed.generator_optimizer, keras.optimizers.LossScaleOptimizer)
    assert isinstance(mixed.discriminator_optimizer, keras.optimizers.LossScaleOptimizer)
    ratios = []
    for player in (0, 1):
        ref = np.concatenate([(a - b).ravel() for a, b in
                              zip(reference[player], before[player], strict=True)])
        got = np.concatenate([(a.astype(np.float64) - b).ravel() for a, b in
                              zip(after[player], before[player], strict=True)])
        ratio = np.linalg.norm(got) / np.linalg.norm(ref)
        assert abs(ratio - 1.0) < tolerance, (player, ratio)
        ratios.append(ratio)
    return tuple(ratios)
