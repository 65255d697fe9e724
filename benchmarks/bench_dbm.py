"""A 784-500-1000 deep Boltzmann machine on MNIST: one training epoch and one forward AIS run,
course_lib against a plain NumPy (float32, vectorised) implementation of the same algorithms
written from the papers, side by side in the same run.

    python benchmarks/bench_dbm.py [--subset 50000] [--distributions 2000] [--smoke]

About 4-7 minutes by default on 2 cores (more when the cores are shared); ``--smoke`` runs
tiny sizes in seconds and only checks that the script works.

Part 1, training (Salakhutdinov & Hinton 2009): one epoch, batch 100, 100 persistent chains,
5 block Gibbs sweeps and 10 mean-field sweeps (started bottom-up with doubled weights below
the top layer) per update, plain SGD. course_lib is ``DBM.compile(SGD(lr)); fit(...)`` with
the library's default ``steps_per_execution``, after a warm-up ``fit`` on a few batches that
traces the train step (reported, not counted); the weights and chains are restored after
the warm-up, so both implementations start the timed epoch from identical parameters and
chains. So that a busy machine slows all contenders alike, the epoch runs as ``--chunks``
consecutive slices of the data, each trained by course_lib (one ``fit`` call), then by
NumPy, then by the floor, and each epoch time is the sum over the slices (course_lib pays its
per-``fit`` set-up once per slice). The NumPy peer
computes the loop-invariant v W_1 of the mean field once per batch, and runs its BLAS on
``--peer-threads`` threads (default: the faster of one thread and all cores, measured at
start; multi-threaded OpenBLAS slows down many times over on a busy machine).

Part 2, forward AIS for log Z (Salakhutdinov & Hinton 2009, Salakhutdinov & Murray 2008):
100 chains, the odd layer h_1 annealed and v, h_2 summed out analytically (Eq. 3.9 of
``course_lib.evaluation.ais``), on the course_lib model trained in part 1, along
``dbm_schedule(--distributions)``. course_lib's time is one whole ``ais_log_partition`` call
(it traces its loop on every call); the time for the paper's 20,000 distributions is
extrapolated linearly from it, after taking off the fixed per-call cost measured on a tiny
schedule.

The arithmetic floor: both parts as bare compiled loops, one ``tf.function`` each holding one
``tf.range`` loop, with no Keras, no callbacks, no optimizer object and no annealing-path
object. Training: per batch one ``tf.gather`` of a per-epoch permutation, the same matrix
products as course_lib's step (v W_1 once, the bottom-up start, 10 mean-field sweeps and
5 Gibbs sweeps of the chains with W_l^T formed once per batch, the two weight gradients of
each layer, the reconstruction p(v | mu_1) and the two products of the logged mean-field
bound), the same sigmoids, draws and entropies, and the SGD update written out. AIS: the
same transition as ``DBMAnnealingPath.step`` written inline (four matrix products with W^T
formed once, the increment, three Bernoulli draws, float64 accumulation), on the same
schedule, traced before it is timed. ``ours/floor`` is the price of everything else (Keras'
loop, the input pipeline, the optimizer and metric objects, the annealing path's generality
and per-call tracing).

Sanity checks: mean field of both implementations on the same weights agree; the NumPy epoch
ends with finite weights and a reconstruction error close to course_lib's; the two AIS
estimates of log Z agree within their error bars. Timings are indicative: other processes
may share the CPUs. Ends with ``ratio course_lib/numpy = <value>``, (course_lib epoch +
course_lib AIS) / (NumPy epoch + NumPy AIS), both AIS at ``--distributions`` (lower is better).
"""

import argparse
import math
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from blas_threads import choose_blas_threads  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402
from timing import timed  # noqa: E402

from course_lib import data  # noqa: E402
from course_lib.boltzmann.dbm import DBM  # noqa: E402
from course_lib.evaluation import ais  # noqa: E402

PAPER_DISTRIBUTIONS = 20_000


# ---------------------------------------------------------------------- NumPy peer
def sigmoid(x):
    """Logistic function, float32 in and out (exp(-x) = inf for very negative x gives 0)."""
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-x))


def softplus(x):
    """log(1 + exp(x)), stably (twice as fast as np.logaddexp in float32)."""
    return np.maximum(x, 0.0) + np.log1p(np.exp(-np.abs(x)))


def bernoulli(probs, rng):
    return (rng.random(probs.shape, dtype=np.float32) < probs).astype(np.float32)


class NumpyDBM:
    """A DBM with layers h_0 = v, ..., h_L, trained with mean field and persistent chains.

    ``W[l - 1]`` is W_l (n_{l-1} x n_l), ``b[l]`` the bias of layer l, ``chains[l]`` the
    persistent states of layer l.
    """

    def __init__(self, W, b, chains, *, gibbs_steps, mean_field_steps, seed):
        self.W = [np.array(w, dtype=np.float32) for w in W]
        self.b = [np.array(c, dtype=np.float32) for c in b]
        self.chains = [np.array(c, dtype=np.float32) for c in chains]
        self.L = len(self.W)
        self.gibbs_steps, self.mean_field_steps = gibbs_steps, mean_field_steps
        self.rng = np.random.default_rng(seed)

    def layer_input(self, states, l, vw=None):
        """b_l + h_{l-1} W_l + h_{l+1} W_{l+1}^T (``vw``: a precomputed v W_1)."""
        total = self.b[l]
        if l > 0:
            total = total + (vw if l == 1 and vw is not None else states[l - 1] @ self.W[l - 1])
        if l < self.L:
            total = total + states[l + 1] @ self.W[l].T
        return total

    def mean_field(self, v, num_steps=None):
        """Bottom-up start (doubled weights below the top), then sweeps: odd layers, even."""
        num_steps = self.mean_field_steps if num_steps is None else num_steps
        vw = v @ self.W[0]
        mu = [v]
        for l in range(1, self.L + 1):
            factor = 2.0 if l < self.L else 1.0
            pre = vw if l == 1 else mu[-1] @ self.W[l - 1]
            mu.append(sigmoid(factor * pre + self.b[l]))
        for _ in range(num_steps):
            for first in (1, 2):
                for l in range(first, self.L + 1, 2):
                    mu[l] = sigmoid(self.layer_input(mu, l, vw))
        return mu

    def gibbs_sweep(self, states):
        for parity in (1, 0):
            for l in range(parity, self.L + 1, 2):
                states[l] = bernoulli(sigmoid(self.layer_input(states, l)), self.rng)
        return states

    def reconstruction_error(self, v, mu):
        """Mean over rows of sum_i (v_i - p(v_i = 1 | mu_1))^2."""
        return float(np.mean(np.sum(np.square(v - sigmoid(self.layer_input(mu, 0))), -1)))

    def train_step(self, v, lr):
        mu = self.mean_field(v)
        states = list(self.chains)
        for _ in range(self.gibbs_steps):
            states = self.gibbs_sweep(states)
        self.chains = states
        n, m = len(v), len(states[0])
        for l in range(1, self.L + 1):
            self.W[l - 1] += lr * (mu[l - 1].T @ mu[l] / n - states[l - 1].T @ states[l] / m)
        for l in range(self.L + 1):
            self.b[l] += lr * (mu[l].mean(0) - states[l].mean(0))
        return self.reconstruction_error(v, mu)

    def fit_epoch(self, x, batch_size, lr):
        """One shuffled pass (last partial batch dropped); returns the mean batch error."""
        order = self.rng.permutation(len(x))
        errors = [self.train_step(x[order[s:s + batch_size]], lr)
                  for s in range(0, len(x) - batch_size + 1, batch_size)]
        return float(np.mean(errors))


def numpy_dbm_ais(W, b, base_bias, betas, num_chains, seed):
    """Forward AIS for a 2-layer DBM, h_1 annealed, v and h_2 summed out; returns the log
    weights and log Z_0 = sum softplus(b_A) + (n_1 + n_2) log 2."""
    W1, W2 = W
    b0, b1, b2 = b
    rng = np.random.default_rng(seed)
    h1 = bernoulli(np.full((num_chains, W1.shape[1]), 0.5, np.float32), rng)
    log_w = np.zeros(num_chains)
    for k in range(1, len(betas)):
        lo, hi = betas[k - 1], betas[k]
        in0 = b0 + h1 @ W1.T
        in2 = b2 + h1 @ W2
        low0, high0 = (1 - lo) * base_bias + lo * in0, (1 - hi) * base_bias + hi * in0
        increment = ((hi - lo) * (h1 @ b1) + softplus(high0).sum(1) - softplus(low0).sum(1)
                     + softplus(hi * in2).sum(1) - softplus(lo * in2).sum(1))
        log_w += increment
        v = bernoulli(sigmoid(high0), rng)
        h2 = bernoulli(sigmoid(hi * in2), rng)
        h1 = bernoulli(sigmoid(hi * (b1 + v @ W1 + h2 @ W2.T)), rng)
    log_z0 = np.sum(np.logaddexp(0.0, base_bias.astype(np.float64)))
    return log_w, float(log_z0 + (W1.shape[1] + W2.shape[1]) * math.log(2.0))


def log_mean_exp_3sigma(log_w):
    """log mean w and the half-width of log(mean w +- 3 std / sqrt(M)), roughly."""
    log_w = np.asarray(log_w, np.float64)
    w = np.exp(log_w - log_w.max())
    mean, err = w.mean(), 3.0 * w.std() / math.sqrt(len(w))
    high = math.log(mean + err)
    low = math.log(mean - err) if mean > err else -math.inf
    return math.log(mean) + log_w.max(), (high - low) / 2


# ------------------------------------------------------------------ the arithmetic floor
def tf_bernoulli(probs, seed):
    return tf.cast(tf.random.stateless_uniform(tf.shape(probs), seed) < probs, tf.float32)


def floor_training(x, W, b, chains, *, batch_size, gibbs_steps, mean_field_steps, lr):
    """The bare compiled training loop of the module docstring, for a 2-layer DBM.
    Returns ``run(num_batches, seed) -> mean reconstruction error``, traced on first use."""
    W1, W2 = (tf.Variable(w) for w in W)
    b0, b1, b2 = (tf.Variable(c) for c in b)
    s0, s1, s2 = (tf.Variable(c) for c in chains)
    rows = tf.constant(x)

    def entropy(p):
        p = tf.clip_by_value(p, 1e-7, 1.0 - 1e-7)
        return -tf.reduce_sum(p * tf.math.log(p) + (1.0 - p) * tf.math.log(1.0 - p), -1)

    @tf.function(input_signature=[tf.TensorSpec((), tf.int32), tf.TensorSpec((2,), tf.int32)])
    def run(num_batches, seed):
        order = tf.random.experimental.stateless_shuffle(tf.range(tf.shape(rows)[0]), seed)
        error = bound = tf.constant(0.0)
        for k in tf.range(num_batches):
            v = tf.gather(rows, order[k * batch_size:(k + 1) * batch_size])
            W1_T, W2_T = tf.einsum("ij->ji", W1), tf.einsum("ij->ji", W2)
            vw = tf.matmul(v, W1)                                     # mean field, (3.3)
            mu1 = tf.sigmoid(2.0 * vw + b1)
            mu2 = tf.sigmoid(tf.matmul(mu1, W2) + b2)
            for _ in range(mean_field_steps):
                mu1 = tf.sigmoid(vw + tf.matmul(mu2, W2_T) + b1)
                mu2 = tf.sigmoid(tf.matmul(mu1, W2) + b2)
            h0, h1, h2 = s0, s1, s2                                   # the chains
            for t in range(gibbs_steps):
                step_seed = tf.random.experimental.stateless_fold_in(seed, k * gibbs_steps + t)
                h1 = tf_bernoulli(tf.sigmoid(tf.matmul(h0, W1) + tf.matmul(h2, W2_T) + b1),
                                  step_seed)
                h0 = tf_bernoulli(tf.sigmoid(tf.matmul(h1, W1_T) + b0), step_seed + 1)
                h2 = tf_bernoulli(tf.sigmoid(tf.matmul(h1, W2) + b2), step_seed + 2)
            s0.assign(h0), s1.assign(h1), s2.assign(h2)
            n = tf.cast(tf.shape(v)[0], tf.float32)
            m = tf.cast(tf.shape(h0)[0], tf.float32)
            reconstruction = tf.sigmoid(tf.matmul(mu1, W1_T) + b0)
            error += tf.reduce_mean(tf.reduce_sum(tf.square(v - reconstruction), -1))
            bound += tf.reduce_mean(
                tf.linalg.matvec(v, b0) + tf.linalg.matvec(mu1, b1) + tf.linalg.matvec(mu2, b2)
                + tf.reduce_sum(tf.matmul(v, W1) * mu1, -1)
                + tf.reduce_sum(tf.matmul(mu1, W2) * mu2, -1) + entropy(mu1) + entropy(mu2))
            W1.assign_add(lr * (tf.matmul(v, mu1, transpose_a=True) / n
                                - tf.matmul(h0, h1, transpose_a=True) / m))
            W2.assign_add(lr * (tf.matmul(mu1, mu2, transpose_a=True) / n
                                - tf.matmul(h1, h2, transpose_a=True) / m))
            for bias, data_mean, chain_mean in ((b0, v, h0), (b1, mu1, h1), (b2, mu2, h2)):
                bias.assign_add(lr * (tf.reduce_mean(data_mean, 0)
                                      - tf.reduce_mean(chain_mean, 0)))
        return error / tf.cast(num_batches, tf.float32)

    run(tf.constant(1), tf.constant([0, 0]))  # traces
    return run


def floor_dbm_ais(W, b, base_bias, num_chains):
    """The bare compiled AIS loop of the module docstring; returns ``run(betas, seed) ->
    log weights``, traced on first use."""
    W1, W2 = (tf.constant(w) for w in W)
    W1_T, W2_T = tf.transpose(W1), tf.transpose(W2)
    b0, b1, b2 = (tf.constant(c) for c in b)
    base_bias = tf.constant(base_bias)

    @tf.function(input_signature=[tf.TensorSpec((None,), tf.float32),
                                  tf.TensorSpec((2,), tf.int32)])
    def run(betas, seed):
        h1 = tf_bernoulli(tf.fill((num_chains, W1.shape[1]), 0.5), seed)
        log_w = tf.zeros(num_chains, tf.float64)
        for k in tf.range(1, tf.shape(betas)[0]):
            low, high = betas[k - 1], betas[k]
            step_seed = tf.random.experimental.stateless_fold_in(seed, k)
            in0 = b0 + tf.matmul(h1, W1_T)
            in2 = b2 + tf.matmul(h1, W2)
            low0 = (1.0 - low) * base_bias + low * in0
            high0 = (1.0 - high) * base_bias + high * in0
            magnitude = tf.abs(in2)
            increment = ((high - low) * (tf.linalg.matvec(h1, b1)
                                         + tf.reduce_sum(tf.nn.relu(in2), -1))
                         + tf.reduce_sum(tf.nn.softplus(high0) - tf.nn.softplus(low0), -1)
                         + tf.reduce_sum(tf.math.log1p(tf.exp(-high * magnitude))
                                         - tf.math.log1p(tf.exp(-low * magnitude)), -1))
            log_w += tf.cast(increment, tf.float64)
            v = tf_bernoulli(tf.sigmoid(high0), step_seed)
            h2 = tf_bernoulli(tf.sigmoid(high * in2), step_seed + 1)
            h1 = tf_bernoulli(tf.sigmoid(high * (b1 + tf.matmul(v, W1) + tf.matmul(h2, W2_T))),
                              step_seed + 2)
        return log_w

    run(tf.constant([0.0, 0.5, 1.0]), tf.constant([0, 0]))  # traces
    return run


# --------------------------------------------------------------------------- main
def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subset", type=int, default=50_000,
                        help="number of training images (default: all 50,000)")
    parser.add_argument("--distributions", type=int, default=2000,
                        help="AIS schedule length (the paper: 20000)")
    parser.add_argument("--hidden", type=int, nargs=2, default=[500, 1000])
    parser.add_argument("--chains", type=int, default=100,
                        help="persistent chains and AIS chains")
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--gibbs-steps", type=int, default=5)
    parser.add_argument("--mean-field-steps", type=int, default=10)
    parser.add_argument("--lr", type=float, default=0.005)
    parser.add_argument("--warmup-batches", type=int, default=5)
    parser.add_argument("--chunks", type=int, default=5,
                        help="slices the timed epoch is interleaved in")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--peer-threads", type=int, default=0,
                        help="BLAS threads for the NumPy peer (default: the faster of 1 and "
                             "all cores, measured at start)")
    parser.add_argument("--smoke", action="store_true",
                        help="tiny sizes, a few seconds: only checks that the script runs")
    args = parser.parse_args()
    if args.smoke:
        args.subset, args.distributions, args.hidden = 500, 50, [20, 30]
        args.warmup_batches = 1

    threads = choose_blas_threads(args.peer_threads)
    threadpool_limits(threads, user_api="blas")  # NumPy's BLAS only; TensorFlow uses its own
    mnist = data.mnist_splits(binarization="fixed")
    x = mnist["x_train"][:args.subset]
    x_valid = mnist["x_valid"][:1000]
    base = ais.base_rate_visible_bias(mnist["x_train"])
    sizes = [x.shape[1], *args.hidden]
    bs = args.batch_size
    print(f"DBM {'-'.join(map(str, sizes))}, {len(x)} training images, batch {bs}, "
          f"{args.chains} persistent chains, {args.gibbs_steps} Gibbs steps, "
          f"{args.mean_field_steps} mean-field steps, SGD lr {args.lr}; NumPy peer on "
          f"{threads} BLAS thread(s)")

    # ------------------------------------------------------------ part 1: an epoch
    dbm = DBM(sizes, num_chains=args.chains, gibbs_steps=args.gibbs_steps,
              mean_field_steps=args.mean_field_steps, visible_bias_init=base, seed=args.seed)
    dbm.compile(optimizer=keras.optimizers.SGD(args.lr))
    initial = dbm.get_weights()
    floor = floor_training(x, [w.numpy() for w in dbm.W], [c.numpy() for c in dbm.biases],
                           dbm.chain_states(), batch_size=bs, gibbs_steps=args.gibbs_steps,
                           mean_field_steps=args.mean_field_steps, lr=args.lr)
    peer = NumpyDBM([w.numpy() for w in dbm.W], [c.numpy() for c in dbm.biases],
                    dbm.chain_states(), gibbs_steps=args.gibbs_steps,
                    mean_field_steps=args.mean_field_steps, seed=args.seed)

    mf_ours = [keras.ops.convert_to_numpy(m) for m in dbm.mean_field(x_valid[:200])]
    mf_peer = peer.mean_field(x_valid[:200])
    mf_diff = max(float(np.abs(a - p).max()) for a, p in zip(mf_ours, mf_peer, strict=True))
    print(f"check: mean field on the initial weights, max |course_lib - numpy| = {mf_diff:.1e}")

    _, trace_t = timed(dbm.fit, x[:args.warmup_batches * bs], batch_size=bs, epochs=1,
                       verbose=0)
    dbm.set_weights(initial)
    print(f"course_lib warm-up (tracing + {args.warmup_batches} batches, not counted): "
          f"{trace_t:.1f} s")
    batches = len(x) // bs
    bounds = np.linspace(0, batches, max(1, min(args.chunks, batches)) + 1).astype(int) * bs
    times = {"course_lib": [], "numpy": [], "floor": []}
    errors = {"course_lib": [], "numpy": [], "floor": []}
    for start, stop in zip(bounds[:-1], bounds[1:], strict=True):
        history, elapsed = timed(dbm.fit, x[start:stop], batch_size=bs, epochs=1, verbose=0)
        times["course_lib"].append(elapsed)
        errors["course_lib"].append(history.history["reconstruction_error"][-1])
        error, elapsed = timed(peer.fit_epoch, x[start:stop], bs, args.lr)
        times["numpy"].append(elapsed)
        errors["numpy"].append(error)
        error, elapsed = timed(lambda n=int(stop - start) // bs, s=int(start): float(
            floor(tf.constant(n), tf.constant([args.seed, s]))))
        times["floor"].append(elapsed)
        errors["floor"].append(error)
    ours_epoch, peer_epoch, floor_epoch = (sum(times[k]) for k in ("course_lib", "numpy",
                                                                     "floor"))
    for name, total in (("course_lib", ours_epoch), ("numpy", peer_epoch),
                        ("floor", floor_epoch)):
        print(f"{name:<10} epoch: {total:6.1f} s  ({1e3 * total / batches:.1f} ms/batch; "
              f"slices {', '.join(f'{t:.1f}' for t in times[name])} s; mean training "
              f"reconstruction error {np.mean(errors[name]):.2f})")

    finite = all(np.isfinite(p).all() for p in peer.W + peer.b)
    ours_valid_err = float(np.mean(np.sum(
        np.square(x_valid - dbm.reconstruct(x_valid).numpy()), -1)))
    peer_valid_err = peer.reconstruction_error(x_valid, peer.mean_field(x_valid))
    rel = abs(ours_valid_err - peer_valid_err) / max(ours_valid_err, 1e-9)
    print(f"check: numpy weights finite: {finite}; validation reconstruction error "
          f"course_lib {ours_valid_err:.2f}, numpy {peer_valid_err:.2f} "
          f"({100 * rel:.1f}% apart)")
    if not finite or rel > 0.1 or mf_diff > 1e-4:
        print("WARNING: the training sanity check failed (mean field differs by > 1e-4, "
              "non-finite weights or reconstruction errors > 10% apart)")

    # ----------------------------------------------------------- part 2: AIS of log Z
    W = [w.numpy() for w in dbm.W]
    b = [c.numpy() for c in dbm.biases]
    betas = ais.dbm_schedule(args.distributions)
    tiny = ais.dbm_schedule(11)
    print(f"AIS: {args.chains} chains, {len(betas)} distributions, on the course_lib weights "
          "after the epoch")
    _, overhead = timed(ais.ais_log_partition, dbm, base, num_chains=args.chains, betas=tiny,
                        seed=args.seed)
    ours_ais, ours_ais_t = timed(ais.ais_log_partition, dbm, base, num_chains=args.chains,
                                 betas=betas, seed=args.seed)
    (peer_log_w, peer_log_z0), peer_ais_t = timed(numpy_dbm_ais, W, b, base, betas,
                                                   args.chains, args.seed + 1)
    floor_ais = floor_dbm_ais(W, b, base, args.chains)
    floor_log_w, floor_ais_t = timed(
        lambda: floor_ais(tf.constant(betas), tf.constant([args.seed, 2])).numpy())
    scale = (PAPER_DISTRIBUTIONS - 1) / (len(betas) - 1)
    ours_full = overhead + max(ours_ais_t - overhead, 0.0) * scale
    print(f"course_lib AIS: {ours_ais_t:6.1f} s  (of which ~{overhead:.1f} s per-call tracing; "
          f"{PAPER_DISTRIBUTIONS} distributions, extrapolated: {ours_full:.0f} s)")
    print(f"numpy      AIS: {peer_ais_t:6.1f} s  ({PAPER_DISTRIBUTIONS} distributions, "
          f"extrapolated: {peer_ais_t * scale:.0f} s)")
    print(f"floor      AIS: {floor_ais_t:6.1f} s  (log Z "
          f"{peer_log_z0 + log_mean_exp_3sigma(floor_log_w)[0]:.2f})")

    peer_mean, peer_half = log_mean_exp_3sigma(peer_log_w)
    peer_log_z = peer_log_z0 + peer_mean
    ours_half = (ours_ais.log_z_high - ours_ais.log_z_low) / 2
    gap = abs(ours_ais.log_z - peer_log_z)
    allowed = max(math.hypot(ours_half, peer_half), 0.5)
    print(f"check: log Z course_lib {ours_ais.log_z:.2f} +- {ours_half:.2f}, numpy "
          f"{peer_log_z:.2f} +- {peer_half:.2f} (3 sigma); gap {gap:.2f}, allowed {allowed:.2f}")
    if not gap <= allowed:
        print("WARNING: the AIS estimates disagree beyond their error bars")

    ours_t, peer_t = ours_epoch + ours_ais_t, peer_epoch + peer_ais_t
    floor_t = floor_epoch + floor_ais_t
    print(f"total (epoch + AIS at {len(betas)} distributions): course_lib {ours_t:.1f} s, "
          f"numpy {peer_t:.1f} s (indicative: other processes may share the CPUs)")
    print(f"floor (bare compiled loop, same matmuls): {floor_t:.1f} s (epoch {floor_epoch:.1f} "
          f"s + AIS {floor_ais_t:.1f} s); ours/floor = {ours_t / floor_t:.3f} (epoch "
          f"{ours_epoch / floor_epoch:.3f}, AIS {ours_ais_t / floor_ais_t:.3f})")
    print(f"ratio course_lib/numpy = {ours_t / peer_t:.3f}")


if __name__ == "__main__":
    main()
