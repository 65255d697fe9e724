"""Two networks trained against each other, one optimizer each: the machinery of Chapter 5's
GAN, shared with the models that replace its discriminator by another second player (Chapter
7's energy network), and with Chapter 8's translation models (their players are pairs of
networks: :class:`PlayerOptimizersMixin` alone).

:class:`TwoPlayerModel` holds a generator G(z) (``LatentGeneratorMixin``: the prior,
``sample``) and a second network that scores its samples (``self.discriminator``: a
discriminator's logit, an energy), validates that their shapes fit, compiles with one
optimizer per player (each wrapped in a loss scale under mixed precision), saves both
optimizers with the model, and gives the project's guarded ``fit``. Subclasses write the
game: the players' losses, ``train_step`` and the metrics. The second network may judge
``packing`` samples at once (PacGAN), concatenated into one input of width m d.
``second_player`` names it in messages and in ``compile`` (``<second_player>_optimizer``).
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from course_lib import sampling
from course_lib.checks import check_images, check_positive_int, check_seed
from course_lib.training.fit import GuardedFitMixin
from course_lib.training.generators import (
    LatentGeneratorMixin,
    check_data_range,
    check_generator,
    check_in_data_range,
    check_keras_model,
)


class PlayerOptimizersMixin:
    """``compile`` with one optimizer per player, for a ``GuardedFitMixin`` Keras model:
    ``compile(generator_optimizer=..., <second_player>_optimizer=...)`` checks them, wraps
    each in a loss scale under mixed precision, exposes them as ``generator_optimizer`` and
    ``discriminator_optimizer`` and saves both with the model. A player may be several
    networks (CycleGAN's two generators): the model's :meth:`player_variables` says which
    variables each optimizer updates."""

    second_player = "discriminator"
    generator_optimizer = discriminator_optimizer = None

    def compile(self, generator_optimizer, discriminator_optimizer, **kwargs):
        """One optimizer per player; other arguments as in ``keras.Model.compile``
        (``jit_compile``, ``steps_per_execution``). A Keras ``loss`` is refused: the game's
        losses are the model's own."""
        second = f"{self.second_player}_optimizer"
        for name, optimizer in (("generator_optimizer", generator_optimizer),
                                (second, discriminator_optimizer)):
            if not isinstance(optimizer, keras.optimizers.Optimizer):
                raise TypeError(f"{name} must be a keras.optimizers.Optimizer; got "
                                f"{type(optimizer).__name__}.")
        if generator_optimizer is discriminator_optimizer:
            raise ValueError("the two players need two optimizer objects (an optimizer keeps "
                             "state for the variables it updates); got the same one twice.")
        for name in ("loss", "optimizer", "metrics"):
            if kwargs.get(name) is not None:
                raise ValueError(f"{type(self).__name__}.compile takes no {name}=: the game's "
                                 "losses and metrics are the model's own; pass "
                                 f"generator_optimizer and {second}.")
        super().compile(optimizer=None, **kwargs)     # no third optimizer beside the two
        if self.dtype_policy.name == "mixed_float16":
            # What compile() does for a model's one optimizer: a dynamic loss scale, which
            # train_step's scaled_loss multiplies in and apply() divides out again.
            generator_optimizer, discriminator_optimizer = (
                o if isinstance(o, keras.optimizers.LossScaleOptimizer)
                else keras.optimizers.LossScaleOptimizer(o)
                for o in (generator_optimizer, discriminator_optimizer))
        self.generator_optimizer = generator_optimizer
        self.discriminator_optimizer = discriminator_optimizer

    @property
    def update_optimizer(self):
        """The generator's: one update of the game is one generator update (``Evaluator``
        counts these)."""
        return self.generator_optimizer

    def player_variables(self):
        """``(the generator's variables, the second player's)``: what each optimizer
        updates. A model whose players are several networks lists them all."""
        raise NotImplementedError

    def optimizer_variables(self):
        if self.generator_optimizer is None:
            return []
        generator_variables, second_variables = self.player_variables()
        return [(self.generator_optimizer, generator_variables),
                (self.discriminator_optimizer, second_variables)]

    def get_compile_config(self):
        config = {key: value for key, value in super().get_compile_config().items()
                  if key not in ("optimizer", "loss", "metrics", "loss_weights",
                                 "weighted_metrics")}   # the game's own; refused by compile
        return {**config,
                "generator_optimizer": keras.saving.serialize_keras_object(
                    self.generator_optimizer),
                f"{self.second_player}_optimizer": keras.saving.serialize_keras_object(
                    self.discriminator_optimizer)}


class TwoPlayerModel(LatentGeneratorMixin, PlayerOptimizersMixin, GuardedFitMixin,
                     keras.Model):
    """A generator and a second network, one optimizer each (see the module docstring).

    Args:
        generator: a Keras model from (n, ``latent_dim``) noise to (n, d) samples.
        discriminator: the second player, a Keras model from (n, ``packing`` d) to (n, 1).
        latent_dim: the width of z ~ N(0, I).
        discriminator_steps: updates of the second player per generator update.
        packing: samples the second player judges together (1: one at a time).
        data_range: optional (low, high) that every data value must lie in.
        seed: int seed of the latent draws.
    """

    second_player = "discriminator"
    output_name = "logit"

    def __init__(self, generator, discriminator, *, latent_dim, discriminator_steps=1,
                 packing=1, data_range=None, seed=None, **kwargs):
        super().__init__(**kwargs)
        check_keras_model(generator, "generator")
        check_keras_model(discriminator, self.second_player)
        self.latent_dim = check_positive_int(latent_dim, "latent_dim")
        self.discriminator_steps = check_positive_int(discriminator_steps,
                                                      "discriminator_steps")
        self.packing = check_positive_int(packing, "packing")
        self.data_range = check_data_range(data_range)
        self.prior = "normal"
        self.seed = check_seed(seed, allow_none=True)
        self.generator, self.discriminator = generator, discriminator
        self.data_dim = self._check_networks()
        self.seed_generator = sampling.tracked_seed_generator(self, seed)
        self.generator_optimizer = self.discriminator_optimizer = None
        self.create_state()
        self.build((None, self.data_dim))

    def create_state(self):
        """Creates what a subclass adds to the model (its metrics' trackers, helper models):
        called by the constructor after the networks are checked and before the model is
        built, which locks its state."""

    def build(self, input_shape):
        """Nothing to create: both networks were built on one example by the constructor
        (the model is fed data of shape ``input_shape`` = (n, d))."""

    def _check_networks(self):
        """Builds both networks on one example and checks that their shapes fit; returns d."""
        data_dim = check_generator(self.generator, self.latent_dim)
        width = self.packing * data_dim
        packs = (f" (packing={self.packing} samples of width {data_dim}, concatenated)"
                 if self.packing > 1 else " samples")
        try:
            logits = self.discriminator(np.zeros((1, width), "float32"))
        except Exception as error:  # noqa: BLE001
            raise ValueError(f"the {self.second_player} does not take the generator's "
                             f"(n, {width}){packs}: {type(error).__name__}: {error}") from None
        if tuple(logits.shape) != (1, 1):
            raise ValueError(f"the {self.second_player} must return one {self.output_name} per "
                             f"input, shape (n, 1); it returns shape {tuple(logits.shape)} for "
                             "one input.")
        return data_dim

    def player_variables(self):
        return (self.generator.trainable_variables,
                self.discriminator.trainable_variables)

    def get_config(self):
        config = super().get_config()
        config.update(
            generator=keras.saving.serialize_keras_object(self.generator),
            discriminator=keras.saving.serialize_keras_object(self.discriminator),
            latent_dim=self.latent_dim, discriminator_steps=self.discriminator_steps,
            packing=self.packing,
            data_range=None if self.data_range is None else list(self.data_range),
            seed=self.seed)
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for name in ("generator", "discriminator"):
            config[name] = keras.saving.deserialize_keras_object(config[name])
        return cls(**config)

    def check_visible(self, x, name="x"):
        """Validates data (n, d): finite, the generator's width, inside ``data_range``."""
        return check_in_data_range(check_images(x, expected_dim=self.data_dim, name=name),
                                   self.data_range, name)

    def pack(self, x):
        """D's inputs for samples x (n, d): groups of ``packing`` consecutive rows
        concatenated, (ceil(n / m), m d). A batch whose size is not a multiple of m is
        completed by repeating its first rows (so no batch is ever empty)."""
        if self.packing == 1:
            return x
        n = ops.shape(x)[0]
        rows = ops.mod(ops.arange(-(-n // self.packing) * self.packing), n)
        return ops.reshape(ops.take(x, rows, axis=0), (-1, self.packing * self.data_dim))
