"""One epoch of the 28x28 CycleGAN: course_lib's CycleGAN against the keras.io CycleGAN
example's plain train_step on the same generators and discriminators, in the same run.

    python benchmarks/bench_cyclegan.py [--images 4096] [--repeats 2]

About five minutes on 2 cores with the defaults. Domain X is ``--images`` MNIST training
images, domain Y the 1,297 training images of ``data.digits_28x28`` repeated to the same
count (so that both contenders' epochs have the same number of batches), both in [-1, 1],
batch 32; the networks of ``course_lib.translation.cyclegan_networks`` (the course's sizes),
Adam(2e-4, beta_1=0.5) for every optimizer, lambda = 10, lambda_id = 0.5. Contenders,
interleaved, each timed ``--repeats`` times (the fastest reported), after a warm-up on a
few batches that traces each:

- course_lib: ``CycleGAN(...)``, ``compile`` with the library's defaults (Keras' ``"auto"``:
  no XLA on a CPU; the library's ``steps_per_execution``), ``fit(x, y, batch_size=32,
  epochs=1)``: image histories of 50, input checks, the divergence guard, five metrics.
- the peer: the keras.io CycleGAN example's ``keras.Model`` (written out below from its
  description): one persistent tape over the six generator calls and four discriminator
  calls, four gradients, four Adam optimizers, mean squared error and mean absolute error
  losses, no image history, fed by ``tf.data.Dataset.zip`` of two ``from_tensor_slices(...)
  .shuffle(...).batch(32)`` pipelines, compiled as the example does (Keras' defaults: no XLA
  on a CPU, ``steps_per_execution`` 1). Its objective is not quite the paper's: each
  generator's gradient comes from its own total loss, so G gets none from the X cycle
  F(G(x)), which saves the backward pass through F into G that the paper's objective needs.
- the arithmetic floor: course_lib's update (the generators' step on Eq. 8.4, the
  discriminators' step on the same pass's images, Adam) as one ``tf.function`` holding one
  ``tf.range`` loop over the epoch's batches, with no Keras training loop, history,
  callbacks or metrics.

Ends with ``ratio course_lib/keras.io = <value>`` (lower is better).
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from timing import timed  # noqa: E402

from course_lib import data  # noqa: E402
from course_lib.translation import CycleGAN, cyclegan_networks, losses  # noqa: E402

BATCH, CYCLE, IDENTITY = 32, 10.0, 0.5


def networks(seed=0):
    keras.utils.set_random_seed(seed)
    return cyclegan_networks((28, 28, 1))


def adam():
    return keras.optimizers.Adam(2e-4, beta_1=0.5)


class KerasIoCycleGAN(keras.Model):
    """The keras.io CycleGAN example's model: its train_step as the example describes it."""

    def __init__(self, generator_G, generator_F, discriminator_X, discriminator_Y):
        super().__init__()
        self.gen_G, self.gen_F = generator_G, generator_F
        self.disc_X, self.disc_Y = discriminator_X, discriminator_Y

    def compile(self, gen_G_optimizer, gen_F_optimizer, disc_X_optimizer, disc_Y_optimizer,
                **kwargs):
        super().compile(**kwargs)
        self.gen_G_optimizer, self.gen_F_optimizer = gen_G_optimizer, gen_F_optimizer
        self.disc_X_optimizer, self.disc_Y_optimizer = disc_X_optimizer, disc_Y_optimizer
        self.adv_loss_fn = keras.losses.MeanSquaredError()
        self.cycle_loss_fn = keras.losses.MeanAbsoluteError()
        self.identity_loss_fn = keras.losses.MeanAbsoluteError()

    def generator_loss_fn(self, fake):
        return self.adv_loss_fn(tf.ones_like(fake), fake)

    def discriminator_loss_fn(self, real, fake):
        return (self.adv_loss_fn(tf.ones_like(real), real)
                + self.adv_loss_fn(tf.zeros_like(fake), fake)) * 0.5

    def train_step(self, batch_data):
        real_x, real_y = batch_data
        with tf.GradientTape(persistent=True) as tape:
            fake_y = self.gen_G(real_x, training=True)
            fake_x = self.gen_F(real_y, training=True)
            cycled_x = self.gen_F(fake_y, training=True)
            cycled_y = self.gen_G(fake_x, training=True)
            same_x = self.gen_F(real_x, training=True)
            same_y = self.gen_G(real_y, training=True)
            disc_real_x = self.disc_X(real_x, training=True)
            disc_fake_x = self.disc_X(fake_x, training=True)
            disc_real_y = self.disc_Y(real_y, training=True)
            disc_fake_y = self.disc_Y(fake_y, training=True)
            gen_G_loss = self.generator_loss_fn(disc_fake_y)
            gen_F_loss = self.generator_loss_fn(disc_fake_x)
            cycle_loss_G = self.cycle_loss_fn(real_y, cycled_y) * CYCLE
            cycle_loss_F = self.cycle_loss_fn(real_x, cycled_x) * CYCLE
            id_loss_G = self.identity_loss_fn(real_y, same_y) * CYCLE * IDENTITY
            id_loss_F = self.identity_loss_fn(real_x, same_x) * CYCLE * IDENTITY
            total_loss_G = gen_G_loss + cycle_loss_G + id_loss_G
            total_loss_F = gen_F_loss + cycle_loss_F + id_loss_F
            disc_X_loss = self.discriminator_loss_fn(disc_real_x, disc_fake_x)
            disc_Y_loss = self.discriminator_loss_fn(disc_real_y, disc_fake_y)
        for loss, network, optimizer in (
                (total_loss_G, self.gen_G, self.gen_G_optimizer),
                (total_loss_F, self.gen_F, self.gen_F_optimizer),
                (disc_X_loss, self.disc_X, self.disc_X_optimizer),
                (disc_Y_loss, self.disc_Y, self.disc_Y_optimizer)):
            grads = tape.gradient(loss, network.trainable_variables)
            optimizer.apply_gradients(zip(grads, network.trainable_variables, strict=True))
        return {"G_loss": total_loss_G, "F_loss": total_loss_F, "D_X_loss": disc_X_loss,
                "D_Y_loss": disc_Y_loss}


def peer_model(jit_compile):
    nets = networks()
    peer = KerasIoCycleGAN(nets["generator_xy"], nets["generator_yx"], nets["discriminator_x"],
                           nets["discriminator_y"])
    peer.compile(adam(), adam(), adam(), adam(), **({"jit_compile": True} if jit_compile else {}))
    return peer


def floor_epoch(x, y):
    """The bare compiled epoch described in the module docstring: ``run(seed)``."""
    nets = networks()
    g_vars = nets["generator_xy"].trainable_variables + nets["generator_yx"].trainable_variables
    d_vars = (nets["discriminator_x"].trainable_variables
              + nets["discriminator_y"].trainable_variables)
    g_opt, d_opt = adam(), adam()
    g_opt.build(g_vars)
    d_opt.build(d_vars)
    xs, ys = tf.constant(x), tf.constant(y)
    G, F = nets["generator_xy"], nets["generator_yx"]
    D_x, D_y = nets["discriminator_x"], nets["discriminator_y"]

    @tf.function(input_signature=[tf.TensorSpec((2,), tf.int32)])
    def run(seed):
        order = tf.random.experimental.stateless_shuffle(tf.range(tf.shape(xs)[0]), seed)
        num_batches = tf.shape(xs)[0] // BATCH
        total = tf.constant(0.0)
        for k in tf.range(num_batches):
            rows = order[k * BATCH:(k + 1) * BATCH]
            a, b = tf.gather(xs, rows), tf.gather(ys, rows)
            with tf.GradientTape() as tape:
                g_out = G(tf.concat([a, b], 0), training=True)
                f_out = F(tf.concat([b, a], 0), training=True)
                fake_b, same_b, fake_a, same_a = (g_out[:BATCH], g_out[BATCH:], f_out[:BATCH],
                                                  f_out[BATCH:])
                loss = (losses.generator_loss(D_y(fake_b, training=True))
                        + losses.generator_loss(D_x(fake_a, training=True))
                        + CYCLE * losses.cycle_loss(a, F(fake_b, training=True), b,
                                                    G(fake_a, training=True))
                        + CYCLE * IDENTITY * losses.identity_loss(a, same_a, b, same_b))
            g_opt.apply(tape.gradient(loss, g_vars), g_vars)
            with tf.GradientTape() as tape:
                out_a = D_x(tf.concat([a, fake_a], 0), training=True)
                out_b = D_y(tf.concat([b, fake_b], 0), training=True)
                d_loss = (losses.discriminator_loss(out_a[:BATCH], out_a[BATCH:])
                          + losses.discriminator_loss(out_b[:BATCH], out_b[BATCH:]))
            d_opt.apply(tape.gradient(d_loss, d_vars), d_vars)
            total += d_loss
        return total / tf.cast(num_batches, tf.float32)

    return run


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=4096)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    count = args.images - args.images % BATCH
    mnist = data.mnist_splits(binarization="none", flatten=False)
    x = 2.0 * mnist["x_train"][:count, ..., None] - 1
    digits = 2.0 * data.digits_28x28()["x_train"][..., None] - 1
    y = np.resize(digits, x.shape).astype(np.float32)
    print(f"CycleGAN 28x28: {count} MNIST images (X) and {len(digits)} digits_28x28 images "
          f"repeated to {count} (Y), batch {BATCH}: {count // BATCH} steps per epoch")

    ours = CycleGAN(**networks(), seed=0)
    ours.compile(generator_optimizer=adam(), discriminator_optimizer=adam())
    ours.fit(x[:BATCH * 32], y[:BATCH * 32], batch_size=BATCH, epochs=1, verbose=0)  # traces
    peers, peer_data = {}, {}
    for name, jit in (("keras.io", False),):
        peers[name] = peer_model(jit)
        peer_data[name] = tf.data.Dataset.zip(
            tf.data.Dataset.from_tensor_slices(x).shuffle(256).batch(BATCH),
            tf.data.Dataset.from_tensor_slices(y).shuffle(256).batch(BATCH))
        peers[name].fit(peer_data[name].take(4), epochs=1, verbose=0)              # traces
    floor = floor_epoch(x, y)
    floor(tf.constant([0, 1]))                                                     # traces
    times = {"course_lib": [], "keras.io": [], "floor": []}
    for repeat in range(args.repeats):
        history, elapsed = timed(ours.fit, x, y, batch_size=BATCH, epochs=1, verbose=0)
        times["course_lib"].append(elapsed)
        for name, peer in peers.items():
            _, elapsed = timed(peer.fit, peer_data[name], epochs=1, verbose=0)
            times[name].append(elapsed)
        _, elapsed = timed(lambda r=repeat: float(floor(tf.constant([r, 2]))))
        times["floor"].append(elapsed)
    best = {name: min(t) for name, t in times.items()}
    for name, t in times.items():
        print(f"{name:13s} epoch: {best[name]:7.2f} s (runs: "
              f"{', '.join(f'{s:.2f}' for s in t)})")
    print(f"check: course_lib cycle loss {history.history['cycle_loss'][-1]:.3f}, "
          f"discriminator loss {history.history['discriminator_loss'][-1]:.3f} (finite)")
    print(f"ours/floor = {best['course_lib'] / best['floor']:.3f}; "
          f"keras.io/floor = {best['keras.io'] / best['floor']:.3f}")
    print(f"ratio course_lib/keras.io = {best['course_lib'] / best['keras.io']:.3f}")


if __name__ == "__main__":
    main()
