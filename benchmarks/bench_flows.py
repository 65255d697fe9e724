"""One MNIST epoch of a 5-layer MAF: course_lib's FlowModel against the same MAF built the
way TensorFlow Probability documents it (``tfb.AutoregressiveNetwork`` under tf-keras),
interleaved in the same run.

    python benchmarks/bench_flows.py [--repeats 3]

About ten minutes on 2 cores (hidden 512). Both flows: 5 MAF layers on the 784 dimensions
of MNIST in the MAF paper's logit space (dequantised pixels, alpha = 1e-6), each layer's
MADE with one hidden layer of ``--hidden`` relu units and two outputs per dimension (shift
and log-scale), the ordering reversed between layers, a standard normal base, -log p(x)
minimised by Adam 1e-4, batch 100, one epoch of ``fit`` on 50,000 rows.

- course_lib: ``FlowModel(architectures.maf(784, num_layers=5, hidden_units=(H,),
  act_norm=False))``, the MADEs written in Keras 3 (``course_lib.flows.made.MADE``),
  ``fit`` on the array.
- tfp_docs: the recipe of ``tfb.AutoregressiveNetwork``'s docstring: each layer
  ``tfb.MaskedAutoregressiveFlow(tfb.AutoregressiveNetwork(params=2, hidden_units=[H],
  activation="relu"))``, ``tfb.Permute`` (reversal) between layers, a
  ``tfd.TransformedDistribution`` over ``tfd.Sample(tfd.Normal(0, 1), [784])``, and a
  functional ``tf_keras.Model(x, distribution.log_prob(x))`` compiled with
  ``loss=lambda _, log_prob: -log_prob`` and fitted with ``y`` of shape (n, 0).

Two changes to the documented recipe, so that both flows do the same work: the log-scale is
soft-clamped, 5 tanh(s / 5), and each MADE's output layer starts at zero (every layer starts
as the identity), as in course_lib's MAF. As documented (Glorot-uniform output layers, an
unbounded log-scale), the untrained flow gives log p(x) of about -1e21 on these data and
the first epoch ends in a NaN loss. What still differs: TFP spaces its hidden degrees
evenly where course_lib cycles them, and reverses the order with ``tfb.Permute`` where
course_lib reverses the MADE's ordering. The check below asks that the final losses agree
within ``--loss-tolerance`` (a fraction of course_lib's).

The arithmetic floor: the same epoch as one ``tf.function`` holding one ``tf.range`` loop
(no Keras, no TFP, no callbacks, no optimizer object): a per-epoch permutation, per batch
one ``tf.gather``, the five MADEs as plain masked matmuls (the masks multiplied into the
kernels, as both contenders do), z = (x - mu) exp(-alpha) layer by layer, the standard
normal log-density and the log-determinants, the gradients from a ``tf.GradientTape`` and
Adam's update written out. ``ours/floor`` is the price of everything else.

Each contender is warmed up once (tracing, not counted); then, alternating, ``--repeats``
timed epochs of each, every one from the same initial weights and a fresh Adam state. Prints
the median epoch time and final training loss of each, the floor, and ends with
``ratio course_lib/tfp_docs = <value>`` (median ours / median peer; lower is better).
Timings are indicative: other processes may share the CPUs.
"""

import argparse
import os
import statistics

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tensorflow_probability as tfp  # noqa: E402
import tf_keras  # noqa: E402
from contenders import Contender  # noqa: E402
from timing import timed  # noqa: E402

from course_lib import data  # noqa: E402
from course_lib.flows import FlowModel, architectures, pixels  # noqa: E402
from course_lib.flows.made import input_degrees, made_masks  # noqa: E402

tfb, tfd = tfp.bijectors, tfp.distributions
DIM, NUM_LAYERS, LEARNING_RATE = 784, 5, 1e-4


def clamped(made):
    """The documented network with course_lib's soft clamp on the log-scale added: without
    it the recipe diverges (NaN loss) within the first epoch in logit space here."""
    def shift_and_log_scale(y):
        shift, log_scale = tf.unstack(made(y), num=2, axis=-1)
        return shift, 5.0 * tf.tanh(log_scale / 5.0)
    return shift_and_log_scale


def tfp_docs_maf(hidden):
    """The MAF the way TFP's documentation builds and trains it (tf-keras)."""
    layers = []
    for i in range(NUM_LAYERS):
        made = tfb.AutoregressiveNetwork(params=2, hidden_units=[hidden], activation="relu")
        layers.append(tfb.MaskedAutoregressiveFlow(shift_and_log_scale_fn=clamped(made)))
        if i < NUM_LAYERS - 1:
            layers.append(tfb.Permute(permutation=list(range(DIM))[::-1]))
    distribution = tfd.TransformedDistribution(
        distribution=tfd.Sample(tfd.Normal(loc=0.0, scale=1.0), sample_shape=[DIM]),
        bijector=tfb.Chain(list(reversed(layers))))
    x_ = tf_keras.layers.Input(shape=(DIM,), dtype=tf.float32)
    model = tf_keras.Model(x_, distribution.log_prob(x_))
    model.compile(optimizer=tf_keras.optimizers.Adam(LEARNING_RATE),
                  loss=lambda _, log_prob: -log_prob)
    for variable in model.trainable_variables:     # the output layers (2 D wide) start at 0
        if variable.shape[-1] == 2 * DIM:
            variable.assign(tf.zeros_like(variable))
    return model


# ------------------------------------------------------------------ the arithmetic floor
def floor_epoch(x, batch_size, hidden, seed=0):
    """The bare compiled epoch of the module docstring: ``run(seed) -> final mean -log p``."""
    rng = np.random.default_rng(seed)
    initial, masks = [], []
    for i in range(NUM_LAYERS):
        order = ("natural", "reversed")[i % 2]
        into_hidden, into_output = made_masks(input_degrees(DIM, order), (hidden,))
        masks += [into_hidden, np.repeat(into_output, 2, axis=1)]
        limit = np.sqrt(6.0 / (DIM + hidden))
        initial += [rng.uniform(-limit, limit, (DIM, hidden)).astype("float32"),
                    np.zeros(hidden, "float32"),
                    np.zeros((hidden, 2 * DIM), "float32"), np.zeros(2 * DIM, "float32")]
    params = [tf.Variable(p) for p in initial]
    masks = [tf.constant(m) for m in masks]
    moments = [tf.Variable(tf.zeros_like(p)) for p in initial]
    second = [tf.Variable(tf.zeros_like(p)) for p in initial]
    rows = tf.constant(x)
    beta_1, beta_2, epsilon = 0.9, 0.999, 1e-7
    log_norm = 0.5 * DIM * np.log(2 * np.pi)

    @tf.function(input_signature=[tf.TensorSpec((), tf.int32), tf.TensorSpec((2,), tf.int32)])
    def run(num_rows, seed):
        order = tf.random.experimental.stateless_shuffle(tf.range(num_rows), seed)
        num_batches = (num_rows + batch_size - 1) // batch_size
        total = tf.zeros(())
        for k in tf.range(num_batches):
            h = tf.gather(rows, order[k * batch_size:(k + 1) * batch_size])
            with tf.GradientTape() as tape:
                log_det = tf.zeros(tf.shape(h)[:1])
                for i in reversed(range(NUM_LAYERS)):          # data side towards the base
                    w1, b1, w2, b2 = params[4 * i:4 * i + 4]
                    hidden_units = tf.nn.relu(tf.matmul(h, w1 * masks[2 * i]) + b1)
                    out = tf.reshape(tf.matmul(hidden_units, w2 * masks[2 * i + 1]) + b2,
                                     (-1, DIM, 2))
                    shift, log_scale = out[..., 0], 5.0 * tf.tanh(out[..., 1] / 5.0)
                    h = (h - shift) * tf.exp(-log_scale)
                    log_det -= tf.reduce_sum(log_scale, -1)
                log_p = -0.5 * tf.reduce_sum(tf.square(h), -1) - log_norm + log_det
                loss = -tf.reduce_mean(log_p)
            grads = tape.gradient(loss, params)
            t = tf.cast(k + 1, tf.float32)
            step = LEARNING_RATE * tf.sqrt(1.0 - beta_2**t) / (1.0 - beta_1**t)
            for p, g, m, v in zip(params, grads, moments, second, strict=True):
                m.assign_add((g - m) * (1.0 - beta_1))
                v.assign_add((tf.square(g) - v) * (1.0 - beta_2))
                p.assign_sub(step * m / (tf.sqrt(v) + epsilon))
            total += loss
        return total / tf.cast(num_batches, tf.float32)

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
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--loss-tolerance", type=float, default=0.1,
                        help="largest allowed gap of the final losses, relative")
    args = parser.parse_args()
    bs, hidden = args.batch_size, args.hidden

    grey = data.mnist_splits(binarization="none")["x_train"][:args.rows]
    x = pixels.logit_transform(pixels.dequantize(grey, seed=0))
    print(f"data: {x.shape} MNIST in logit space (alpha 1e-6); MAF({NUM_LAYERS}), MADE "
          f"{DIM}-{hidden}-{2 * DIM}, relu, batch {bs}, Adam {LEARNING_RATE:g}, one epoch; "
          f"{args.repeats} repeats")

    keras.utils.set_random_seed(0)
    ours = FlowModel(architectures.maf(DIM, num_layers=NUM_LAYERS, hidden_units=(hidden,),
                                       act_norm=False), seed=0)
    ours.compile(keras.optimizers.Adam(LEARNING_RATE))
    peer = tfp_docs_maf(hidden)
    no_labels = np.zeros((len(x), 0), "float32")
    contenders = [
        Contender("course_lib", ours,
                  lambda a: ours.fit(a, batch_size=bs, epochs=1, verbose=0),
                  "negative_log_likelihood"),
        Contender("tfp_docs", peer,
                  lambda a: peer.fit(a, no_labels[:len(a)], batch_size=bs, epochs=1,
                                     shuffle=True, verbose=0), "loss"),
    ]
    assert len(ours.trainable_variables) == 4 * NUM_LAYERS
    print(f"variables tracked: course_lib {len(ours.trainable_variables)}, tfp_docs "
          f"{len(peer.trainable_variables)}")
    warm = x[:4 * bs + bs // 2]
    for c in contenders:
        print(f"{c.name} warm-up (tracing + 4 batches, not counted): {c.warm_up(warm):.2f} s")
    floor = floor_epoch(x, bs, hidden)
    floor_times, floor_losses = [], []
    for repeat in range(args.repeats):
        for c in contenders:
            c.timed_epoch(x)
        loss, elapsed = timed(floor, repeat)
        floor_losses.append(loss)
        floor_times.append(elapsed)

    width = max(len(c.name) for c in contenders)
    ours_t, peer_t = (c.report(width) for c in contenders)
    losses = [c.losses[-1] for c in contenders] + [floor_losses[-1]]
    print(f"check: final train losses course_lib {losses[0]:.1f}, tfp_docs {losses[1]:.1f}, "
          f"floor {losses[2]:.1f} nats")
    assert all(np.isfinite(losses)), "a contender diverged"
    assert abs(losses[0] - losses[1]) <= args.loss_tolerance * abs(losses[0]), \
        "the two flows did not do the same work"
    floor_t = statistics.median(floor_times)
    print(f"floor (bare compiled loop, same matmuls): median {floor_t:.2f} s, min "
          f"{min(floor_times):.2f} s (runs: {', '.join(f'{t:.2f}' for t in floor_times)}); "
          f"ours/floor = {ours_t / floor_t:.3f}, tfp_docs/floor = {peer_t / floor_t:.3f}")
    print(f"ratio course_lib/tfp_docs = {ours_t / peer_t:.3f}")


if __name__ == "__main__":
    main()
