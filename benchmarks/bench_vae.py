"""One epoch of the 784-512-2 MLP VAE on 50,000 binarized MNIST images, batch 128, Adam 1e-3:
course_lib's VAE against the same model written the way the keras.io "Variational
AutoEncoder" example writes it, interleaved in the same run.

    python benchmarks/bench_vae.py [--repeats 5]

About two minutes on 2 cores. Both models: encoder Dense(512, relu) -> mean and log-variance of
a 2-D Gaussian q(z | x), one reparameterized draw, decoder Dense(512, relu) -> 784 Bernoulli
pixels, loss = -ELBO with the closed-form KL, trained with ``fit(x, batch_size=128,
epochs=1, verbose=0)`` on ``course_lib.data.mnist_splits()["x_train"]``.

- course_lib: ``VAE(784, 2, (512,), activation="relu", seed=0)``, ``fit`` on the array.
- keras_io: a functional ``encoder`` (with a ``Sampling`` layer) and ``decoder`` (sigmoid
  output), a ``keras.Model`` subclass with a plain ``tf.GradientTape`` ``train_step``,
  reconstruction loss = sum over pixels of ``keras.losses.binary_crossentropy``, KL =
  -0.5 sum(1 + log_var - mean^2 - exp(log_var)), three ``Mean`` trackers, ``fit`` on the
  array.

Each model is compiled the way its users compile it: course_lib with the library's own
default ``steps_per_execution``, keras_io with Keras' default (1), as the example does.

The arithmetic floor: the same epoch (391 batches, the last one partial) as one
``tf.function`` holding one ``tf.range`` loop, with no Keras, no callbacks and no optimizer
object: a per-epoch permutation, then per batch one ``tf.gather`` of the rows, the same
dense layers as course_lib's model (784-512 relu, 512-4 for the mean and log-variance,
2-512 relu, 512-784 logits) as plain matmuls and bias adds, the clipped log-variance, one
reparameterized draw, the Bernoulli log-likelihood from logits, the closed-form KL, the
gradients from a ``tf.GradientTape`` and Adam's update written out (the same arithmetic as
``keras.optimizers.Adam``), and the four logged means. ``ours/floor`` is the price of
everything else (Keras' training loop and layers, the tf.data input pipeline, the
optimizer object, metrics, the guard).

Each contender is warmed up once on a few batches (tracing, not counted); then, alternating,
``--repeats`` timed epochs of each, every one started from the same initial weights and a
fresh Adam state, so that every timed epoch is "the first epoch" and ends at a comparable
loss. Prints the median epoch time and the last epoch's mean training loss (-ELBO, nats) of
each, checks that the losses agree within ``--loss-tolerance`` nats (the same work), prints
what differs between the two and times the variants that isolate it, prints the floor, and
ends with ``ratio course_lib/keras_io = <value>`` (median ours / median peer; lower is
better).
Also printed for each: the fastest epoch and the median process CPU time of an epoch (all
threads), which other processes sharing the CPUs disturb less than wall time. Timings are
indicative: other processes may share the CPUs.
"""

import argparse
import os
import statistics

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from contenders import Contender  # noqa: E402
from keras import layers, ops  # noqa: E402
from timing import timed  # noqa: E402

from course_lib import data  # noqa: E402
from course_lib.training import array_dataset  # noqa: E402
from course_lib.variational.vae import VAE  # noqa: E402

INPUT_DIM, HIDDEN, LATENT_DIM = 784, 512, 2


# ------------------------------------------------------------ the keras.io example's model
class Sampling(layers.Layer):
    """Uses (z_mean, z_log_var) to sample z, the vector encoding a digit."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.seed_generator = keras.random.SeedGenerator(1337)

    def call(self, inputs):
        z_mean, z_log_var = inputs
        batch = ops.shape(z_mean)[0]
        dim = ops.shape(z_mean)[1]
        epsilon = keras.random.normal(shape=(batch, dim), seed=self.seed_generator)
        return z_mean + ops.exp(0.5 * z_log_var) * epsilon


def keras_io_encoder():
    encoder_inputs = keras.Input(shape=(INPUT_DIM,))
    x = layers.Dense(HIDDEN, activation="relu")(encoder_inputs)
    z_mean = layers.Dense(LATENT_DIM, name="z_mean")(x)
    z_log_var = layers.Dense(LATENT_DIM, name="z_log_var")(x)
    z = Sampling()([z_mean, z_log_var])
    return keras.Model(encoder_inputs, [z_mean, z_log_var, z], name="encoder")


def keras_io_decoder():
    latent_inputs = keras.Input(shape=(LATENT_DIM,))
    x = layers.Dense(HIDDEN, activation="relu")(latent_inputs)
    decoder_outputs = layers.Dense(INPUT_DIM, activation="sigmoid")(x)
    return keras.Model(latent_inputs, decoder_outputs, name="decoder")


class KerasIoVAE(keras.Model):
    def __init__(self, encoder, decoder, **kwargs):
        super().__init__(**kwargs)
        self.encoder = encoder
        self.decoder = decoder
        self.total_loss_tracker = keras.metrics.Mean(name="total_loss")
        self.reconstruction_loss_tracker = keras.metrics.Mean(name="reconstruction_loss")
        self.kl_loss_tracker = keras.metrics.Mean(name="kl_loss")

    @property
    def metrics(self):
        return [self.total_loss_tracker, self.reconstruction_loss_tracker,
                self.kl_loss_tracker]

    def train_step(self, data):
        with tf.GradientTape() as tape:
            z_mean, z_log_var, z = self.encoder(data)
            reconstruction = self.decoder(z)
            # binary_crossentropy averages over the last axis: give every pixel its own
            # axis so that the sum below is over the 784 pixels (the example's images are
            # (28, 28, 1) for the same reason).
            reconstruction_loss = ops.mean(ops.sum(keras.losses.binary_crossentropy(
                data[..., None], reconstruction[..., None]), axis=1))
            kl_loss = -0.5 * (1 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var))
            kl_loss = ops.mean(ops.sum(kl_loss, axis=1))
            total_loss = reconstruction_loss + kl_loss
        grads = tape.gradient(total_loss, self.trainable_weights)
        self.optimizer.apply_gradients(zip(grads, self.trainable_weights, strict=True))
        self.total_loss_tracker.update_state(total_loss)
        self.reconstruction_loss_tracker.update_state(reconstruction_loss)
        self.kl_loss_tracker.update_state(kl_loss)
        return {"loss": self.total_loss_tracker.result(),
                "reconstruction_loss": self.reconstruction_loss_tracker.result(),
                "kl_loss": self.kl_loss_tracker.result()}


# ------------------------------------------------------------------ the arithmetic floor
def floor_epoch(x, batch_size, learning_rate=1e-3, seed=0):
    """The bare compiled epoch described in the module docstring. Returns ``run(seed) ->
    final mean -ELBO`` (nats); every call starts from the same weights and a fresh Adam
    state, like the timed epochs of the models."""
    rng = np.random.default_rng(seed)
    sizes = [(INPUT_DIM, HIDDEN), (HIDDEN, 2 * LATENT_DIM), (LATENT_DIM, HIDDEN),
             (HIDDEN, INPUT_DIM)]
    initial = []
    for fan_in, fan_out in sizes:      # Glorot-uniform kernels and zero biases, as Dense
        limit = np.sqrt(6.0 / (fan_in + fan_out))
        initial += [rng.uniform(-limit, limit, (fan_in, fan_out)).astype("float32"),
                    np.zeros(fan_out, "float32")]
    params = [tf.Variable(p) for p in initial]
    moments = [tf.Variable(tf.zeros_like(p)) for p in initial]
    second = [tf.Variable(tf.zeros_like(p)) for p in initial]
    rows = tf.constant(x)
    beta_1, beta_2, epsilon = 0.9, 0.999, 1e-7

    @tf.function(input_signature=[tf.TensorSpec((), tf.int32), tf.TensorSpec((2,), tf.int32)])
    def run(num_rows, seed):
        order = tf.random.experimental.stateless_shuffle(tf.range(num_rows), seed)
        num_batches = (num_rows + batch_size - 1) // batch_size
        totals = tf.zeros(4)                   # -bound, elbo, reconstruction, kl
        for k in tf.range(num_batches):
            x_batch = tf.gather(rows, order[k * batch_size:(k + 1) * batch_size])
            with tf.GradientTape() as tape:
                W1, b1, W2, b2, W3, b3, W4, b4 = params
                out = tf.matmul(tf.nn.relu(tf.matmul(x_batch, W1) + b1), W2) + b2
                mean, log_var = tf.split(out, 2, axis=-1)
                log_var = tf.clip_by_value(log_var, -12.0, 8.0)
                eps = tf.random.stateless_normal(tf.shape(mean),
                                                 tf.random.experimental.stateless_fold_in(seed, k))
                z = mean + tf.exp(0.5 * log_var) * eps
                logits = tf.matmul(tf.nn.relu(tf.matmul(z, W3) + b3), W4) + b4
                reconstruction = tf.reduce_sum(x_batch * logits - tf.nn.softplus(logits), -1)
                kl = 0.5 * tf.reduce_sum(tf.square(mean) + tf.exp(log_var) - log_var - 1.0, -1)
                loss = -tf.reduce_mean(reconstruction - kl)
            grads = tape.gradient(loss, params)
            t = tf.cast(k + 1, tf.float32)
            step = learning_rate * tf.sqrt(1.0 - beta_2**t) / (1.0 - beta_1**t)
            for p, g, m, v in zip(params, grads, moments, second, strict=True):
                m.assign_add((g - m) * (1.0 - beta_1))
                v.assign_add((tf.square(g) - v) * (1.0 - beta_2))
                p.assign_sub(step * m / (tf.sqrt(v) + epsilon))
            totals += tf.stack([loss, -loss, tf.reduce_mean(reconstruction),
                                tf.reduce_mean(kl)])
        return totals[0] / tf.cast(num_batches, tf.float32)

    def epoch(seed_value):
        for variable, value in zip(params, initial, strict=True):
            variable.assign(value)
        for slot in moments + second:
            slot.assign(tf.zeros_like(slot))
        return float(run(tf.constant(len(x)), tf.constant([seed_value, 1])))

    run(tf.constant(4 * batch_size), tf.constant([0, 0]))  # traces
    return epoch


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--warmup-batches", type=int, default=4)
    parser.add_argument("--loss-tolerance", type=float, default=15.0,
                        help="largest allowed gap between the two final losses (nats)")
    args = parser.parse_args()
    bs = args.batch_size

    x = data.mnist_splits()["x_train"]
    print(f"data: {x.shape} binarized MNIST; VAE {INPUT_DIM}-{HIDDEN}-{LATENT_DIM}, relu, "
          f"batch {bs}, Adam 1e-3, Bernoulli likelihood, one epoch; {args.repeats} repeats")

    def fit_ours(model, **kwargs):
        return lambda a: model.fit(a, batch_size=bs, epochs=1, verbose=0, **kwargs)

    def peer_model():
        return KerasIoVAE(keras_io_encoder(), keras_io_decoder())

    ours_model = VAE(INPUT_DIM, LATENT_DIM, (HIDDEN,), activation="relu", seed=0)
    peer = peer_model()
    fed = peer_model()
    unguarded = VAE(INPUT_DIM, LATENT_DIM, (HIDDEN,), activation="relu", seed=0)
    for model in (ours_model, peer, fed, unguarded):
        model.compile(optimizer=keras.optimizers.Adam(1e-3))
    contenders = [
        Contender("course_lib", ours_model, fit_ours(ours_model), "negative_bound"),
        Contender("keras_io", peer, lambda a: peer.fit(a, epochs=1, batch_size=bs, verbose=0),
                  "loss"),
        # The variants that isolate the differences (extra information, not in the ratio).
        Contender("keras_io + array_dataset", fed,
                  lambda a: fed.fit(array_dataset(a, bs, seed=0), epochs=1, verbose=0), "loss"),
    ]
    contenders.append(Contender("course_lib, guard=False", unguarded,
                                fit_ours(unguarded, guard=False), "negative_bound"))

    # A partial last batch in the warm-up, so the array adapter's last batch is traced too.
    warm = x[:args.warmup_batches * bs + bs // 2]
    for c in contenders:
        print(f"{c.name} warm-up (tracing + {args.warmup_batches} batches, not counted): "
              f"{c.warm_up(warm):.2f} s")
    floor = floor_epoch(x, bs)
    floor_times, floor_losses = [], []
    for repeat in range(args.repeats):
        for c in contenders:
            c.timed_epoch(x)
        loss, elapsed = timed(floor, repeat)
        floor_losses.append(loss)
        floor_times.append(elapsed)

    width = max(len(c.name) for c in contenders)
    ours, peer_c, fed_c, unguarded_c = contenders
    ours_t, peer_t = ours.report(width), peer_c.report(width)
    print("extra information (not in the ratio):")
    fed_t, unguarded_t = fed_c.report(width), unguarded_c.report(width)

    ours_loss, peer_loss = ours.losses[-1], peer_c.losses[-1]
    gap = abs(ours_loss - peer_loss)
    print(f"check: final train loss (-ELBO) course_lib {ours_loss:.2f}, keras_io "
          f"{peer_loss:.2f}, gap {gap:.2f} nats (allowed {args.loss_tolerance:g})")
    assert gap <= args.loss_tolerance, "the two models did not do the same work"

    print(f"what differs: course_lib runs steps_per_execution={ours.model.steps_per_execution} "
          "(the library's default) where keras_io runs Keras' default of 1; course_lib feeds "
          "the array through course_lib.training.array_dataset (the array stored once as a "
          "tensor, one tf.gather of shuffled indices per batch, every row trained: 391 steps, "
          "the last one partial, as keras_io) where keras_io goes through Keras' array "
          "adapter; course_lib computes the Bernoulli log-likelihood from logits "
          "(x * logits - softplus(logits)) where keras_io applies a sigmoid and a clipped "
          "binary cross-entropy; course_lib's fit validates the array (shape, finite, in "
          "[0, 1]) and adds a DivergenceGuard callback (metrics checked after every executed "
          "chunk of batches, weights every 10 chunks).")

    def cpu(c):
        return statistics.median(c.cpu_times)

    print(f"input pipeline: keras_io fed by array_dataset / on the raw array = "
          f"{fed_t / peer_t:.3f} wall, {cpu(fed_c) / cpu(peer_c):.3f} CPU")
    print(f"guard: course_lib with / without DivergenceGuard = {ours_t / unguarded_t:.3f} "
          f"wall, {cpu(ours) / cpu(unguarded_c):.3f} CPU")
    print(f"same comparison in CPU time: course_lib/keras_io = {cpu(ours) / cpu(peer_c):.3f} "
          "(indicative: other processes may share the CPUs)")
    floor_t = statistics.median(floor_times)
    print(f"floor's final train loss {floor_losses[-1]:.2f} nats (the same work)")
    print(f"floor (bare compiled loop, same matmuls): median {floor_t:.2f} s, min "
          f"{min(floor_times):.2f} s (runs: {', '.join(f'{t:.2f}' for t in floor_times)}); "
          f"ours/floor = {ours_t / floor_t:.3f}")
    print(f"ratio course_lib/keras_io = {ours_t / peer_t:.3f}")


if __name__ == "__main__":
    main()
