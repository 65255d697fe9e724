"""One CD-1 epoch of a 784x500 RBM on 60,000 binarized MNIST images, batch 100:
course_lib's BernoulliRBM against scikit-learn's BernoulliRBM, on the same data in the same run.

    python benchmarks/bench_rbm_cd1.py [--repeats 3]

Prints both times and ends with ``ratio course_lib/sklearn = <value>`` (lower is better).
Our time is a steady-state epoch: the first call traces and compiles the training graph
(reported separately), as any second epoch of a real run would not.
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.neural_network import BernoulliRBM as SklearnRBM  # noqa: E402

from course_lib import data  # noqa: E402
from course_lib.boltzmann.rbm import BernoulliRBM  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--hidden", type=int, default=500)
    args = parser.parse_args()

    mnist = data.load_mnist()
    x = data.binarize(mnist["x_train"].reshape(-1, 784) / np.float32(255), "fixed",
                      seed=data.FIXED_BINARIZATION_SEED)
    print(f"data: {x.shape}, batch 100, {args.hidden} hidden units, CD-1, one epoch")

    ours = BernoulliRBM(784, args.hidden, seed=0)
    ours.compile(optimizer=keras.optimizers.SGD(0.05), steps_per_execution=50)
    start = time.perf_counter()
    ours.fit(x[:5000], batch_size=100, epochs=1, verbose=0)
    print(f"course_lib tracing + 50 batches: {time.perf_counter() - start:.2f} s (not counted)")
    ours_times, peer_times = [], []
    for _ in range(args.repeats):
        start = time.perf_counter()
        ours.fit(x, batch_size=100, epochs=1, verbose=0)
        ours_times.append(time.perf_counter() - start)
        peer = SklearnRBM(n_components=args.hidden, learning_rate=0.05, batch_size=100,
                          n_iter=1, random_state=0)
        start = time.perf_counter()
        peer.fit(x)
        peer_times.append(time.perf_counter() - start)
    ours_t, peer_t = min(ours_times), min(peer_times)
    print(f"course_lib epoch: {ours_t:.2f} s (runs: {', '.join(f'{t:.2f}' for t in ours_times)})")
    print(f"sklearn    epoch: {peer_t:.2f} s (runs: {', '.join(f'{t:.2f}' for t in peer_times)})")
    print(f"ratio course_lib/sklearn = {ours_t / peer_t:.3f}")


if __name__ == "__main__":
    main()
