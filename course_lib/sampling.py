"""Random draws shared by the samplers: Bernoulli and Gaussian units, stateful or stateless.

Every model owns a ``keras.random.SeedGenerator`` and passes it here, so a seeded model
reproduces its numbers. Loops that run thousands of steps inside one ``tf.while_loop``
(annealed importance sampling, long Gibbs chains) instead pass a *stateless* seed, a
``(2,)`` integer tensor, which is derived per step with ``step_seed`` and never touches a
variable. Keras 3's ``keras.random`` accepts only integers or ``SeedGenerator``s, so the
stateless branch calls ``tf.random.stateless_uniform`` directly.

Long runs report their progress: :func:`run_in_chunks` runs a compiled loop in chunks (one
trace, the same numbers as one loop) and advances a :class:`LoopProgress` bar between them;
:func:`run_chain` runs a Markov chain the same way, with snapshots between chunks. Their
``verbose`` follows Keras' ``fit``: 0 silent, 1 a bar, 2 one line at the end, and ``"auto"``
a bar only once a run has lasted ``AUTO_PROGRESS_DELAY`` seconds, so short runs (tests, smoke
mode) print nothing.

Under ``tf.distribute`` (``MirroredStrategy`` on several GPUs), every replica draws its own
numbers: a ``SeedGenerator`` draw is folded with the replica's id (:func:`replica_position`),
so replicas neither duplicate work nor share their noise; on one device nothing changes.
Persistent chains are shared out the same way: each replica advances its own rows
(:func:`replica_rows`) and :func:`gather_replica_rows` puts the whole state back together,
identical on every replica. Noise added to a batch's rows (a VAE's latent draws) can instead
be drawn by :func:`batch_normal` for the whole batch alike on every replica, each taking its
own rows: the replicas then train on the numbers one device would draw.

Used by every model family and by ``course_lib.evaluation`` (AIS, exact enumeration).
"""

from __future__ import annotations

import math
import time

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from course_lib.checks import (
    ArgumentTypeError,
    check_nonneg_int,
    check_positive_int,
    check_seed,
    describe,
    is_int,
)

# all_binary_states refuses to build more values than this (2^31, 8 GiB of float32).
MAX_ENUMERATED_VALUES = 2**31
# verbose="auto" shows a progress bar once a run has lasted this many seconds.
AUTO_PROGRESS_DELAY = 10.0
# run_in_chunks splits a loop into about this many compiled calls by default.
DEFAULT_NUM_CHUNKS = 100


def _is_stateless_seed(seed) -> bool:
    return tf.is_tensor(seed) and seed.shape.rank == 1


def _check_draw_seed(seed):
    """A seed for one draw: a ``SeedGenerator``, an int >= 0 or a stateless (2,) tensor."""
    if isinstance(seed, keras.random.SeedGenerator) or _is_stateless_seed(seed):
        return seed
    if is_int(seed):
        return check_seed(seed)
    raise ArgumentTypeError("seed must be a SeedGenerator, an integer >= 0 or a (2,) "
                            f"stateless seed tensor; got {describe(seed)} "
                            f"({type(seed).__name__}).")


def replica_position():
    """``(replica id, replicas in sync)`` of the code running now: ``(0, 1)`` on one device
    and in a strategy's cross-replica context; inside ``strategy.run`` (a ``train_step``
    under ``MirroredStrategy``) the replica's id (an int32 tensor) and their number."""
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return 0, 1
    return tf.cast(context.replica_id_in_sync_group, tf.int32), context.num_replicas_in_sync


def _replica_seed(seed):
    """A ``SeedGenerator`` stays itself on one device (Keras draws from it as always); under
    several replicas its next seed, whose state every replica advances alike, is folded with
    the replica's id, so each replica gets its own stream."""
    replica, replicas = replica_position()
    if replicas == 1 or not isinstance(seed, keras.random.SeedGenerator):
        return seed
    drawn = tf.cast(tf.math.floormod(tf.cast(seed.next(), tf.int64), 2**31 - 1), tf.int32)
    return tf.random.experimental.stateless_fold_in(drawn, replica)


def uniform(shape, seed, dtype="float32"):
    """Uniform [0, 1) draws from a ``SeedGenerator``, an int, or a stateless ``(2,)`` seed;
    a ``SeedGenerator`` gives each replica its own numbers (module docstring)."""
    seed = _replica_seed(_check_draw_seed(seed))
    if _is_stateless_seed(seed):
        return tf.random.stateless_uniform(shape, seed=tf.cast(seed, tf.int32), dtype=dtype)
    return keras.random.uniform(shape, seed=seed, dtype=dtype)


def normal(shape, seed, dtype="float32"):
    """Standard normal draws; ``seed`` as in :func:`uniform`."""
    seed = _replica_seed(_check_draw_seed(seed))
    if _is_stateless_seed(seed):
        return tf.random.stateless_normal(shape, seed=tf.cast(seed, tf.int32), dtype=dtype)
    return keras.random.normal(shape, seed=seed, dtype=dtype)


def batch_normal(shape, seed, dtype="float32"):
    """Standard normal draws for this replica's rows of a batch, ``shape`` = (its rows, ...),
    taken from draws for the whole batch of every replica, made alike on all of them from a
    ``SeedGenerator`` (:func:`replica_offset` locates the replica's block): training on R
    replicas then draws, row for row, the numbers one device draws for the same batch, also
    when the replicas' blocks differ in size or are known only at run time (a last, partial
    batch). On one device, Keras' own draw."""
    if not isinstance(seed, keras.random.SeedGenerator):
        raise ArgumentTypeError(f"seed must be a SeedGenerator; got {describe(seed)}.")
    _, replicas = replica_position()
    if replicas == 1:
        return keras.random.normal(shape, seed=seed, dtype=dtype)
    start, total = replica_offset(shape[0])
    whole = keras.random.normal((total, *shape[1:]), seed=seed, dtype=dtype)
    return whole[start:start + shape[0]]


def replica_offset(rows):
    """``(start, total)``: where this replica's ``rows`` rows of a batch begin among every
    replica's rows in replica order (as :func:`gather_replica_rows` orders them), and how
    many rows all replicas hold together; ``(0, rows)`` on one device. Unlike
    :func:`replica_rows` the blocks may differ in size (a batch of 5 on two replicas is
    split 3 and 2) and ``rows`` may be a tensor known only when the step runs: the
    replicas' sizes are gathered."""
    replica, replicas = replica_position()
    if replicas == 1:
        return 0, rows
    sizes = tf.distribute.get_replica_context().all_gather(
        tf.reshape(tf.cast(rows, tf.int32), (1,)), axis=0)
    return tf.reduce_sum(sizes[:replica]), tf.reduce_sum(sizes)


def replica_rows(x):
    """This replica's share of the rows of ``x`` (all of them on one device): under R
    replicas, the r-th of R equal consecutive blocks, so the replicas together advance every
    chain once, as one device would.

    Raises:
        ValueError: if the rows do not split evenly among the replicas.
    """
    replica, replicas = replica_position()
    if replicas == 1:
        return x
    rows = x.shape[0]
    if rows is None or rows % replicas:
        raise ValueError(f"the {rows} persistent chains must split evenly among the "
                         f"{replicas} replicas in sync; choose a multiple of {replicas}.")
    share = rows // replicas
    return tf.reshape(x, [replicas, share, *x.shape[1:]])[replica]


def gather_replica_rows(x):
    """Inverse of :func:`replica_rows`: every replica's block, in replica order, on every
    replica (an all-gather), so state stored from it is identical on all of them."""
    _, replicas = replica_position()
    if replicas == 1:
        return x
    return tf.distribute.get_replica_context().all_gather(x, axis=0)


def bernoulli(probs, seed):
    """Samples binary units: 1 with probability ``probs``, elementwise (float result)."""
    probs = ops.convert_to_tensor(probs)
    return ops.cast(uniform(ops.shape(probs), seed, dtype=probs.dtype) < probs, probs.dtype)


def gaussian(mean, std, seed):
    """Samples real-valued units ``mean + std * eps`` with ``eps ~ N(0, I)``."""
    mean = ops.convert_to_tensor(mean)
    return mean + std * normal(ops.shape(mean), seed, dtype=mean.dtype)


def step_seed(seed, step, stream=0):
    """Derives the stateless seed for ``step`` of a loop (and a sub-``stream`` within it).

    Args:
        seed: a ``(2,)`` integer tensor, the loop's base seed.
        step: scalar integer tensor, the loop counter.
        stream: Python int that separates independent draws within one step.

    Returns:
        A ``(2,)`` int32 tensor; distinct (step, stream) pairs give independent streams.
    """
    if isinstance(seed, np.ndarray):
        seed = tf.constant(seed)
    if not (tf.is_tensor(seed) and seed.shape.rank == 1 and seed.shape[0] in (None, 2)):
        raise ArgumentTypeError("seed must be a (2,) stateless seed tensor (see "
                                f"as_stateless_seed); got {describe(seed)}.")
    seed = tf.cast(seed, tf.int32)
    mixed = tf.stack([seed[0] + 1_000_003 * tf.cast(stream, tf.int32), seed[1]])
    return tf.random.experimental.stateless_fold_in(mixed, tf.cast(step, tf.int32))


def check_verbose(verbose, name="verbose"):
    """Returns ``verbose`` as ``"auto"``, 0, 1 or 2 (``False`` -> 0, ``True`` -> 1).

    The modes of Keras' ``fit``: 0 prints nothing, 1 a progress bar, 2 one line at the end;
    ``"auto"`` a bar only once the run has lasted ``AUTO_PROGRESS_DELAY`` seconds.

    Raises:
        ArgumentTypeError: for any other type (``"yes"``, ``1.0``, None).
        ValueError: for an integer other than 0, 1 and 2.
    """
    expected = (f'{name} must be "auto", 0 or False (silent), 1 or True (a progress bar) or 2 '
                "(one line at the end)")
    if isinstance(verbose, str) and verbose == "auto":
        return "auto"
    if isinstance(verbose, (bool, np.bool_)):
        return int(verbose)
    if not is_int(verbose):
        raise ArgumentTypeError(f"{expected}; got {describe(verbose)} "
                                f"({type(verbose).__name__}).")
    if verbose not in (0, 1, 2):
        raise ValueError(f"{expected}; got {describe(verbose)}.")
    return int(verbose)


class LoopProgress:
    """A ``keras.utils.Progbar`` over the ``target`` units of a long loop, shown as
    ``verbose`` says (see :func:`check_verbose`); call :meth:`update` with the units done.

    Example:
        >>> progress = LoopProgress(len(batches), verbose=1, unit_name="batch")
        >>> for i, batch in enumerate(batches):
        ...     work(batch)
        ...     progress.update(i + 1)
    """

    def __init__(self, target, verbose="auto", unit_name="step"):
        target = check_nonneg_int(target, "target")
        self.verbose = check_verbose(verbose)
        self._delay = AUTO_PROGRESS_DELAY if self.verbose == "auto" else 0.0
        self._start = time.monotonic()
        self._bar = None
        if self.verbose != 0 and target > 0:
            self._bar = keras.utils.Progbar(target, verbose=2 if self.verbose == 2 else 1,
                                            unit_name=unit_name)

    def update(self, current):
        """Records ``current`` units done; the bar ends its line when ``current`` reaches
        the target."""
        if self._bar is not None and time.monotonic() - self._start >= self._delay:
            self._bar.update(current)


def resolve_jit_compile(jit_compile):
    """``"auto"`` -> XLA when TensorFlow sees a GPU (the device rule of ``compile()``'s
    "auto", which also weighs the model's layers and strategy; a sampling or AIS loop has
    neither); True / False (or NumPy booleans) as given; anything else is refused."""
    if isinstance(jit_compile, str) and jit_compile == "auto":
        return bool(tf.config.list_physical_devices("GPU"))
    if isinstance(jit_compile, (bool, np.bool_)):
        return bool(jit_compile)
    raise ValueError(f'jit_compile must be "auto", True or False; got {describe(jit_compile)}.')


def run_in_chunks(body, carry, start, stop, *, chunk_size=None, verbose="auto",
                  unit_name="step", jit_compile=False, on_chunk=None):
    """Runs ``carry = body(k, carry)`` for k = start, ..., stop - 1 as compiled chunks.

    One ``tf.function`` holding a ``tf.while_loop`` over k in [first, last) is traced once
    per call of this function and run once per chunk; the progress bar advances between
    chunks. Each step gets its own global k (derive its seed with :func:`step_seed`), so the
    result does not depend on ``chunk_size``: one chunk or a hundred give the same numbers.

    Args:
        body: ``(k, carry) -> carry`` with k a scalar int32 tensor; ``carry`` a tensor or a
            tuple (nest) of tensors whose shapes and dtypes the body keeps.
        carry: the initial carry.
        start, stop: Python ints, the first step and one past the last.
        chunk_size: steps per compiled call; default about ``1 / DEFAULT_NUM_CHUNKS`` of
            the run.
        verbose: see :func:`check_verbose`; the bar counts steps.
        unit_name: what the bar calls a step.
        jit_compile: "auto", True or False (:func:`resolve_jit_compile`).
        on_chunk: optional ``(last, carry) -> None``, called after each chunk with the
            number of steps done (``last``) and the carry then (snapshots, logging).

    Returns:
        The final carry (tensors).
    """
    start, stop = check_nonneg_int(start, "start"), check_nonneg_int(stop, "stop")
    jit_compile = resolve_jit_compile(jit_compile)
    if stop < start:
        raise ValueError(f"run_in_chunks needs start <= stop; got start={start}, stop={stop}.")
    num_steps = stop - start
    if chunk_size is None:
        chunk_size = max(1, math.ceil(num_steps / DEFAULT_NUM_CHUNKS))
    chunk_size = check_positive_int(chunk_size, "chunk_size")
    progress = LoopProgress(num_steps, verbose, unit_name)

    @tf.autograph.experimental.do_not_convert  # an explicit tf.while_loop; nothing to convert
    def run(carry, first, last):
        _, carry = tf.while_loop(lambda k, _: k < last, lambda k, c: (k + 1, body(k, c)),
                                 (first, carry))
        return carry

    run = tf.function(run, jit_compile=jit_compile)
    for first in range(start, stop, chunk_size):
        last = min(first + chunk_size, stop)
        carry = run(carry, tf.constant(first, tf.int32), tf.constant(last, tf.int32))
        if on_chunk is not None:
            on_chunk(last, carry)
        progress.update(last - start)
    return carry


def run_chain(step, state, num_steps, base_seed, every=None, verbose="auto",
              jit_compile=False):
    """Runs a Markov chain ``state, mean = step(state, seed)`` for ``num_steps`` steps.

    Step t gets ``step_seed(base_seed, t)``. The steps run as compiled chunks
    (:func:`run_in_chunks`: one trace per call, no host round trip per step), of ``every``
    steps when snapshots are wanted. Returns the last ``mean`` (numpy) and, if ``every`` is
    given, the stacked means every ``every`` steps (else None); ``mean`` must have the shape
    of the first tensor in ``state`` (the visible layer). ``verbose`` as in
    :func:`check_verbose` (a bar over the steps); ``jit_compile`` as in
    :func:`resolve_jit_compile`. Used by the RBM's and the DBM's ``sample``.
    """
    num_steps = check_nonneg_int(num_steps, "num_steps")
    if every is not None:
        every = check_positive_int(every, "every")
    first = tf.nest.flatten(state)[0]
    snapshots = []

    def body(t, carry):
        return step(carry[0], step_seed(base_seed, t))

    def snapshot(last, carry):
        if every and last % every == 0:
            snapshots.append(ops.convert_to_numpy(carry[1]))

    _, mean = run_in_chunks(body, (state, tf.cast(first, tf.float32)), 0, num_steps,
                            chunk_size=every, verbose=verbose, on_chunk=snapshot,
                            jit_compile=jit_compile)
    return ops.convert_to_numpy(mean), (np.stack(snapshots) if snapshots else None)


def all_binary_states(n, start=0, stop=None, dtype="float32"):
    """Rows are the binary expansions of ``start .. stop-1`` over ``n`` bits (LSB first).

    Exhaustive enumeration is what small models use instead of sampling (exact partition
    functions, the fully connected Boltzmann machine's gradient); this is the NumPy form.

    Raises:
        ValueError: unless ``0 <= start <= stop <= 2**n``, or if the result would hold
            more than ``MAX_ENUMERATED_VALUES`` numbers (enumerate in chunks instead).
    """
    n = check_nonneg_int(n, "n")
    start = check_nonneg_int(start, "start")
    stop = 2**n if stop is None else check_nonneg_int(stop, "stop")
    if not start <= stop <= 2**n:
        raise ValueError(f"all_binary_states needs 0 <= start <= stop <= 2**n = {2**n}; got "
                         f"start={start}, stop={stop}.")
    if (stop - start) * n > MAX_ENUMERATED_VALUES:
        raise ValueError(f"all_binary_states({n}) would hold {stop - start} rows of {n} bits, "
                         f"more than {MAX_ENUMERATED_VALUES} values; enumerate in chunks with "
                         "start and stop.")
    codes = np.arange(start, stop, dtype=np.int64)[:, None]
    return ((codes >> np.arange(n, dtype=np.int64)) & 1).astype(dtype)


def binary_states(n, start, size):
    """:func:`all_binary_states` as a float32 tensor of ``size`` rows from code ``start``
    (a scalar int64 tensor), for use inside a compiled loop."""
    n, size = check_nonneg_int(n, "n"), check_positive_int(size, "size")
    codes = tf.range(start, start + size, dtype=tf.int64)[:, None]
    bits = tf.bitwise.bitwise_and(tf.bitwise.right_shift(codes, tf.range(n, dtype=tf.int64)), 1)
    return tf.cast(bits, tf.float32)


def as_stateless_seed(seed: int):
    """Turns an integer seed >= 0 into the ``(2,)`` seed tensor the stateless helpers take."""
    seed = check_seed(seed)
    return tf.constant([seed % (2**31 - 1), (seed // (2**31 - 1)) % (2**31 - 1)], tf.int32)


def resolve_seed(seed, default):
    """Normalizes a ``seed`` argument: None -> ``default`` (a model's ``SeedGenerator``); an
    int -> a stateless ``(2,)`` seed; a ``SeedGenerator`` or stateless seed unchanged."""
    if seed is None:
        return default
    if isinstance(seed, keras.random.SeedGenerator) or _is_stateless_seed(seed):
        return seed
    if is_int(seed):
        return as_stateless_seed(seed)
    raise ArgumentTypeError("seed must be None, an integer >= 0, a SeedGenerator or a (2,) "
                            f"stateless seed tensor; got {describe(seed)} "
                            f"({type(seed).__name__}).")


def substream(seed, stream):
    """The seed for the ``stream``-th independent draw made with one resolved ``seed``.

    A ``SeedGenerator`` advances by itself, so it is returned as is; a stateless seed is
    folded with ``stream``, because two stateless draws with the same seed share their
    leading numbers whatever their shapes.
    """
    if isinstance(seed, keras.random.SeedGenerator):
        return seed
    return step_seed(seed, 0, stream)


def tracked_seed_generator(model, seed):
    """A ``keras.random.SeedGenerator`` for ``model`` whose state is saved with the model.

    Keras saves a model's variables, and a ``SeedGenerator``'s state is not among them, so a
    model resumed from a ``.keras`` file would replay its random stream. Setting the state
    variable as the attribute ``model.seed_state`` makes Keras track it like any variable
    attribute (public attribute tracking, no custom loader): it is then saved, restored
    and checkpointed with the weights. ``tests/test_sampling.py`` pins this behaviour.
    """
    seed = check_seed(seed, allow_none=True)
    # Named after the model, so a loaded model (which keeps its name) has the same paths.
    generator = keras.random.SeedGenerator(seed, name=f"{model.name}_seed_generator")
    model.seed_state = generator.state
    return generator
