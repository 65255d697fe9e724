"""Forward AIS for log Z of a 784x500 Bernoulli RBM, 100 chains, the published schedule
(14,501 distributions): course_lib against a straightforward NumPy implementation of the
same algorithm (float32, one Gibbs sweep per temperature), in the same run.

    python benchmarks/bench_ais.py [--peer-steps 1500] [--full-peer]

The NumPy peer is slow, so by default both run the first ``--peer-steps`` transitions of
the schedule and the ratio compares equal work; course_lib also runs the whole schedule
(target: under 30 s on a 2-core machine). ``--full-peer`` runs the peer on everything.
Ends with ``ratio course_lib/numpy = <value>`` (lower is better).
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

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


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peer-steps", type=int, default=1500)
    parser.add_argument("--full-peer", action="store_true")
    args = parser.parse_args()

    mnist = data.mnist_splits(binarization="fixed")
    base = ais.base_rate_visible_bias(mnist["x_train"])
    # Realistic weights without a training run: a small random RBM around the base rates.
    model = BernoulliRBM(784, 500, seed=0, weight_init_std=0.05, visible_bias_init=base)
    W, b, c = (t.numpy() for t in model.parameters())
    betas = ais.published_schedule()
    prefix = betas if args.full_peer else np.concatenate(
        [betas[:args.peer_steps], [1.0]]).astype("float32")
    print(f"784x500 RBM, 100 chains; full schedule {len(betas)} distributions; "
          f"compared on {len(prefix)} distributions")

    ais.ais_log_partition(model, base, betas=np.linspace(0, 1, 11, dtype="float32"))  # trace
    start = time.perf_counter()
    full = ais.ais_log_partition(model, base, num_chains=100, betas=betas, seed=0)
    full_t = time.perf_counter() - start
    print(f"course_lib, full schedule: {full_t:.1f} s  ({full})")

    start = time.perf_counter()
    ais.ais_log_partition(model, base, num_chains=100, betas=prefix, seed=0)
    ours_t = time.perf_counter() - start
    start = time.perf_counter()
    numpy_ais(W, b, c, base, prefix, 100, seed=0)
    peer_t = time.perf_counter() - start
    scale = (len(betas) - 1) / (len(prefix) - 1)
    print(f"same {len(prefix)} distributions: course_lib {ours_t:.1f} s, numpy {peer_t:.1f} s "
          f"(numpy full schedule, extrapolated: {peer_t * scale:.0f} s)")
    print(f"ratio course_lib/numpy = {ours_t / peer_t:.3f}")


if __name__ == "__main__":
    main()
