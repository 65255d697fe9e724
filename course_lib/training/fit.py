"""The shared ``fit``: array input that is validated and fast, and Keras' meaning kept.

- :class:`GuardedFitMixin` gives a model's ``fit`` and ``compile`` the array validation,
  fast input pipeline, divergence guard and sensible ``steps_per_execution`` that every
  chapter's models share, for models with one optimizer or several (one per player).
- :func:`array_dataset` feeds an in-memory array to ``fit`` as shuffled batches gathered
  from one tensor: about 1.5 s faster per MNIST epoch than Keras' own array adapter here.
- :func:`unpaired_dataset` pairs batches of two unpaired sets of rows (two image domains).
- :func:`unpack_batch` is how every ``train_step``/``test_step`` reads its batch.
- :func:`replica_scale` makes a custom ``train_step``'s loss right under ``tf.distribute``;
  :func:`scaled_loss` adds the optimizer's loss scale (mixed precision) on top, and
  :func:`unscale_gradients` takes it out again for updates made outside the optimizer.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from course_lib import sampling
from course_lib.checks import DataError, check_positive_int
from course_lib.training.guard import DivergenceGuard

# Batches run per compiled call when the user does not say. A small model's step costs less
# than Keras' per-call host overhead (about 1 ms); 32 steps per call hide it, and callbacks
# (progress bar, guard) still see every 32nd batch.
DEFAULT_STEPS_PER_EXECUTION = 32
DEFAULT_BATCH_SIZE = 32  # Keras' own default for arrays


def default_steps_per_execution():
    """The ``steps_per_execution`` the library chooses: :data:`DEFAULT_STEPS_PER_EXECUTION`,
    or 1 inside a ``tf.distribute`` strategy's scope, where Keras 3.13's multi-step loop
    fails under ``MirroredStrategy`` ("You must feed a value for placeholder tensor ...
    multi_step_on_iterator")."""
    return 1 if tf.distribute.has_strategy() else DEFAULT_STEPS_PER_EXECUTION


def replica_scale(loss):
    """Divides a per-replica mean loss by the number of replicas in sync. Under
    ``tf.distribute`` the optimizer sums the replicas' gradients, so a ``train_step`` that
    minimizes its own loss must scale it for the step to equal the single-device step."""
    return loss / tf.distribute.get_strategy().num_replicas_in_sync


def scaled_loss(optimizer, loss):
    """The loss a custom ``train_step`` differentiates: ``loss`` (a per-replica mean) divided
    by the replicas in sync (:func:`replica_scale`) and multiplied by the optimizer's loss
    scale (``optimizer.scale_loss``: the dynamic scale of the ``LossScaleOptimizer`` that
    ``compile`` puts around the optimizer under ``mixed_float16``, or ``loss_scale_factor``),
    which ``optimizer.apply`` divides out again. Without it, mixed precision divides every
    update by the scale (2^15) and training silently stops. Call it inside the tape."""
    return optimizer.scale_loss(replica_scale(loss))


def unscale_gradients(optimizer, gradients):
    """Gradients of :func:`scaled_loss` with the loss scale divided out, for an update made
    outside ``optimizer.apply`` (FPCD's fast weights). Read the scale before ``apply``,
    which may change it."""
    factor = optimizer.scale_loss(tf.constant(1.0, tf.float32))
    return [g / tf.cast(factor, g.dtype) for g in gradients]


def sum_over_replicas(values):
    """The sum of each tensor in ``values`` over the replicas in sync (an all-reduce), the
    list unchanged on one device. State updated outside ``optimizer.apply`` (FPCD's fast
    weights) must use it: each replica's gradient of :func:`scaled_loss` is its share, and
    only their sum is the single-device gradient, the same on every replica."""
    if sampling.replica_position()[1] == 1:
        return list(values)
    return tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM,
                                                          list(values))


def unpack_batch(data, model_name="this model"):
    """``(x, y)`` from a batch as Keras delivers it (``x``, ``(x,)``, ``(x, y)`` or
    ``(x, y, sample_weight)``), via ``keras.utils.unpack_x_y_sample_weight``.

    Raises:
        ValueError: if the batch carries sample weights: no course model weights its
            examples, and ignoring them silently would train a different objective.
    """
    x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
    if sample_weight is not None:
        raise ValueError(f"{model_name} does not weight examples; got batches with sample "
                         "weights (x, y, sample_weight). Drop the weights, or resample the "
                         "data in proportion to them.")
    return x, y


def array_dataset(x, batch_size, *, y=None, shuffle=True, seed=None, epoch=0):
    """A ``tf.data`` pipeline of ``batch_size`` rows of ``x`` (and of ``y``, if given, as
    ``(x, y)`` pairs), in an order that depends only on ``(seed, epoch)``.

    The array is stored once as a tensor; each batch is one ``tf.gather`` of a slice of a
    permutation of the rows, so no per-example work is done. Every row is used once per
    pass: the last batch holds the ``len(x) % batch_size`` rows left over, when there are
    any (when there are none, batches have a static shape).

    The order of a pass is the stateless permutation keyed by ``(seed, epoch)``: with
    ``epoch`` a ``tf.Variable`` (read each time an iterator starts), setting it to the
    epoch number before each epoch gives every epoch its own order, and the same order on
    every run and after a resume; the shared ``fit`` does this. With an int ``epoch`` every
    pass has the same order. ``seed=None`` draws one at random.

    tf.data's default static optimizations are off: they rewrite the pipeline through a
    serialized graph that holds a copy of the captured array, at every iterator creation
    (twice per ``fit``, about 0.2 s for MNIST). Autotuning is off too, with a fixed
    prefetch of two batches: a gather needs no tuning, and on two cores the autotuner's
    thread took one of them for whole ``fit`` calls at random, doubling a DBM epoch's time
    (measured: 10.4 s instead of 5.3 s for one call in two or three).
    """
    batch_size = check_positive_int(batch_size, "batch_size")
    if y is not None and len(y) != len(x):
        raise ValueError(f"x and y must have the same number of rows; got {len(x)} and "
                         f"{len(y)}.")
    if seed is None:
        seed = int(np.random.default_rng().integers(2**31))
    num_rows = len(x)
    num_batches = -(-num_rows // batch_size)
    data = tf.constant(x)
    labels = None if y is None else tf.constant(y)
    key = tf.constant([int(seed) % 2**63, 0], tf.int64)

    def permutation(_):
        rows = tf.range(num_rows, dtype=tf.int64)
        if not shuffle:
            return rows
        current = tf.cast(epoch.read_value() if isinstance(epoch, tf.Variable) else epoch,
                          tf.int64)
        return tf.random.experimental.stateless_shuffle(rows, key + tf.stack([0, current]))

    whole_batches = num_rows % batch_size == 0

    def batches(order):
        def gather(k):
            i = order[k * batch_size:(k + 1) * batch_size]
            if whole_batches:
                i = tf.ensure_shape(i, (batch_size,))
            return tf.gather(data, i) if labels is None else (tf.gather(data, i),
                                                              tf.gather(labels, i))
        return tf.data.Dataset.range(num_batches).map(gather)

    options = tf.data.Options()
    options.experimental_optimization.apply_default_optimizations = False
    options.autotune.enabled = False
    return (tf.data.Dataset.from_tensors(0).map(permutation).flat_map(batches)
            .apply(tf.data.experimental.assert_cardinality(num_batches))
            .prefetch(2).with_options(options))


def unpaired_dataset(x, y, batch_size, *, shuffle=True, seed=None, epoch=0):
    """A ``tf.data`` pipeline of ``(x batch, y batch)`` pairs from two unpaired sets of rows
    of any sizes (the two domains of an image translation), as the CycleGAN authors' data
    loader pairs them: one pass runs through the larger set once, every row once, while the
    smaller set is run through again and again, each time in a new order. The rows of a pair
    have nothing to do with each other.

    Orders as in :func:`array_dataset` (stateless, keyed by ``(seed, epoch)``, a
    ``tf.Variable`` ``epoch`` read when an iterator starts; ``shuffle=False``: both sets in
    their stored order, the smaller one cycled); the last batch holds the rows left over.
    """
    batch_size = check_positive_int(batch_size, "batch_size")
    if seed is None:
        seed = int(np.random.default_rng().integers(2**31))
    sizes = (len(x), len(y))
    if min(sizes) == 0:
        raise ValueError(f"both sets need at least one row; got {sizes[0]} and {sizes[1]}.")
    num_rows = max(sizes)
    num_batches = -(-num_rows // batch_size)
    sets = (tf.constant(x), tf.constant(y))
    key = tf.constant([int(seed) % 2**63, 0], tf.int64)

    def order(size, stream):
        """Row indices of one pass for a set of ``size`` rows: ``num_rows`` of them."""
        repeats = -(-num_rows // size)
        if not shuffle:
            return tf.range(num_rows, dtype=tf.int64) % size
        current = tf.cast(epoch.read_value() if isinstance(epoch, tf.Variable) else epoch,
                          tf.int64)
        keys = tf.random.stateless_uniform((repeats, size), key + tf.stack([stream, current]))
        return tf.reshape(tf.argsort(keys, axis=1, stable=True), (-1,))[:num_rows]

    whole_batches = num_rows % batch_size == 0

    def batches(_):
        orders = [order(size, stream) for stream, size in enumerate(sizes)]

        def gather(k):
            pair = []
            for data, rows in zip(sets, orders, strict=True):
                i = rows[k * batch_size:(k + 1) * batch_size]
                if whole_batches:
                    i = tf.ensure_shape(i, (batch_size,))
                pair.append(tf.gather(data, i))
            return tuple(pair)
        return tf.data.Dataset.range(num_batches).map(gather)

    options = tf.data.Options()
    options.experimental_optimization.apply_default_optimizations = False
    options.autotune.enabled = False
    return (tf.data.Dataset.from_tensors(0).flat_map(batches)
            .apply(tf.data.experimental.assert_cardinality(num_batches))
            .prefetch(2).with_options(options))


class _EpochCounter(keras.callbacks.Callback):
    """Sets the variable that keys :func:`array_dataset`'s order to the epoch number
    before each epoch's iterator starts."""

    def __init__(self, variable):
        super().__init__()
        self.variable = variable

    def on_epoch_begin(self, epoch, logs=None):
        self.variable.assign(epoch)


def _is_array(x):
    """Array-like input: a NumPy array, a tensor, or a (nested) list of numbers."""
    return isinstance(x, (np.ndarray, list)) or tf.is_tensor(x)


_INPUT_CHECK = "course_lib input check: "   # marks our errors raised inside tf.data


def _unwrap_input_error(error):
    """The message of an input check that failed inside a ``tf.data`` pipeline, or None."""
    text = str(getattr(error, "message", error))
    if _INPUT_CHECK not in text:
        return None
    return text.split(_INPUT_CHECK, 1)[1].splitlines()[0].strip()


def host_checked(check, tensors, dtype, shape):
    """``check(*arrays)`` run on the host inside a ``tf.data`` pipeline (a
    ``tf.numpy_function``), its result a tensor of ``dtype`` and static ``shape``. A check
    that raises ``TypeError`` or ``ValueError`` stops the pipeline with an error that
    ``fit``/``evaluate`` turn back into the check's own ``DataError`` message."""
    def run(*arrays):
        try:
            return check(*arrays)
        except (TypeError, ValueError) as error:
            raise ValueError(_INPUT_CHECK + str(error)) from None

    checked = tf.numpy_function(run, tensors, dtype, stateful=False)
    checked.set_shape(shape)
    return checked


class GuardedFitMixin:
    """``keras.Model.compile`` and ``fit`` for the course's models.

    ``fit`` keeps Keras' meaning, with these differences and additions:

    - An array ``x`` is validated by the model's ``check_visible`` (shape, finite values,
      range) and fed through :func:`array_dataset`; every row is trained each epoch (the
      last batch may be smaller). ``batch_size`` defaults to 32, as in Keras; anything but
      a positive integer is refused. Epoch ``e``'s order depends only on the model's
      ``seed`` and ``e``, so a run resumed at ``initial_epoch`` sees the same orders as an
      uninterrupted one.
    - An array ``y`` (labels of a conditional model) goes along. A model that takes labels
      defines ``check_labels(y, num_rows)``, which validates them (and refuses ``y=None`` if
      it needs them); other models refuse ``y``.
    - ``validation_data`` given as arrays (``x_val`` or ``(x_val, y_val)``) is validated
      the same way; ``validation_split`` holds out the last fraction of the rows, as Keras
      does.
    - ``sample_weight`` and ``class_weight`` are refused: no course model weights examples.
    - A model names ``checkpoint_monitor`` (and ``checkpoint_mode``), the logged metric
      by which :class:`~course_lib.training.SafeCheckpoint` keeps its best model.
    - Unless ``guard=False``, :class:`DivergenceGuard` (with the model's
      ``divergence_advice``) runs first among the callbacks, so a checkpoint or any user
      callback sees only weights the guard has passed.

    ``compile`` chooses ``steps_per_execution`` (:func:`default_steps_per_execution`) unless
    given.

    A model with several optimizers (one per player) overrides :meth:`optimizer_variables`
    and :attr:`update_optimizer` (whose steps count as its updates) and adds its optimizers
    to ``get_compile_config`` (serialized, under its ``compile`` argument names) so that a
    saved model compiles again when loaded; the guard,
    checkpoints, resume and input pipeline then work for it unchanged.
    """

    divergence_advice = None
    checkpoint_monitor = None   # the logged metric SafeCheckpoint keeps the best model by
    checkpoint_mode = "min"     # ... and whether lower ("min") or higher ("max") is better

    def compile(self, *args, steps_per_execution=None, **kwargs):
        if steps_per_execution is None:
            steps_per_execution = default_steps_per_execution()
        check_positive_int(steps_per_execution, "steps_per_execution")
        return super().compile(*args, steps_per_execution=steps_per_execution, **kwargs)

    def compile_from_config(self, config):
        """Restores ``compile`` when a ``.keras`` file is loaded (Keras skips it for models
        whose ``compile`` is overridden), then builds every optimizer so that its saved
        state can be loaded into it. A model with several optimizers adds them to
        ``get_compile_config`` under its ``compile`` argument names."""
        self.compile(**keras.saving.deserialize_keras_object(config))
        if self.built:
            self._build_optimizers()

    @property
    def update_optimizer(self):
        """The optimizer whose steps count as the model's updates (read by ``Evaluator``).
        Default: ``self.optimizer``."""
        return getattr(self, "optimizer", None)

    def optimizer_variables(self):
        """``[(optimizer, variables it updates), ...]``: one pair per optimizer the model
        trains with. Default: ``self.optimizer`` over ``self.trainable_variables``."""
        optimizer = getattr(self, "optimizer", None)
        return [] if optimizer is None else [(optimizer, self.trainable_variables)]

    def array_input(self, x, y, batch_size, *, shuffle, epoch=0):
        """The ``tf.data`` pipeline that ``fit`` and ``evaluate`` feed validated arrays
        through: :func:`array_dataset` of the rows of ``x`` (with ``y``), in an order keyed by
        the model's ``seed`` and ``epoch``. A model whose data are not rows with labels (two
        unpaired domains) overrides it."""
        return array_dataset(x, batch_size, y=y, shuffle=shuffle, seed=self.seed, epoch=epoch)

    def _arrays(self, x, y, name):
        """Validated (x, y) arrays: the model's checks of rows and labels."""
        x = self.check_visible(x, name=name)
        check_labels = getattr(self, "check_labels", None)
        if check_labels is not None:        # the model says whether labels are required
            y = check_labels(y, len(x))
        elif y is not None:
            raise ValueError(f"{type(self).__name__}.fit takes no labels; got y for {name}.")
        return x, y

    def _checked_dataset(self, dataset, name):
        """``dataset`` with every batch put through the model's own checks (the same
        ``check_visible`` and ``check_labels`` as arrays), run on the host as the batches
        are produced: a bad batch stops ``fit`` with the same message an array would get."""
        check_labels = getattr(self, "check_labels", None)
        spec = dataset.element_spec
        parts = len(spec) if isinstance(spec, tuple) else 1
        if parts > 3 or (parts == 3 and spec[2] is not None):
            raise ValueError(f"{type(self).__name__} does not weight examples; {name} yields "
                             f"{parts}-tuples (x, y, sample_weight). Yield x or (x, y).")
        has_labels = parts >= 2 and spec[1] is not None
        if check_labels is not None and not has_labels:
            check_labels(None, None)           # raises if the model needs labels
        if check_labels is None and has_labels:
            raise ValueError(f"{type(self).__name__}.fit takes no labels; {name} yields "
                             "(x, y) pairs.")

        def check(*element):
            x = element[0]
            checked = host_checked(lambda a: self.check_visible(a, f"a batch of {name}"), [x],
                                   tf.float32, x.shape)
            if not has_labels:
                return checked
            y = element[1]
            labels = host_checked(lambda a, b: check_labels(b, len(a), f"the labels of {name}"),
                                  [x, y], tf.int32, y.shape)
            return checked, labels

        return dataset.map(check)

    def _validation_arrays(self, validation_data):
        if isinstance(validation_data, tuple) and 1 <= len(validation_data) <= 3 \
                and all(part is None or _is_array(part) for part in validation_data):
            if len(validation_data) == 3 and validation_data[2] is not None:
                raise ValueError(f"{type(self).__name__} does not weight examples; got "
                                 "validation_data with sample weights.")
            return self._arrays(validation_data[0], (list(validation_data) + [None])[1],
                                "validation_data")
        if _is_array(validation_data):
            return self._arrays(validation_data, None, "validation_data")
        return None

    def fit(self, x=None, y=None, *, batch_size=None, epochs=1, shuffle=True,
            validation_split=0.0, validation_data=None, validation_batch_size=None,
            sample_weight=None, class_weight=None, callbacks=None, guard=True, **kwargs):
        name = type(self).__name__
        if sample_weight is not None or class_weight is not None:
            raise ValueError(f"{name} does not weight examples; got "
                             f"{'sample_weight' if sample_weight is not None else 'class_weight'}"
                             ". Drop it, or resample the data in proportion to the weights.")
        check_positive_int(epochs, "epochs")
        initial_epoch = check_positive_int(kwargs.get("initial_epoch", 0), "initial_epoch",
                                           minimum=0)
        if initial_epoch >= epochs:
            raise ValueError(f"initial_epoch={initial_epoch} leaves nothing to train with "
                             f"epochs={epochs}: epochs counts from the start of training, "
                             f"so to train {epochs} more pass epochs={initial_epoch + epochs}.")
        if batch_size is not None:
            check_positive_int(batch_size, "batch_size")
        if validation_split and not (isinstance(validation_split, float)
                                     and 0.0 < validation_split < 1.0):
            raise ValueError(f"validation_split must be a float in (0, 1); got "
                             f"{validation_split!r}.")
        if _is_array(x):
            batch_size = batch_size or DEFAULT_BATCH_SIZE
            x, y = self._arrays(x, y, "x")
            if validation_split:
                if validation_data is not None:
                    raise ValueError("give validation_data or validation_split, not both.")
                held_out = int(len(x) * validation_split)
                if held_out < 1 or held_out == len(x):
                    raise ValueError(f"validation_split={validation_split} of {len(x)} rows "
                                     f"holds out {held_out}; both parts need a row.")
                split = len(x) - held_out   # the last rows, before shuffling, as in Keras
                validation_data = (x[split:], None if y is None else y[split:])
                x, y = x[:split], None if y is None else y[:split]
            epoch = tf.Variable(initial_epoch, dtype=tf.int64, trainable=False)
            x = self.array_input(x, y, batch_size, shuffle=shuffle, epoch=epoch)
            y, batch_size = None, None
            callbacks = [*(callbacks or []), _EpochCounter(epoch)]
        else:
            if validation_split:
                raise ValueError(f"validation_split needs array input; got "
                                 f"{type(x).__name__}. Pass validation_data instead.")
            x = self._input(x, y, None, "x")
            y = None
        validation = None
        if isinstance(validation_data, tf.data.Dataset):
            validation_data = self._checked_dataset(validation_data, "validation_data")
        elif validation_data is not None:
            validation = self._validation_arrays(validation_data)
            if validation is None:
                raise TypeError("validation_data must be an array, a tuple (x_val, y_val) of "
                                "arrays, or a tf.data.Dataset; got "
                                f"{type(validation_data).__name__}.")
        if validation is not None:
            validation_data = self.array_input(
                validation[0], validation[1], validation_batch_size or DEFAULT_BATCH_SIZE,
                shuffle=False)
            validation_batch_size = None
        self._build_optimizers()
        callbacks = list(callbacks or [])
        if guard and not any(isinstance(c, DivergenceGuard) for c in callbacks):
            callbacks.insert(0, DivergenceGuard(advice=self.divergence_advice))
        return self._unwrapped(lambda: super(GuardedFitMixin, self).fit(
            x, y, batch_size=batch_size, epochs=epochs, shuffle=False,
            validation_data=validation_data, validation_batch_size=validation_batch_size,
            callbacks=callbacks, **kwargs))

    def _input(self, x, y, batch_size, name):
        """Array or tf.data input, checked by the model's own checks: an array is fed in
        order through :func:`array_dataset` (``evaluate``); a dataset gets the same checks on
        every batch (``fit`` and ``evaluate``). Returns the dataset."""
        if batch_size is not None:
            check_positive_int(batch_size, "batch_size")
        if _is_array(x):
            x, y = self._arrays(x, y, name)
            return self.array_input(x, y, batch_size or DEFAULT_BATCH_SIZE, shuffle=False)
        if isinstance(x, tf.data.Dataset):
            if y is not None:
                raise ValueError("y must be None when x is a tf.data.Dataset: the dataset "
                                 "yields the labels.")
            return self._checked_dataset(x, name)
        raise TypeError(f"{type(self).__name__} takes x as an array (NumPy, tensor or list) or "
                        f"a tf.data.Dataset; got {type(x).__name__}.")

    def _unwrapped(self, run):
        """Runs ``run()``; an input check that failed inside tf.data becomes a DataError."""
        try:
            return run()
        except tf.errors.OpError as error:
            message = _unwrap_input_error(error)
            if message is None:
                raise
            raise DataError(message) from None

    def evaluate(self, x=None, y=None, *, batch_size=None, sample_weight=None, **kwargs):
        """Keras' ``evaluate``, with the input checked as in ``fit`` (labels included) and
        sample weights refused."""
        if sample_weight is not None:
            raise ValueError(f"{type(self).__name__} does not weight examples; got "
                             "sample_weight.")
        data = self._input(x, y, batch_size, "x")
        return self._unwrapped(lambda: super(GuardedFitMixin, self).evaluate(data, **kwargs))

    def _build_optimizers(self):
        """Builds every optimizer's slots before the first trace: if that trace fails (bad
        input), a later ``fit`` would otherwise create them inside a traced function."""
        for optimizer, variables in self.optimizer_variables():
            if not optimizer.built:
                with self.distribute_strategy.scope():
                    optimizer.build(variables)
