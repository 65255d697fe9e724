"""One MNIST epoch of a small DCGAN: course_lib's GAN against the keras.io DCGAN example's
plain train_step on the same networks, in the same run; and the Parzen-window evaluation
against scikit-learn's KernelDensity.

    python benchmarks/bench_gan.py [--images 20000] [--repeats 2] [--parzen 10000]
                                   [--parzen-only]

About five minutes on 2 cores with the defaults. Part 1, training (``--images`` MNIST
training images scaled to [-1, 1], batch 64, noise 100, Adam(2e-4, beta_1=0.5) for both
players, the networks of ``course_lib.adversarial.dcgan_generator`` /
``dcgan_discriminator`` with filters (64, 32) / (32, 64)), three contenders, interleaved,
each timed ``--repeats`` times (the fastest reported), after one warm-up epoch on a few
batches that traces each:

- course_lib: ``GAN(..., loss="non_saturating")``, ``compile`` with the library's default
  ``steps_per_execution``, ``fit(x, batch_size=64, epochs=1)``. Its step generates G(z) once:
  the generator's update reuses the samples of the discriminator's update (G is unchanged
  by D's update), as the DCGAN authors' code does, and runs them through the updated D.
- the peer: the keras.io DCGAN example's ``keras.Model`` (written out below from its
  description): one discriminator step on the concatenated real and generated batch with
  noisy labels and binary cross-entropy, one generator step with "misleading" labels on
  freshly generated samples (G runs forward twice per step), fed by
  ``tf.data.Dataset.from_tensor_slices(x).shuffle(...).batch(64)``, compiled as the example
  does (``steps_per_execution`` 1). The example's own networks have no batch normalization,
  so its calls without ``training=True`` cost nothing there; on these networks, whose
  generator has BatchNorm, a Keras 3 ``train_step`` that omits it runs that BatchNorm in
  inference mode (the moving statistics never move), which skips the batch statistics and
  trains another model. The peer therefore passes ``training=True``, as ours and the floor do.
- the arithmetic floor: course_lib's two updates (discriminator on real and generated
  images, then generator on the same generated images through the updated discriminator,
  Adam) as one ``tf.function`` holding one
  ``tf.range`` loop over the epoch's batches, with no Keras training loop, callbacks or
  metrics.

Part 2, Parzen windows (Goodfellow et al. 2014): the mean log-likelihood of ``--parzen``
test images under a window of ``--parzen`` generated samples (sigma 0.2), by
``course_lib.evaluation.parzen_log_likelihoods`` and by ``KernelDensity(bandwidth=sigma)
.score_samples``. Both are checked on the first 200 test images against a direct float64
NumPy log-sum-exp over every (image, sample) pair; scikit-learn's tree-based estimate
departs from it in 784 dimensions (scikit-learn issues #7492 and #27186), which the check
line shows.

Ends with ``ratio course_lib/keras.io = <value>`` (training; lower is better); the Parzen
ratio is printed on the line before it.
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from scipy.special import logsumexp  # noqa: E402
from sklearn.neighbors import KernelDensity  # noqa: E402
from timing import timed  # noqa: E402

from course_lib import data  # noqa: E402
from course_lib.adversarial import GAN, dcgan_discriminator, dcgan_generator  # noqa: E402
from course_lib.evaluation import parzen_log_likelihoods  # noqa: E402

BATCH, LATENT = 64, 100


def networks(seed=0):
    keras.utils.set_random_seed(seed)
    return (dcgan_generator(LATENT, filters=(64, 32)),
            dcgan_discriminator(filters=(32, 64)))


def adam():
    return keras.optimizers.Adam(2e-4, beta_1=0.5)


class KerasIoGAN(keras.Model):
    """The keras.io DCGAN example's model: its train_step as the example describes it."""

    def __init__(self, discriminator, generator):
        super().__init__()
        self.discriminator, self.generator = discriminator, generator
        self.seed_generator = keras.random.SeedGenerator(1337)

    def compile(self, d_optimizer, g_optimizer):
        super().compile()
        self.d_optimizer, self.g_optimizer = d_optimizer, g_optimizer
        self.loss_fn = keras.losses.BinaryCrossentropy(from_logits=True)
        self.d_loss_metric = keras.metrics.Mean(name="d_loss")
        self.g_loss_metric = keras.metrics.Mean(name="g_loss")

    @property
    def metrics(self):
        return [self.d_loss_metric, self.g_loss_metric]

    def train_step(self, real_images):
        batch_size = tf.shape(real_images)[0]
        z = keras.random.normal((batch_size, LATENT), seed=self.seed_generator)
        generated = self.generator(z, training=True)
        combined = tf.concat([generated, real_images], axis=0)
        labels = tf.concat([tf.ones((batch_size, 1)), tf.zeros((batch_size, 1))], axis=0)
        labels += 0.05 * keras.random.uniform(tf.shape(labels), seed=self.seed_generator)
        with tf.GradientTape() as tape:
            d_loss = self.loss_fn(labels, self.discriminator(combined, training=True))
        grads = tape.gradient(d_loss, self.discriminator.trainable_weights)
        self.d_optimizer.apply_gradients(zip(grads, self.discriminator.trainable_weights,
                                             strict=True))
        z = keras.random.normal((batch_size, LATENT), seed=self.seed_generator)
        with tf.GradientTape() as tape:
            g_loss = self.loss_fn(tf.zeros((batch_size, 1)), self.discriminator(
                self.generator(z, training=True), training=True))
        grads = tape.gradient(g_loss, self.generator.trainable_weights)
        self.g_optimizer.apply_gradients(zip(grads, self.generator.trainable_weights, strict=True))
        self.d_loss_metric.update_state(d_loss)
        self.g_loss_metric.update_state(g_loss)
        return {"d_loss": self.d_loss_metric.result(), "g_loss": self.g_loss_metric.result()}


def floor_epoch(x):
    """The bare compiled epoch described in the module docstring: ``run(seed)``."""
    generator, discriminator = networks()
    g_opt, d_opt = adam(), adam()
    g_opt.build(generator.trainable_variables)
    d_opt.build(discriminator.trainable_variables)
    rows = tf.constant(x)

    @tf.function(input_signature=[tf.TensorSpec((2,), tf.int32)])
    def run(seed):
        order = tf.random.experimental.stateless_shuffle(tf.range(tf.shape(rows)[0]), seed)
        num_batches = (tf.shape(rows)[0] + BATCH - 1) // BATCH   # the last, partial one too
        total = tf.constant(0.0)
        for k in tf.range(num_batches):
            real = tf.gather(rows, order[k * BATCH:(k + 1) * BATCH])
            step = tf.random.experimental.stateless_fold_in(seed, k)
            z = tf.random.stateless_normal((tf.shape(real)[0], LATENT), step)
            with tf.GradientTape() as g_tape:
                fake = generator(z, training=True)
            with tf.GradientTape() as tape:
                real_logits = discriminator(real, training=True)
                fake_logits = discriminator(tf.stop_gradient(fake), training=True)
                d_loss = (tf.reduce_mean(tf.nn.softplus(-real_logits))
                          + tf.reduce_mean(tf.nn.softplus(fake_logits)))
            d_vars = discriminator.trainable_variables
            d_opt.apply(tape.gradient(d_loss, d_vars), d_vars)
            with g_tape:                  # G's step on the same G(z), through the new D
                g_loss = tf.reduce_mean(tf.nn.softplus(-discriminator(fake, training=True)))
            g_vars = generator.trainable_variables
            g_opt.apply(g_tape.gradient(g_loss, g_vars), g_vars)
            total += d_loss
        return total / tf.cast(num_batches, tf.float32)

    return run


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--parzen", type=int, default=10_000)
    parser.add_argument("--parzen-only", action="store_true",
                        help="skip the timed epochs (train one epoch, then part 2)")
    args = parser.parse_args()
    splits = data.mnist_splits(binarization="none")
    x = 2.0 * splits["x_train"][:args.images] - 1.0
    print(f"DCGAN on {len(x)} MNIST images in [-1, 1], batch {BATCH}, noise {LATENT}")

    generator, discriminator = networks()
    ours = GAN(generator, discriminator, latent_dim=LATENT, data_range=(-1.0, 1.0), seed=0)
    ours.compile(generator_optimizer=adam(), discriminator_optimizer=adam())
    ours.fit(x[:BATCH * 40], batch_size=BATCH, epochs=1, verbose=0)       # traces
    if args.parzen_only:
        ours.fit(x, batch_size=BATCH, epochs=1, verbose=0)
        parzen(ours, splits, args.parzen)
        return
    generator, discriminator = networks()
    peer = KerasIoGAN(discriminator, generator)
    peer.compile(d_optimizer=adam(), g_optimizer=adam())
    peer_data = tf.data.Dataset.from_tensor_slices(x).shuffle(1024).batch(BATCH)
    peer.fit(peer_data.take(40), epochs=1, verbose=0)                      # traces
    floor = floor_epoch(x)
    floor(tf.constant([0, 1]))                                             # traces
    times = {"course_lib": [], "keras.io": [], "floor": []}
    for repeat in range(args.repeats):
        history, elapsed = timed(ours.fit, x, batch_size=BATCH, epochs=1, verbose=0)
        times["course_lib"].append(elapsed)
        _, elapsed = timed(peer.fit, peer_data, epochs=1, verbose=0)
        times["keras.io"].append(elapsed)
        _, elapsed = timed(lambda r=repeat: float(floor(tf.constant([r, 2]))))
        times["floor"].append(elapsed)
    best = {name: min(t) for name, t in times.items()}
    for name, t in times.items():
        print(f"{name:10s} epoch: {best[name]:7.2f} s (runs: "
              f"{', '.join(f'{s:.2f}' for s in t)})")
    print(f"check: course_lib discriminator loss {history.history['discriminator_loss'][-1]:.3f} "
          "(finite)")
    moved = {name: bool(np.any(model.generator.get_layer("generator_bn0").moving_mean.numpy()))
             for name, model in (("course_lib", ours), ("keras.io", peer))}
    print(f"check: the generator's BatchNorm trained in batch mode (moving mean moved): {moved}")
    if not all(moved.values()):
        raise SystemExit("a contender ran the generator's BatchNorm in inference mode")
    print(f"ours/floor = {best['course_lib'] / best['floor']:.3f}; "
          f"keras.io/floor = {best['keras.io'] / best['floor']:.3f}")

    parzen(ours, splits, args.parzen)
    print(f"ratio course_lib/keras.io = {best['course_lib'] / best['keras.io']:.3f}")


def parzen(ours, splits, count):
    """Part 2 (module docstring)."""
    samples = ours.sample(count, seed=0)
    test = 2.0 * splits["x_test"][:count] - 1.0
    sigma = 0.2
    mine, ours_parzen = timed(parzen_log_likelihoods, samples, test, sigma, verbose=0)
    theirs, peer_parzen = timed(lambda: KernelDensity(bandwidth=sigma).fit(
        samples.astype(np.float64)).score_samples(test.astype(np.float64)))
    centres = samples.astype(np.float64)
    squared = np.concatenate([      # differences, not the expanded square: an independent form
        ((test[i:i + 5, None, :].astype(np.float64) - centres[None]) ** 2).sum(-1)
        for i in range(0, 200, 5)])
    direct = (logsumexp(-squared / (2 * sigma**2), axis=1) - np.log(len(samples))
              - 0.5 * samples.shape[1] * np.log(2 * np.pi * sigma**2))
    print(f"parzen ({count} samples x {count} test images, sigma {sigma}): "
          f"course_lib {ours_parzen:.2f} s, scikit-learn KernelDensity {peer_parzen:.2f} s; "
          f"mean {mine.mean():.2f} (scikit-learn {theirs.mean():.2f})")
    print(f"check against a direct log-sum-exp on 200 test images: max |difference| "
          f"course_lib {np.abs(mine[:200] - direct).max():.2e}, "
          f"scikit-learn {np.abs(theirs[:200] - direct).max():.2e}")
    print(f"parzen ratio course_lib/sklearn = {ours_parzen / peer_parzen:.3f}")


if __name__ == "__main__":
    main()
