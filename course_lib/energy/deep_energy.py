"""Deep energy models trained with a generator in place of MCMC (Kim & Bengio 2016).

An energy network defines p_theta(x) = exp(-E_theta(x)) / Z_theta. Its log-likelihood
gradient is Chapter 1's data term minus model term, Eqs. (7.10)-(7.11) of
``07_gmmn_gsn_ebm.ipynb``:

    (7.10) -d/dtheta E_data log p_theta(x) = E_data[dE/dtheta] - E_{p_theta}[dE/dtheta]

and the model term's samples come from a generator G_phi(z) trained to minimise

    (7.11) KL(p_phi || p_theta) = E_z[E_theta(G_phi(z))] - H[p_phi] + log Z_theta,

whose entropy is approximated through the generator's batch normalization: each
batch-normalised unit a_i (a normalization layer's output) has a batch variance sigma_i^2,
and H ~ sum_i 1/2 log(2 pi e sigma_i^2), the entropy of a Gaussian of that variance, summed
over every unit of every batch-normalization layer. Without the entropy term the generator
collapses onto the energy's minimum. The outputs are used, not the inputs: a normalization
layer's output does not change when its input is scaled, so the inputs' variance could grow
without bound at no cost to the samples, while the output's variance is the layer's learned
scale gamma_i^2 (times var / (var + epsilon)), which the samples depend on.

The model is a ``course_lib.training.TwoPlayerModel``, the machinery of Chapter 5's GAN
(one optimizer per player, serialization, the guarded ``fit``, ``sample``): the
discriminator's place is taken by the energy network, the game's losses by (7.10)-(7.11).
Symbols -> code: E_theta -> ``self.energy`` (the GAN's ``discriminator``), G_phi ->
``self.generator``, H -> :func:`batch_norm_entropy`. Deviations, stated: an optional penalty
alpha (E(x)^2 + E(G(z))^2) on the energies (``energy_regularization``, Du & Mordatch 2019)
keeps their scale from drifting, which (7.10) alone does not fix; the entropy reads the
normalization layers' outputs (above), with 1e-6 added to each variance so that a unit
switched off gives a finite log.
"""

from __future__ import annotations

import math

import keras
import tensorflow as tf
from keras import ops

from course_lib.checks import check_finite_float, check_positive_int
from course_lib.energy.losses import LOSS_DTYPE, energy_difference_and_penalty
from course_lib.training import TwoPlayerModel, scaled_loss, unpack_batch


def batch_norm_layers(network):
    """The ``BatchNormalization`` layers of a Keras model, in order."""
    return [layer for layer in network._flatten_layers(include_self=False)
            if isinstance(layer, keras.layers.BatchNormalization)]


def batch_norm_entropy(activations, epsilon=1e-6):
    """Kim & Bengio's entropy estimate: sum over the units of every tensor in
    ``activations`` (the outputs of batch-normalization layers, (n, units) each) of
    1/2 log(2 pi e (var_batch + epsilon)), a scalar in float32."""
    total = 0.0
    for a in activations:
        a = ops.cast(a, LOSS_DTYPE)
        variance = ops.var(ops.reshape(a, (ops.shape(a)[0], -1)), axis=0)
        total += 0.5 * ops.sum(ops.log(2.0 * math.pi * math.e * (variance + epsilon)))
    return total


@keras.saving.register_keras_serializable(package="course_lib")
class DeepEnergyModel(TwoPlayerModel):
    """An energy network E_theta and a generator G_phi trained together, (7.10)-(7.11).

    Args:
        generator: a Keras model (Sequential or functional) from (n, ``latent_dim``) noise
            to (n, d) samples, with ``BatchNormalization`` layers (the entropy estimate
            reads their outputs) unless ``entropy_weight=0``. The estimate sees only the
            units that are batch-normalised: a generator whose output layer is a
            ``BatchNormalization`` lets it see the samples' own spread; one that ends in a
            plain Dense layer can shrink its samples without the estimate noticing.
        energy: a Keras model from (n, d) to (n, 1) energies (:func:`energy_network`).
        latent_dim: the width of z ~ N(0, I).
        entropy_weight: the weight of H in (7.11): 1 is the paper's; 0 drops the entropy
            (the generator then collapses onto the energy's minimum).
        energy_regularization: alpha >= 0 of the penalty on squared energies.
        energy_steps: energy updates per generator update.
        data_range: optional (low, high) the data must lie in.
        seed: int seed of the noise draws.

    ``compile(generator_optimizer=..., energy_optimizer=...)``. Metrics: ``energy_loss``
    (7.10 as a loss: mean E(x) - mean E(G(z))), ``generator_loss`` (7.11 without log Z),
    ``energy_data``, ``energy_model`` (the two mean energies) and ``entropy`` (the estimate
    of H). Like a GAN it names no checkpoint monitor.
    """

    divergence_advice = ("lower both learning rates, or raise energy_regularization so the "
                         "energies cannot drift")
    second_player = "energy"
    output_name = "energy"

    def __init__(self, generator, energy, *, latent_dim, entropy_weight=1.0,
                 energy_regularization=0.0, energy_steps=1, data_range=None, seed=None,
                 **kwargs):
        self.entropy_weight = check_finite_float(entropy_weight, "entropy_weight",
                                                 at_least=0.0)
        self.energy_regularization = check_finite_float(
            energy_regularization, "energy_regularization", at_least=0.0)
        energy_steps = check_positive_int(energy_steps, "energy_steps")
        super().__init__(generator, energy, latent_dim=latent_dim,
                         discriminator_steps=energy_steps, data_range=data_range, seed=seed,
                         **kwargs)   # the energy network takes the discriminator's place

    def create_state(self):
        norms = batch_norm_layers(self.generator)
        if self.entropy_weight > 0 and not norms:
            raise ValueError("the entropy estimate reads the generator's BatchNormalization "
                             "layers and this generator has none; add them (mlp_generator "
                             "does by default) or pass entropy_weight=0.")
        try:
            self.entropy_features = keras.Model(
                self.generator.inputs, [self.generator.outputs[0]] + [n.output for n in norms],
                name="entropy_features")
        except (AttributeError, ValueError) as error:
            raise ValueError("the generator must be a Sequential or functional Keras model "
                             f"(its layers' outputs are read): {error}") from None
        self.trackers = [keras.metrics.Mean(name=n) for n in (
            "energy_loss", "generator_loss", "energy_data", "energy_model", "entropy")]

    @property
    def energy(self):
        """E_theta, the network in the discriminator's place."""
        return self.discriminator

    def compile(self, generator_optimizer, energy_optimizer, **kwargs):
        """One optimizer per player: the generator's and the energy's."""
        super().compile(generator_optimizer=generator_optimizer,
                        discriminator_optimizer=energy_optimizer, **kwargs)

    def get_config(self):
        config = super().get_config()
        config["energy"] = config.pop("discriminator")
        config["energy_steps"] = config.pop("discriminator_steps")
        config.pop("packing")
        config.update(entropy_weight=self.entropy_weight,
                      energy_regularization=self.energy_regularization)
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for name in ("generator", "energy"):
            config[name] = keras.saving.deserialize_keras_object(config[name])
        return cls(**config)

    # ------------------------------------------------------------------------- losses
    def energy_loss(self, energy_data, energy_model):
        """Eq. (7.10) as a loss whose gradient is the data term minus the model term:
        mean E(x) - mean E(G(z)), plus alpha (mean E(x)^2 + mean E(G(z))^2)."""
        difference, penalty = energy_difference_and_penalty(energy_data, energy_model,
                                                            self.energy_regularization)
        return difference + penalty

    def generator_loss(self, energy_model, entropy):
        """Eq. (7.11) without log Z: mean E(G(z)) - entropy_weight * H."""
        return ops.mean(ops.cast(energy_model, LOSS_DTYPE)) - self.entropy_weight * entropy

    def generated_and_normalised(self, z, training):
        """G(z) and the outputs of G's batch-normalization layers on the same pass."""
        outputs = self.entropy_features(z, training=training)
        if not isinstance(outputs, (list, tuple)):     # a one-output model returns a tensor
            return outputs, []
        return outputs[0], list(outputs[1:])

    def entropy(self, activations):
        """H[p_phi] estimated from the batch-normalization outputs (0 without any)."""
        return batch_norm_entropy(activations) if activations else 0.0

    # ------------------------------------------------------------------------ training
    def energy_step(self, x):
        """One update of E_theta on data x and fresh samples; returns (loss, mean E(x),
        mean E(G(z)))."""
        fake = ops.stop_gradient(self.generator(self.sample_latent(ops.shape(x)[0]),
                                                training=True))
        variables = self.energy.trainable_variables
        with tf.GradientTape() as tape:
            energy_data = self.energy(x, training=True)
            energy_model = self.energy(fake, training=True)
            loss = self.energy_loss(energy_data, energy_model)
            scaled = scaled_loss(self.discriminator_optimizer, loss)
        self.discriminator_optimizer.apply(tape.gradient(scaled, variables), variables)
        return loss, ops.mean(ops.cast(energy_data, LOSS_DTYPE)), ops.mean(
            ops.cast(energy_model, LOSS_DTYPE))

    def generator_step(self, num_samples):
        """One update of G_phi on (7.11); returns (loss, entropy estimate)."""
        z = self.sample_latent(num_samples)
        variables = self.generator.trainable_variables
        with tf.GradientTape() as tape:
            fake, activations = self.generated_and_normalised(z, training=True)
            entropy = self.entropy(activations)
            loss = self.generator_loss(self.energy(fake, training=True), entropy)
            scaled = scaled_loss(self.generator_optimizer, loss)
        self.generator_optimizer.apply(tape.gradient(scaled, variables), variables)
        return loss, entropy

    def _record(self, *values):
        for tracker, value in zip(self.trackers, values, strict=True):
            tracker.update_state(value)
        return {m.name: m.result() for m in self.metrics}

    def train_step(self, data):
        x, _ = unpack_batch(data, type(self).__name__)
        for _ in range(self.discriminator_steps):
            e_loss, e_data, e_model = self.energy_step(x)
        g_loss, entropy = self.generator_step(ops.shape(x)[0])
        return self._record(e_loss, g_loss, e_data, e_model, entropy)

    def test_step(self, data):
        """The losses and mean energies on held-out data and fresh samples (no update)."""
        x, _ = unpack_batch(data, type(self).__name__)
        fake, activations = self.generated_and_normalised(     # inference mode: no moving
            self.sample_latent(ops.shape(x)[0]), training=False)   # statistics are updated
        energy_data = self.energy(x, training=False)
        energy_model = self.energy(fake, training=False)
        entropy = self.entropy(activations)
        return self._record(self.energy_loss(energy_data, energy_model),
                            self.generator_loss(energy_model, entropy),
                            ops.mean(ops.cast(energy_data, LOSS_DTYPE)),
                            ops.mean(ops.cast(energy_model, LOSS_DTYPE)), entropy)

    @property
    def metrics(self):
        return list(self.trackers)


@keras.saving.register_keras_serializable(package="course_lib")
class ExpertsEnergy(keras.layers.Layer):
    """Kim & Bengio's energy, Eq. (7.12):
    E(x) = ||x||^2 / (2 sigma^2) - b.x - sum_k softplus(w_k . phi(x) + c_k),
    a Gaussian base times a product of experts on features phi(x) (an MLP with leaky
    ReLUs). The quadratic term makes exp(-E) integrable whatever phi learns.

    Args:
        hidden_units: phi's layer widths.
        num_experts: K.
        sigma: the base's standard deviation (> 0).
    """

    def __init__(self, hidden_units, num_experts, *, sigma=1.0, **kwargs):
        super().__init__(**kwargs)
        self.hidden_units = [check_positive_int(u, "hidden units") for u in hidden_units]
        self.num_experts = check_positive_int(num_experts, "num_experts")
        self.sigma = check_finite_float(sigma, "sigma", above=0.0)
        self.features = [keras.layers.Dense(u, name=f"phi{i}")
                         for i, u in enumerate(self.hidden_units)]
        self.experts = keras.layers.Dense(self.num_experts, name="experts")
        self.linear = keras.layers.Dense(1, use_bias=False, name="visible_bias")

    def build(self, input_shape):
        shape = input_shape
        for layer in self.features:
            layer.build(shape)
            shape = layer.compute_output_shape(shape)
        self.experts.build(shape)
        self.linear.build(input_shape)

    def call(self, x):
        phi = x
        for layer in self.features:
            phi = ops.leaky_relu(layer(phi), 0.2)
        quadratic = ops.sum(ops.square(x), axis=-1, keepdims=True) / (2.0 * self.sigma**2)
        experts = ops.sum(ops.softplus(self.experts(phi)), axis=-1, keepdims=True)
        return quadratic - self.linear(x) - experts

    def compute_output_shape(self, input_shape):
        return (input_shape[0], 1)

    def get_config(self):
        return {**super().get_config(), "hidden_units": self.hidden_units,
                "num_experts": self.num_experts, "sigma": self.sigma}


def energy_network(input_dim, hidden_units, num_experts, *, sigma=1.0, name="energy"):
    """A Keras model (n, input_dim) -> (n, 1) computing :class:`ExpertsEnergy`."""
    input_dim = check_positive_int(input_dim, "input_dim")
    return keras.Sequential([keras.Input((input_dim,)),
                             ExpertsEnergy(hidden_units, num_experts, sigma=sigma,
                                           name=f"{name}_experts")], name=name)
