"""Generative adversarial networks (Goodfellow et al. 2014), the two-player ``train_step``.

The game, Eqs. (5.1)-(5.4) of ``05_gan.ipynb``, with D(x) = sigmoid(l(x)) for the
discriminator's logit l:

    (5.1) V(D, G) = E_data log D(x) + E_z log(1 - D(G(z)))
    (5.2) D*(x)   = p_data(x) / (p_data(x) + p_g(x))             the optimal discriminator
    (5.3) V(D*, G) = -log 4 + 2 JS(p_data || p_g)
    (5.4) generator losses: minimax E_z log(1 - D(G(z))) (saturates when D wins),
          non-saturating -E_z log D(G(z)) (the same fixed point, strong early gradients),
          least squares 1/2 E_z (l(G(z)) - 1)^2 (Mao et al. 2017; D's loss is then
          1/2 E (l(x) - 1)^2 + 1/2 E l(G(z))^2 on the raw output l).

Written with logits: log D = -softplus(-l) and log(1 - D) = -softplus(l), which never take
the log of 0. Symbols -> code: G -> ``self.generator``, D -> ``self.discriminator`` (it
returns the logit l), z -> ``sample_latent`` (standard normal, ``latent_dim`` wide), k
discriminator updates per generator update -> ``discriminator_steps``.

``GAN`` is a ``course_lib.training.TwoPlayerModel`` (two sub-models, one optimizer per
player (``compile(generator_optimizer=..., discriminator_optimizer=...)``), both optimizers
saved with the model, the project's ``fit``: validated input, divergence guard,
checkpoints), the base it shares with Chapter 7's deep energy model; it adds the game's
losses and a ``train_step`` that updates each player only through its own variables.
Deviations from the paper's Algorithm 1, stated: it draws a fresh minibatch of data for each
of its k discriminator steps, and fresh noise for the generator's step. Here the k steps
share the batch (``fit`` delivers one), each with fresh noise, and the generator's update
reuses the samples G(z) of the last discriminator update, run through the updated D, as the
DCGAN authors' code (dcgan.torch) and PyTorch's DCGAN example do: D's update does not change
G, so generating them again would repeat the generator's forward pass for nothing but
fresh noise.

Packing (PacGAN, Lin et al. 2018), ``packing=m``: D judges m samples at once, all real or all
generated, concatenated into one input of width m d. A generator that puts its mass on a few
modes draws m alike samples far more often than the data does, which a packed D can see.

Gradient penalty (R1, Mescheder, Geiger & Nowozin 2018), ``gradient_penalty=gamma``: D's loss
gains gamma/2 E_data ||grad_x l(x)||^2, which stops D from growing steep walls around the data
and lets the game settle (the logged ``discriminator_loss`` stays the game's loss, without the
penalty). The gradient taken is that of the batch's summed logit with respect to each input:
the per-sample gradient whenever D treats samples independently (no batch normalization or
minibatch discrimination in D).
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops

from course_lib.checks import (
    check_finite_float,
    check_positive_int,
    describe,
)
from course_lib.training import TwoPlayerModel, scaled_loss, unpack_batch

LOSSES = ("minimax", "non_saturating", "least_squares")
LOSS_DTYPE = "float32"   # losses and metrics, whatever the networks compute in


def check_loss(loss):
    """``loss`` if it names one of :data:`LOSSES`; a clear error otherwise."""
    if not isinstance(loss, str) or loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}; got {describe(loss)}.")
    return loss


def discriminator_loss(real_logits, fake_logits, loss="non_saturating"):
    """The discriminator's loss, a scalar: minus (5.1), -E log D(x) - E log(1 - D(G(z))),
    for the minimax and non-saturating games (they differ only in G's loss); the
    least-squares loss for ``"least_squares"``."""
    loss = check_loss(loss)
    real_logits = ops.cast(real_logits, LOSS_DTYPE)
    fake_logits = ops.cast(fake_logits, LOSS_DTYPE)
    if loss == "least_squares":
        return 0.5 * (ops.mean(ops.square(real_logits - 1.0)) + ops.mean(ops.square(fake_logits)))
    return ops.mean(ops.softplus(-real_logits)) + ops.mean(ops.softplus(fake_logits))


def generator_loss(fake_logits, loss="non_saturating"):
    """The generator's loss (5.4), a scalar, from D's logits on generated samples."""
    loss = check_loss(loss)
    fake_logits = ops.cast(fake_logits, LOSS_DTYPE)
    if loss == "minimax":             # E log(1 - D(G(z))), which G minimizes
        return -ops.mean(ops.softplus(fake_logits))
    if loss == "non_saturating":      # -E log D(G(z))
        return ops.mean(ops.softplus(-fake_logits))
    return 0.5 * ops.mean(ops.square(fake_logits - 1.0))


def mean_probability(logits):
    """The mean of D = sigmoid(logit) over a batch, in the loss dtype (a logged metric)."""
    return ops.mean(ops.sigmoid(ops.cast(logits, LOSS_DTYPE)))


@keras.saving.register_keras_serializable(package="course_lib")
class GAN(TwoPlayerModel):
    """A generator G and a discriminator D trained against each other, Eqs. (5.1)-(5.4).

    Args:
        generator: a Keras model from (n, ``latent_dim``) noise to (n, d) samples (flattened,
            like every course model's data).
        discriminator: a Keras model from (n, d) samples to (n, 1) logits.
        latent_dim: the width of z ~ N(0, I).
        loss: ``"non_saturating"`` (default), ``"minimax"`` or ``"least_squares"``.
        discriminator_steps: k, discriminator updates per generator update.
        data_range: optional (low, high) that every data value must lie in (for example
            (-1, 1) for a tanh generator); ``fit`` refuses data outside it.
        packing: m, the samples D judges together (PacGAN); the discriminator then takes
            inputs of width m d. 1 (default) is the plain GAN.
        gradient_penalty: gamma >= 0 of the R1 penalty on real data (0, the default, is none).
        seed: int seed of the latent draws (the networks' initial weights come from Keras'
            global generator: call ``keras.utils.set_random_seed`` first).

    ``compile(generator_optimizer=..., discriminator_optimizer=...)`` takes one optimizer per
    player. Metrics: ``discriminator_loss``, ``generator_loss``, ``d_real`` (mean D(x)) and
    ``d_fake`` (mean D(G(z)) at the generator's step); with packing, means over packs. No
    loss of a GAN says which of two generators is better, so the model names no
    ``checkpoint_monitor``: checkpoint with ``SafeCheckpoint(..., monitor=None)`` (the latest
    guarded model) or monitor a sample score logged by an ``Evaluator``.

    Example:
        >>> gan = GAN(mlp_generator(100, (256,), 784), mlp_discriminator(784, (256,)),
        ...           latent_dim=100, data_range=(-1.0, 1.0), seed=0)
        >>> gan.compile(generator_optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5),
        ...             discriminator_optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5))
        >>> gan.fit(2 * x - 1, batch_size=64, epochs=5)
    """

    divergence_advice = ("lower both learning rates (Adam(2e-4, beta_1=0.5) is the DCGAN "
                         "setting); check that the data lie in the generator's output range")
    checkpoint_monitor = None

    def __init__(self, generator, discriminator, *, latent_dim, loss="non_saturating",
                 discriminator_steps=1, packing=1, gradient_penalty=0.0, data_range=None,
                 seed=None, **kwargs):
        self.loss_name = check_loss(loss)
        self.gradient_penalty = check_finite_float(gradient_penalty, "gradient_penalty",
                                                   at_least=0.0)
        super().__init__(generator, discriminator, latent_dim=latent_dim,
                         discriminator_steps=discriminator_steps, packing=packing,
                         data_range=data_range, seed=seed, **kwargs)

    def create_state(self):
        self.d_loss_tracker = keras.metrics.Mean(name="discriminator_loss")
        self.g_loss_tracker = keras.metrics.Mean(name="generator_loss")
        self.d_real_tracker = keras.metrics.Mean(name="d_real")
        self.d_fake_tracker = keras.metrics.Mean(name="d_fake")

    def get_config(self):
        return {**super().get_config(), "loss": self.loss_name,
                "gradient_penalty": self.gradient_penalty}

    # ------------------------------------------------------------------------ training
    def generate(self, num_samples):
        """Fresh samples G(z), z ~ N(0, I), made in training mode under a tape that records
        them: ``(samples, tape)``. :meth:`generator_step` continues on that tape, so the
        samples D was just trained on serve G's update without being generated again."""
        tape = tf.GradientTape()
        with tape:
            fake = self.generator(self.sample_latent(num_samples), training=True)
        return fake, tape

    def discriminator_step(self, x, fake=None):
        """One discriminator update on real x and generated samples ``fake`` (fresh G(z), as
        many as x has rows, when not given); returns (loss, mean D(x))."""
        if fake is None:
            fake = self.generator(self.sample_latent(ops.shape(x)[0]), training=True)
        variables = self.discriminator.trainable_variables
        with tf.GradientTape() as tape:
            real_logits, penalty = self.real_logits_and_penalty(self.pack(x))
            fake_logits = self.discriminator(self.pack(ops.stop_gradient(fake)),
                                             training=True)
            loss = discriminator_loss(real_logits, fake_logits, self.loss_name)
            scaled = scaled_loss(self.discriminator_optimizer, loss + penalty)
        self.discriminator_optimizer.apply(tape.gradient(scaled, variables), variables)
        return loss, mean_probability(real_logits)

    def real_logits_and_penalty(self, packed):
        """D's logits on real inputs and the R1 penalty gamma/2 mean ||grad_x l(x)||^2 (0
        without a penalty)."""
        if not self.gradient_penalty:
            return self.discriminator(packed, training=True), 0.0
        packed = ops.convert_to_tensor(packed)
        with tf.GradientTape() as inner:
            inner.watch(packed)
            logits = self.discriminator(packed, training=True)
            summed = ops.sum(ops.cast(logits, LOSS_DTYPE))
        slopes = ops.cast(inner.gradient(summed, packed), LOSS_DTYPE)
        return logits, 0.5 * self.gradient_penalty * ops.mean(ops.sum(ops.square(slopes), -1))

    def generator_step(self, num_samples=None, *, generated=None):
        """One generator update through the current D, on ``generated`` = (G(z), its tape)
        from :meth:`generate`, or on ``num_samples`` fresh ones; returns (loss, mean D(G(z)))."""
        if (num_samples is None) == (generated is None):
            raise ValueError("generator_step takes num_samples or generated (samples and "
                             "the tape of generate()), one of the two.")
        fake, tape = self.generate(num_samples) if generated is None else generated
        variables = self.generator.trainable_variables
        with tape:
            fake_logits = self.discriminator(self.pack(fake), training=True)
            loss = generator_loss(fake_logits, self.loss_name)
            scaled = scaled_loss(self.generator_optimizer, loss)
        self.generator_optimizer.apply(tape.gradient(scaled, variables), variables)
        return loss, mean_probability(fake_logits)

    def _record(self, d_loss, g_loss, d_real, d_fake):
        """Updates the four metrics; returns the logs."""
        for tracker, value in ((self.d_loss_tracker, d_loss), (self.g_loss_tracker, g_loss),
                               (self.d_real_tracker, d_real), (self.d_fake_tracker, d_fake)):
            tracker.update_state(value)
        return {m.name: m.result() for m in self.metrics}

    def train_step(self, data):
        x, _ = unpack_batch(data, type(self).__name__)
        for _ in range(self.discriminator_steps - 1):
            self.discriminator_step(x)
        generated = self.generate(ops.shape(x)[0])      # D's last step and G's step share it
        d_loss, d_real = self.discriminator_step(x, generated[0])
        g_loss, d_fake = self.generator_step(generated=generated)
        return self._record(d_loss, g_loss, d_real, d_fake)

    def test_step(self, data):
        """The discriminator's loss and D's mean outputs on held-out data (no update)."""
        x, _ = unpack_batch(data, type(self).__name__)
        real_logits = self.discriminator(self.pack(x), training=False)
        fake_logits = self.discriminator(self.pack(
            self.generator(self.sample_latent(ops.shape(x)[0]), training=False)),
            training=False)
        return self._record(discriminator_loss(real_logits, fake_logits, self.loss_name),
                            generator_loss(fake_logits, self.loss_name),
                            mean_probability(real_logits), mean_probability(fake_logits))

    @property
    def metrics(self):
        return [self.d_loss_tracker, self.g_loss_tracker, self.d_real_tracker,
                self.d_fake_tracker]


@keras.saving.register_keras_serializable(package="course_lib")
class LeakyReLU(keras.layers.LeakyReLU):
    """``keras.layers.LeakyReLU`` whose gradient reads the layer's output instead of its
    input: the same values (with a slope >= 0, which Keras requires, the output is positive
    exactly where the input is), one input fewer to keep.

    Why: TensorFlow's graph optimizer fuses a convolution (or dense layer) + bias + LeakyReLU
    into one kernel. When LeakyReLU's gradient reads the bias node's output, which the fusion
    removes, the optimizer fails on some training graphs (Keras' multi-step loop among them),
    prints "remapper failed: ... Mutation::Apply error" into the notebook, and leaves the
    whole step unfused. Reading the output instead leaves the bias node one reader, and the
    fusion is then always valid.
    """

    def call(self, inputs):
        return _leaky_relu(inputs, self.negative_slope)


def _leaky_relu(x, negative_slope):
    @tf.custom_gradient
    def forward(x):
        y = tf.nn.leaky_relu(x, alpha=negative_slope)

        def backward(upstream):
            return tf.where(y > 0, upstream, upstream * tf.cast(negative_slope, y.dtype))
        return y, backward
    return forward(x)


def mlp_generator(latent_dim, hidden_units, output_dim, *, batch_norm=True,
                  output_activation="tanh", name="generator"):
    """The seed paper's MLP generator: Dense + (BatchNorm) + ReLU per hidden layer, then a
    Dense output with ``output_activation`` (tanh for data in [-1, 1], None for real
    values such as 2-D points)."""
    latent_dim = check_positive_int(latent_dim, "latent_dim")
    output_dim = check_positive_int(output_dim, "output_dim")
    layers = [keras.Input((latent_dim,))]
    for i, units in enumerate(hidden_units):
        layers.append(keras.layers.Dense(check_positive_int(units, "hidden units"),
                                         use_bias=not batch_norm, name=f"{name}_dense{i}"))
        if batch_norm:
            layers.append(keras.layers.BatchNormalization(name=f"{name}_bn{i}"))
        layers.append(keras.layers.ReLU(name=f"{name}_relu{i}"))
    layers.append(keras.layers.Dense(output_dim, activation=output_activation,
                                     name=f"{name}_out"))
    return keras.Sequential(layers, name=name)


def mlp_discriminator(input_dim, hidden_units, *, negative_slope=0.2, extra_layers=(),
                      name="discriminator"):
    """An MLP discriminator: Dense + :class:`LeakyReLU` per hidden layer, ``extra_layers``
    (for example a :class:`MinibatchDiscrimination`) before the one-logit output."""
    input_dim = check_positive_int(input_dim, "input_dim")
    layers = [keras.Input((input_dim,))]
    for i, units in enumerate(hidden_units):
        layers.append(keras.layers.Dense(check_positive_int(units, "hidden units"),
                                         name=f"{name}_dense{i}"))
        layers.append(LeakyReLU(negative_slope=negative_slope, name=f"{name}_leaky{i}"))
    layers.extend(extra_layers)
    layers.append(keras.layers.Dense(1, name=f"{name}_logit"))
    return keras.Sequential(layers, name=name)


def dcgan_generator(latent_dim, *, image_shape=(28, 28), filters=(128, 64), name="generator"):
    """A small DCGAN generator (Radford et al. 2016) for flattened images in [-1, 1]: a Dense
    projection to a (H/4, W/4, filters[0]) map, BatchNorm and ReLU, a stride-2 transposed
    convolution to filters[1] (BatchNorm, ReLU), a stride-2 transposed convolution to one
    tanh channel, flattened to (n, H * W)."""
    latent_dim = check_positive_int(latent_dim, "latent_dim")
    height, width = (check_positive_int(s, "image size") for s in image_shape)
    if height % 4 or width % 4:
        raise ValueError(f"image_shape must be divisible by 4 (two stride-2 steps); got "
                         f"{tuple(image_shape)}.")
    wide, narrow = (check_positive_int(f, "filters") for f in filters)
    return keras.Sequential([
        keras.Input((latent_dim,)),
        keras.layers.Dense((height // 4) * (width // 4) * wide, use_bias=False,
                           name=f"{name}_project"),
        keras.layers.BatchNormalization(name=f"{name}_bn0"),
        keras.layers.ReLU(name=f"{name}_relu0"),
        keras.layers.Reshape((height // 4, width // 4, wide), name=f"{name}_map"),
        keras.layers.Conv2DTranspose(narrow, 4, strides=2, padding="same", use_bias=False,
                                     name=f"{name}_up1"),
        keras.layers.BatchNormalization(name=f"{name}_bn1"),
        keras.layers.ReLU(name=f"{name}_relu1"),
        keras.layers.Conv2DTranspose(1, 4, strides=2, padding="same", activation="tanh",
                                     name=f"{name}_up2"),
        keras.layers.Flatten(name=f"{name}_flat"),
    ], name=name)


def dcgan_discriminator(*, image_shape=(28, 28), filters=(64, 128), negative_slope=0.2,
                        name="discriminator"):
    """The matching DCGAN discriminator: two stride-2 4x4 convolutions with LeakyReLU (no
    BatchNorm on the input layer, as in the paper), flattened to one logit. The activations
    are :class:`LeakyReLU`, whose gradient TensorFlow's graph optimizer handles."""
    height, width = (check_positive_int(s, "image size") for s in image_shape)
    first, second = (check_positive_int(f, "filters") for f in filters)
    return keras.Sequential([
        keras.Input((height * width,)),
        keras.layers.Reshape((height, width, 1), name=f"{name}_image"),
        keras.layers.Conv2D(first, 4, strides=2, padding="same", name=f"{name}_conv1"),
        LeakyReLU(negative_slope=negative_slope, name=f"{name}_leaky1"),
        keras.layers.Conv2D(second, 4, strides=2, padding="same", name=f"{name}_conv2"),
        LeakyReLU(negative_slope=negative_slope, name=f"{name}_leaky2"),
        keras.layers.Flatten(name=f"{name}_flat"),
        keras.layers.Dense(1, name=f"{name}_logit"),
    ], name=name)


@keras.saving.register_keras_serializable(package="course_lib")
class MinibatchDiscrimination(keras.layers.Layer):
    """Minibatch discrimination (Salimans et al. 2016, section 3.2), a layer of D.

    For features f(x_i) (n, A), a tensor T (A, B, C) gives M_i = f(x_i) T (B rows of C);
    c_b(x_i, x_j) = exp(-||M_{i,b} - M_{j,b}||_1) and o(x_i)_b = sum_j c_b(x_i, x_j) over the
    minibatch (j = i included, as in the paper: it adds 1 to every o_b). The layer returns
    [f(x_i), o(x_i)], (n, A + B): D can then see how alike the samples of a batch are, which
    a collapsed generator cannot hide. Under several replicas the sum runs over each
    replica's share of the batch.

    Args:
        num_kernels: B.
        kernel_dim: C.
    """

    def __init__(self, num_kernels, kernel_dim, **kwargs):
        super().__init__(**kwargs)
        self.num_kernels = check_positive_int(num_kernels, "num_kernels")
        self.kernel_dim = check_positive_int(kernel_dim, "kernel_dim")

    def build(self, input_shape):
        if len(input_shape) != 2 or input_shape[-1] is None:
            raise ValueError(f"MinibatchDiscrimination takes features (n, A); got shape "
                             f"{tuple(input_shape)}.")
        self.T = self.add_weight(shape=(input_shape[-1], self.num_kernels * self.kernel_dim),
                                 initializer=keras.initializers.RandomNormal(stddev=0.05),
                                 name="T")

    def call(self, features):
        M = ops.reshape(ops.matmul(features, self.T), (-1, self.num_kernels, self.kernel_dim))
        l1 = ops.sum(ops.abs(M[:, None, :, :] - M[None, :, :, :]), axis=-1)   # (n, n, B)
        return ops.concatenate([features, ops.sum(ops.exp(-l1), axis=1)], axis=-1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[-1] + self.num_kernels)

    def get_config(self):
        return {**super().get_config(), "num_kernels": self.num_kernels,
                "kernel_dim": self.kernel_dim}
