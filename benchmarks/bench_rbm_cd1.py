"""One CD-1 epoch of a 784x500 RBM on 60,000 binarized MNIST images, batch 100:
course_lib's BernoulliRBM against scikit-learn's BernoulliRBM, on the same data in the same run.

    python benchmarks/bench_rbm_cd1.py [--repeats 3] [--peer-threads N]

About two minutes on 2 cores. Three contenders, interleaved, each timed ``--repeats`` times
(the fastest run is reported):

- course_lib: ``BernoulliRBM(784, 500, seed=0)``, ``compile(SGD(0.05))`` with the library's
  own default ``steps_per_execution``, ``fit(x, batch_size=100, epochs=1)``. Its time is a
  steady-state epoch, the whole ``fit`` call (validation, input pipeline, callbacks): the
  first call traces and compiles the training graph (reported separately), as any second
  epoch of a real run would not.
- scikit-learn: ``BernoulliRBM(n_components=500, learning_rate=0.05, batch_size=100,
  n_iter=1)``. Its BLAS runs on ``--peer-threads`` threads (default: the faster of one thread
  and all cores, measured at start; multi-threaded OpenBLAS slows down many times over on a
  busy machine, which would flatter the ratio).
- the arithmetic floor: the same CD-1 epoch as one ``tf.function`` holding one ``tf.range``
  loop over all 600 batches, with no Keras, no callbacks and no optimizer object: a per-epoch
  permutation, then per batch one ``tf.gather`` of the rows, the five matrix products of
  CD-1 (v W, h W^T, v' W, and v^T p(h | v), v'^T p(h | v') for the weight update), the two
  Bernoulli draws, the sigmoids, the SGD update of W, b and c, and the two logged metrics
  (reconstruction error and mean free energy of the data, whose softplus is the only extra
  elementwise work). It is what the same arithmetic costs through TensorFlow's kernels with
  nothing around it; ``ours/floor`` is the price of everything else (Keras' training loop,
  the tf.data input pipeline, the optimizer, metrics, the autodiff form of the loss).

Ends with ``ratio course_lib/sklearn = <value>`` (lower is better).
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from blas_threads import choose_blas_threads  # noqa: E402
from sklearn.neural_network import BernoulliRBM as SklearnRBM  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402
from timing import timed  # noqa: E402

from course_lib import data  # noqa: E402
from course_lib.boltzmann.rbm import BernoulliRBM  # noqa: E402

BATCH, LEARNING_RATE = 100, 0.05


def floor_epoch(x, hidden, seed=0):
    """The bare compiled CD-1 epoch described in the module docstring. Returns
    ``run(seed) -> (mean reconstruction error, mean free energy)``, traced on first use."""
    rng = np.random.default_rng(seed)
    W = tf.Variable(rng.normal(0.0, 0.01, (x.shape[1], hidden)).astype("float32"))
    b = tf.Variable(tf.zeros(x.shape[1]))
    c = tf.Variable(tf.zeros(hidden))
    rows = tf.constant(x)

    def bernoulli(probs, seed):
        return tf.cast(tf.random.stateless_uniform(tf.shape(probs), seed) < probs, tf.float32)

    @tf.function(input_signature=[tf.TensorSpec((), tf.int32), tf.TensorSpec((2,), tf.int32)])
    def run(num_rows, seed):
        order = tf.random.experimental.stateless_shuffle(tf.range(num_rows), seed)
        num_batches = (num_rows + BATCH - 1) // BATCH
        error = free_energy = tf.constant(0.0)
        for k in tf.range(num_batches):
            v = tf.gather(rows, order[k * BATCH:(k + 1) * BATCH])
            step_seed = tf.random.experimental.stateless_fold_in(seed, k)
            pre = tf.matmul(v, W) + c
            p_data = tf.sigmoid(pre)
            h = bernoulli(p_data, step_seed)
            reconstruction = tf.sigmoid(tf.matmul(h, W, transpose_b=True) + b)
            v_model = bernoulli(reconstruction, step_seed + 1)
            p_model = tf.sigmoid(tf.matmul(v_model, W) + c)
            n = tf.cast(tf.shape(v)[0], tf.float32)
            W.assign_add((LEARNING_RATE / n) * (tf.matmul(v, p_data, transpose_a=True)
                                                - tf.matmul(v_model, p_model, transpose_a=True)))
            b.assign_add(LEARNING_RATE * tf.reduce_mean(v - v_model, 0))
            c.assign_add(LEARNING_RATE * tf.reduce_mean(p_data - p_model, 0))
            error += tf.reduce_mean(tf.reduce_sum(tf.square(v - reconstruction), -1))
            free_energy += tf.reduce_mean(-tf.linalg.matvec(v, b)
                                          - tf.reduce_sum(tf.nn.softplus(pre), -1))
        batches = tf.cast(num_batches, tf.float32)
        return error / batches, free_energy / batches

    return run


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--hidden", type=int, default=500)
    parser.add_argument("--peer-threads", type=int, default=0,
                        help="BLAS threads for scikit-learn (default: the faster of 1 and all "
                             "cores, measured at start)")
    args = parser.parse_args()

    threads = choose_blas_threads(args.peer_threads)
    mnist = data.load_mnist()
    x = data.binarize(mnist["x_train"].reshape(-1, 784) / np.float32(255), "fixed",
                      seed=data.FIXED_BINARIZATION_SEED)
    print(f"data: {x.shape}, batch {BATCH}, {args.hidden} hidden units, CD-1, one epoch; "
          f"scikit-learn on {threads} BLAS thread(s)")

    ours = BernoulliRBM(784, args.hidden, seed=0)
    ours.compile(optimizer=keras.optimizers.SGD(LEARNING_RATE))  # the library's defaults
    start = time.perf_counter()
    ours.fit(x[:5000], batch_size=BATCH, epochs=1, verbose=0)
    print(f"course_lib tracing + 50 batches: {time.perf_counter() - start:.2f} s (not counted; "
          f"steps_per_execution={ours.steps_per_execution})")
    floor = floor_epoch(x, args.hidden)
    floor(tf.constant(5000), tf.constant([0, 1]))  # traces
    ours_times, peer_times, floor_times = [], [], []
    for repeat in range(args.repeats):
        history, elapsed = timed(ours.fit, x, batch_size=BATCH, epochs=1, verbose=0)
        ours_times.append(elapsed)
        peer = SklearnRBM(n_components=args.hidden, learning_rate=LEARNING_RATE,
                          batch_size=BATCH, n_iter=1, random_state=0)
        with threadpool_limits(threads, user_api="blas"):
            _, elapsed = timed(peer.fit, x)
            peer_times.append(elapsed)
        (floor_error, _), elapsed = timed(
            lambda r=repeat: [float(t) for t in floor(tf.constant(len(x)), tf.constant([r, 2]))])
        floor_times.append(elapsed)
    ours_t, peer_t, floor_t = min(ours_times), min(peer_times), min(floor_times)
    ours_error = history.history["reconstruction_error"][-1]
    print(f"check: mean training reconstruction error of the last epoch: course_lib "
          f"{ours_error:.2f}, floor {floor_error:.2f} (the same work)")

    def runs(times):
        return ", ".join(f"{t:.2f}" for t in times)

    print(f"course_lib epoch: {ours_t:.2f} s (runs: {runs(ours_times)})")
    print(f"sklearn    epoch: {peer_t:.2f} s (runs: {runs(peer_times)})")
    print(f"floor (bare compiled loop, same matmuls): {floor_t:.2f} s (runs: "
          f"{runs(floor_times)}); ours/floor = {ours_t / floor_t:.3f}")
    print(f"ratio course_lib/sklearn = {ours_t / peer_t:.3f}")


if __name__ == "__main__":
    main()
