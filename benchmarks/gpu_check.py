"""The GPU path in one run: what a student with a Colab GPU gets from course_lib.

    python benchmarks/gpu_check.py [--images 10000] [--quick]

Under five minutes on a GPU. For every model the course trains it prints one table row per
check; any failed check makes the script exit non-zero, so it can gate a release.

1. ``fit``: every model once, with the default ``compile()`` (``jit_compile="auto"``: XLA on a
   GPU); the row shows whether XLA stayed on, the time per epoch and whether the metrics are
   finite and every weight moved.
2. AIS on a 784x500 RBM with and without XLA: time and log Z (the two must agree within
   their 3-sigma bars: the same algorithm, different kernels).
3. Mixed precision: one SGD step per model under ``mixed_float16`` against the float32 step;
   the ratio of the update norms must be 1 (the Boltzmann family stays float32 by design).
4. Host overhead: the time per training step at 1 and at 50 steps per compiled call.
   The translation models (CycleGAN, UNIT: two domains, one optimizer per player) have
   their own rows, ``fit2`` and ``mp2``: one epoch of MNIST against the resampled 8x8 digits
   with the default ``compile()``, and one SGD step of both players under ``mixed_float16``
   against float32 (the whole update's norm, both players together).
5. Sampling: Gibbs chains of the RBM, DBN, DBM and Boltzmann machine with and without XLA
   (``sample(..., jit_compile=...)``); the row shows the time and whether every sample is a
   probability (XLA draws other numbers from the same seed, so the two differ).

On a CPU it runs too (``--quick`` makes it about a minute), which is how CI-less machines
check the script itself; the timings then say nothing about a GPU.
"""

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from course_lib import data  # noqa: E402
from course_lib.boltzmann import DBM, DBN, BernoulliRBM, BoltzmannMachine  # noqa: E402
from course_lib.denoising import DenoisingAutoencoder  # noqa: E402
from course_lib.energy import LangevinEBM, energy_network  # noqa: E402
from course_lib.evaluation import (  # noqa: E402
    ais_log_partition,
    base_rate_visible_bias,
    dbm_schedule,
)
from course_lib.flows import BinaryMADE, FlowModel, architectures, pixels  # noqa: E402
from course_lib.moment_matching import GMMN, gmmn_generator  # noqa: E402
from course_lib.training import TrainingDivergedError  # noqa: E402
from course_lib.translation import UNIT, CycleGAN, cyclegan_networks, unit_networks  # noqa: E402
from course_lib.variational import VAE, VQVAE  # noqa: E402


def models(quick):
    """name -> (constructor, kind of data: see ``inputs``); MNIST-sized unless quick."""
    h = 64 if quick else 500
    return {
        "RBM CD-1": (lambda: BernoulliRBM(784, h, seed=0), False),
        "RBM PCD-1": (lambda: BernoulliRBM(784, h, sampler="pcd", seed=0), False),
        "RBM FPCD": (lambda: BernoulliRBM(784, h, sampler="fpcd", seed=0), False),
        "Boltzmann machine": (lambda: BoltzmannMachine(16, 4, seed=0), None),
        "DBN": (lambda: DBN([784, h, h], seed=0), False),
        "DBM": (lambda: DBM([784, h, 2 * h], seed=0), False),
        "VAE": (lambda: VAE(784, 50, (200, 200), seed=0, dynamic_binarization=True), True),
        "IWAE k=5": (lambda: VAE(784, 50, (200, 200), objective="iwae", num_samples=5,
                                 seed=0, dynamic_binarization=True), True),
        "VQ-VAE": (lambda: VQVAE(seed=0), False),
        "MAF(5)": (lambda: FlowModel(architectures.maf(784, num_layers=5, hidden_units=(h,)),
                                     seed=0), "logit"),
        "RealNVP(5)": (lambda: FlowModel(architectures.real_nvp(784, num_couplings=5,
                                                                hidden_units=(h,)), seed=0),
                       "logit"),
        "MADE": (lambda: BinaryMADE(784, (h,), seed=0), False),
        "GMMN": (lambda: GMMN(gmmn_generator(10, (64, 256, 256, 2 * h), 784), latent_dim=10,
                              data_range=(0.0, 1.0), seed=0), True),
        "DAE walkback 2": (lambda: DenoisingAutoencoder(784, (4 * h,), walkback=2, seed=0),
                           True),
        "Langevin EBM": (lambda: LangevinEBM(energy_network(784, (h, h // 2), h // 4),
                                             data_range=(0.0, 1.0), num_steps=10,
                                             buffer_size=1000, seed=0), True),
    }


def inputs(kind, mnist, toy):
    """The data of a model's kind: None (16-bit toy vectors), True (grey levels), False
    (binary), "logit" (dequantised grey levels in the MAF paper's logit space)."""
    if kind is None:
        return toy
    if kind == "logit":
        return mnist["logit"]
    return mnist["grey"] if kind else mnist["binary"]


def weights(model):
    return [v.numpy().astype(np.float64) for v in model.trainable_variables]


def check_fit(name, make, x):
    model = make()
    # clipped: the check is of the GPU path, and an unclipped step of SGD on a flow's
    # -log p (thousands of nats at the start) or on the VQ-VAE's codebook can diverge
    model.compile(optimizer=keras.optimizers.SGD(0.01, clipnorm=1.0))
    before = weights(model)
    start = time.perf_counter()
    try:
        history = model.fit(x, batch_size=100, epochs=1, verbose=0)
    except TrainingDivergedError as error:      # a failed row, and the other checks still run
        return False, f"fit  {name:18s} XLA {str(model.jit_compile):5s} diverged: {error}"[:300]
    seconds = time.perf_counter() - start
    finite = all(np.all(np.isfinite(v)) for v in history.history.values())
    moved = all(not np.allclose(a, b) for a, b in zip(before, weights(model), strict=True))
    ok = finite and moved
    return ok, (f"fit  {name:18s} XLA {str(model.jit_compile):5s} {seconds:7.2f} s/epoch "
                f"finite {finite} all weights moved {moved}")


def one_step(make, x, policy, start=None):
    keras.mixed_precision.set_global_policy(policy)
    try:
        model = make()
        if start is not None:
            for variable, value in zip(model.trainable_variables, start, strict=True):
                variable.assign(value)
        model.compile(optimizer=keras.optimizers.SGD(0.01))
        model.optimizer.build(model.trainable_variables)
        before = weights(model)
        for _ in range(20):           # a step whose scaled float16 gradients overflow is skipped
            model.train_step(tf.constant(x))
            after = weights(model)
            if any(not np.array_equal(a, b) for a, b in zip(before, after, strict=True)):
                break
        return model, before, after
    finally:
        keras.mixed_precision.set_global_policy("float32")


def check_mixed(name, make, x):
    reference, start, ref_after = one_step(make, x, "float32")
    model, _, after = one_step(make, x, "mixed_float16", start=start)
    ref = np.concatenate([(a - b).ravel() for a, b in zip(ref_after, start, strict=True)])
    got = np.concatenate([(a - b).ravel() for a, b in zip(after, start, strict=True)])
    ratio = np.linalg.norm(got) / np.linalg.norm(ref)
    ok = abs(ratio - 1.0) < 0.05
    return ok, (f"mp   {name:18s} policy {model.dtype_policy.name:14s} update ratio "
                f"{ratio:.4f} (float16 / float32)")


def translation_models(quick):
    """name -> constructor of the Chapter 8 models (two players, two domains)."""
    k = 4 if quick else 8
    return {
        "CycleGAN": lambda: CycleGAN(**cyclegan_networks(generator_filters=k, residual_blocks=2),
                                     seed=0),
        "UNIT": lambda: UNIT(**unit_networks(filters=k), seed=0),
    }


def check_translation_fit(name, make, x, y):
    model = make()
    model.compile(generator_optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5),
                  discriminator_optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5))
    before = weights(model)
    start = time.perf_counter()
    try:
        history = model.fit(x, y, batch_size=32, epochs=1, verbose=0)
    except TrainingDivergedError as error:
        return False, f"fit2 {name:18s} XLA {str(model.jit_compile):5s} diverged: {error}"[:300]
    seconds = time.perf_counter() - start
    finite = all(np.all(np.isfinite(v)) for v in history.history.values())
    moved = all(not np.allclose(a, b) for a, b in zip(before, weights(model), strict=True))
    return finite and moved, (f"fit2 {name:18s} XLA {str(model.jit_compile):5s} {seconds:7.2f} "
                              f"s/epoch finite {finite} all weights moved {moved}")


def check_translation_mixed(name, make, x, y):
    """One train_step of both players under each policy from the same weights (the loss
    scale starts at 2^8: at Keras' default 2^15 the first float16 steps overflow and are
    skipped, as dynamic loss scaling intends)."""
    moves, start = {}, None
    for policy in ("float32", "mixed_float16"):
        keras.mixed_precision.set_global_policy(policy)
        try:
            keras.utils.set_random_seed(0)
            model = make()
            if start is not None:
                for variable, value in zip(model.trainable_variables, start, strict=True):
                    variable.assign(value)
            sgd = [keras.optimizers.SGD(0.01), keras.optimizers.SGD(0.01)]
            if policy != "float32":
                sgd = [keras.optimizers.LossScaleOptimizer(o, initial_scale=2.0**8) for o in sgd]
            model.compile(generator_optimizer=sgd[0], discriminator_optimizer=sgd[1])
            before = weights(model)
            start = before if start is None else start
            model.train_step((tf.constant(x), tf.constant(y)))
            moves[policy] = np.concatenate([(a - b).ravel() for a, b in
                                            zip(weights(model), before, strict=True)])
        finally:
            keras.mixed_precision.set_global_policy("float32")
    ratio = np.linalg.norm(moves["mixed_float16"]) / np.linalg.norm(moves["float32"])
    return abs(ratio - 1.0) < 0.1, (f"mp2  {name:18s} update ratio {ratio:.4f} "
                                    "(float16 / float32; 0 means the scaled step was skipped)")


def check_ais(x, quick):
    rbm = BernoulliRBM(784, 64 if quick else 500, sampler="pcd", seed=0)
    rbm.compile(optimizer=keras.optimizers.SGD(0.05))
    rbm.fit(x, batch_size=100, epochs=1, verbose=0)
    base = base_rate_visible_bias(x)
    betas = dbm_schedule(500 if quick else 5000)
    rows, results = [], {}
    for jit in (False, True):
        start = time.perf_counter()
        result = ais_log_partition(rbm, base, num_chains=100, betas=betas, seed=0,
                                   jit_compile=jit, verbose=0)
        results[jit] = result
        seconds = time.perf_counter() - start
        rows.append(f"ais  XLA {str(jit):5s} {len(betas)} distributions {seconds:7.2f} s "
                    f"(tracing included)  {result}")
    gap = abs(results[True].log_z - results[False].log_z)
    bars = 3 * (results[True].log_z_sd + results[False].log_z_sd) + 1e-3
    ok = gap <= bars
    rows.append(f"ais  XLA and plain agree: |difference| {gap:.3f} <= {bars:.3f}: {ok}")
    return ok, rows


def check_steps_per_call(name, make, x):
    times = {}
    for steps in (1, 50):
        model = make()
        model.compile(optimizer=keras.optimizers.SGD(0.01), steps_per_execution=steps)
        model.fit(x[:5000], batch_size=100, epochs=1, verbose=0)          # trace
        start = time.perf_counter()
        model.fit(x, batch_size=100, epochs=1, verbose=0)
        times[steps] = (time.perf_counter() - start) / int(np.ceil(len(x) / 100))
    return True, (f"host {name:18s} ms per step: {1e3 * times[1]:.2f} at 1 step per call, "
                  f"{1e3 * times[50]:.2f} at 50")


def check_sampling(name, make, x):
    model = make()
    model.compile(optimizer=keras.optimizers.SGD(0.01))
    model.fit(x, batch_size=100, epochs=1, verbose=0)
    cells, ok = [], True
    for jit in (False, True):
        start = time.perf_counter()
        out = model.sample(100, 200, seed=0, jit_compile=jit)
        samples = out[0] if isinstance(out, tuple) else out
        valid = bool(np.all(np.isfinite(samples)) and samples.min() >= 0 and samples.max() <= 1)
        ok = ok and valid
        cells.append(f"XLA {str(jit):5s} {time.perf_counter() - start:6.2f} s valid {valid}")
    return ok, f"gibbs {name:17s} 100 chains x 200 sweeps: " + "; ".join(cells)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--quick", action="store_true", help="small models, 2,000 images")
    args = parser.parse_args(argv)
    n = 2_000 if args.quick else args.images
    tf.get_logger().setLevel("ERROR")    # retracing notices: every check builds fresh models
    print("devices:", [d.name for d in tf.config.list_physical_devices()],
          "| keras", keras.__version__, "| tensorflow", tf.__version__)
    splits = data.mnist_splits(binarization="fixed")
    grey = data.mnist_splits(binarization="none")["x_train"][:n]
    mnist = {"binary": splits["x_train"][:n], "grey": grey,
             "logit": pixels.logit_transform(pixels.dequantize(grey, seed=0))}
    toy = (np.random.default_rng(0).random((n, 16)) < 0.3).astype("float32")
    failures, start = [], time.perf_counter()
    for name, (make, kind) in models(args.quick).items():
        x = inputs(kind, mnist, toy)
        for check in (check_fit, check_mixed):
            ok, row = check(name, make, x if check is check_fit else x[:100])
            print(row, "" if ok else "  <-- FAILED", flush=True)
            if not ok:
                failures.append(row)
    x_domain = (2 * grey[:, :, None] - 1).reshape(-1, 28, 28, 1)
    y_domain = (2 * data.digits_28x28()["x_train"] - 1)[..., None]
    for name, make in translation_models(args.quick).items():
        for check, (a, b) in ((check_translation_fit, (x_domain, y_domain)),
                              (check_translation_mixed, (x_domain[:32], y_domain[:32]))):
            ok, row = check(name, make, a, b)
            print(row, "" if ok else "  <-- FAILED", flush=True)
            if not ok:
                failures.append(row)
    ok, rows = check_ais(mnist["binary"], args.quick)
    print("\n".join(rows), flush=True)
    if not ok:
        failures.append(rows[-1])
    for name in ("RBM CD-1", "DBN", "DBM", "Boltzmann machine"):
        make, kind = models(args.quick)[name]
        ok, row = check_sampling(name, make, inputs(kind, mnist, toy))
        print(row, "" if ok else "  <-- FAILED", flush=True)
        if not ok:
            failures.append(row)
    for name in ("RBM CD-1", "VAE"):
        make, kind = models(args.quick)[name]
        print(check_steps_per_call(name, make, inputs(kind, mnist, toy))[1], flush=True)
    print(f"gpu_check: {len(failures)} failed checks in {time.perf_counter() - start:.0f} s")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
