"""Forward AIS for log Z of a 784x500 Bernoulli RBM, 100 chains, the published schedule
(14,501 distributions): course_lib against a straightforward NumPy implementation of the
same algorithm (float32, one Gibbs sweep per temperature), in the same run.

    python benchmarks/bench_ais.py [--peer-steps 1500] [--repeats 2] [--full-peer]

About two minutes on 2 cores. The NumPy peer is slow, so by default the contenders run the
first ``--peer-steps`` transitions of the schedule and the ratio compares equal work,
interleaved ``--repeats`` times (the fastest run of each is reported); course_lib also runs
the whole schedule once. ``--full-peer`` runs the peer on everything. The peer's BLAS
runs on ``--peer-threads`` threads (default: the faster of one thread and all cores,
measured at start; multi-threaded OpenBLAS slows down many times over on a busy machine,
which would flatter the ratio). course_lib's times are whole ``ais_log_partition`` calls,
which trace their loop on every call (about 0.3 s).

The arithmetic floor: the same transitions as one ``tf.function`` holding one ``tf.range``
loop, written inline with no annealing-path object: per transition the two matrix products
(v W and h W^T, with W^T formed once), the visible term v.(b - b_A), the difference of the
hidden softpluses at the two temperatures, the two sigmoids and Bernoulli draws, and the
float64 accumulation of the log weights; traced before it is timed. ``ours/floor`` is the
price of course_lib's generality (any path, stateless per-step seeds, per-call tracing).
Ends with ``ratio course_lib/numpy = <value>`` (lower is better).
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from blas_threads import choose_blas_threads  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402
from timing import timed  # noqa: E402

from course_lib import data  # noqa: E402
from course_lib.boltzmann.rbm import BernoulliRBM  # noqa: E402
from course_lib.evaluation import ais  # noqa: E402


def numpy_ais(W, b, c, base_bias, betas, num_chains, seed):
    """Salakhutdinov & Murray (2008) AIS, plain NumPy: returns the log weights."""
    rng = np.random.default_rng(seed)

    def sigmoid(x):
        return 1.0 / (1.0 + np.exp(-x))

    def log_f(v, pre, beta):
        return v @ ((1 - beta) * base_bias + beta * b) + np.logaddexp(0, beta * pre).sum(1)

    v = (rng.random((num_chains, len(b)), dtype=np.float32) < sigmoid(base_bias)).astype(
        np.float32)
    log_w = np.zeros(num_chains)
    for k in range(1, len(betas)):
        pre = v @ W + c
        log_w += log_f(v, pre, betas[k]) - log_f(v, pre, betas[k - 1])
        h = (rng.random(pre.shape, dtype=np.float32) < sigmoid(betas[k] * pre)).astype(np.float32)
        logits = (1 - betas[k]) * base_bias + betas[k] * (h @ W.T + b)
        v = (rng.random(v.shape, dtype=np.float32) < sigmoid(logits)).astype(np.float32)
    return log_w


def floor_ais(W, b, c, base_bias, num_chains):
    """The bare compiled AIS loop described in the module docstring; returns
    ``run(betas, seed) -> log weights``, traced on first use."""
    W, b, c, base_bias = (tf.constant(t) for t in (W, b, c, base_bias))
    W_T = tf.transpose(W)
    gap = b - base_bias

    def bernoulli(probs, seed):
        return tf.cast(tf.random.stateless_uniform(tf.shape(probs), seed) < probs, tf.float32)

    @tf.function(input_signature=[tf.TensorSpec((None,), tf.float32),
                                  tf.TensorSpec((2,), tf.int32)])
    def run(betas, seed):
        v = bernoulli(tf.sigmoid(tf.broadcast_to(base_bias, (num_chains, base_bias.shape[0]))),
                      seed)
        log_w = tf.zeros(num_chains, tf.float64)
        for k in tf.range(1, tf.shape(betas)[0]):
            low, high = betas[k - 1], betas[k]
            step_seed = tf.random.experimental.stateless_fold_in(seed, k)
            pre = tf.matmul(v, W) + c
            magnitude = tf.abs(pre)
            increment = ((high - low) * (tf.linalg.matvec(v, gap)
                                         + tf.reduce_sum(tf.nn.relu(pre), -1))
                         + tf.reduce_sum(tf.math.log1p(tf.exp(-high * magnitude))
                                         - tf.math.log1p(tf.exp(-low * magnitude)), -1))
            log_w += tf.cast(increment, tf.float64)
            h = bernoulli(tf.sigmoid(high * pre), step_seed)
            logits = high * tf.matmul(h, W_T) + ((1.0 - high) * base_bias + high * b)
            v = bernoulli(tf.sigmoid(logits), step_seed + 1)
        return log_w

    run(tf.constant([0.0, 0.5, 1.0]), tf.constant([0, 0]))  # traces
    return run


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peer-steps", type=int, default=1500)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--full-peer", action="store_true")
    parser.add_argument("--peer-threads", type=int, default=0,
                        help="BLAS threads for the NumPy peer (default: the faster of 1 and "
                             "all cores, measured at start)")
    args = parser.parse_args()

    threads = choose_blas_threads(args.peer_threads)
    mnist = data.mnist_splits(binarization="fixed")
    base = ais.base_rate_visible_bias(mnist["x_train"])
    # Realistic weights without a training run: a small random RBM around the base rates.
    model = BernoulliRBM(784, 500, seed=0, weight_init_std=0.05, visible_bias_init=base)
    W, b, c = (t.numpy() for t in model.parameters())
    betas = ais.published_schedule()
    prefix = betas if args.full_peer else np.concatenate(
        [betas[:args.peer_steps], [1.0]]).astype("float32")
    print(f"784x500 RBM, 100 chains; full schedule {len(betas)} distributions; "
          f"compared on {len(prefix)} distributions; NumPy peer on {threads} BLAS thread(s)")

    ais.ais_log_partition(model, base, betas=np.linspace(0, 1, 11, dtype="float32"))  # warm
    start = time.perf_counter()
    full = ais.ais_log_partition(model, base, num_chains=100, betas=betas, seed=0)
    full_t = time.perf_counter() - start
    print(f"course_lib, full schedule: {full_t:.1f} s  ({full})")

    floor = floor_ais(W, b, c, base, 100)
    times = {"course_lib": [], "numpy": [], "floor": []}
    for repeat in range(args.repeats):
        ours, elapsed = timed(ais.ais_log_partition, model, base, num_chains=100,
                              betas=prefix, seed=repeat)
        times["course_lib"].append(elapsed)
        with threadpool_limits(threads, user_api="blas"):
            peer_log_w, elapsed = timed(numpy_ais, W, b, c, base, prefix, 100, seed=repeat)
            times["numpy"].append(elapsed)
        floor_log_w, elapsed = timed(
            lambda r=repeat: floor(tf.constant(prefix), tf.constant([r, 1])).numpy())
        times["floor"].append(elapsed)
    ours_t, peer_t, floor_t = (min(times[k]) for k in ("course_lib", "numpy", "floor"))
    spread = [ais.log_mean_exp_with_bars(w)[0] for w in (ours.log_weights, peer_log_w,
                                                           floor_log_w)]
    print(f"check: log mean w on the {len(prefix)} distributions: course_lib {spread[0]:.2f}, "
          f"numpy {spread[1]:.2f}, floor {spread[2]:.2f} (the same work)")
    scale = (len(betas) - 1) / (len(prefix) - 1)
    def runs(name):
        return ", ".join(f"{t:.2f}" for t in times[name])

    print(f"same {len(prefix)} distributions: course_lib {ours_t:.2f} s (runs: "
          f"{runs('course_lib')}), numpy {peer_t:.2f} s (runs: {runs('numpy')}; full schedule, "
          f"extrapolated: {peer_t * scale:.0f} s)")
    print(f"floor (bare compiled loop, same matmuls): {floor_t:.2f} s (runs: {runs('floor')}) "
          f"on the same {len(prefix)} distributions; ours/floor = {ours_t / floor_t:.3f}")
    print(f"ratio course_lib/numpy = {ours_t / peer_t:.3f}")


if __name__ == "__main__":
    main()
