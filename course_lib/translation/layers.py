"""The pieces of CycleGAN's machinery that are not networks or losses.

- :func:`instance_normalization`: the paper's non-affine instance normalization (Ulyanov,
  Vedaldi & Lempitsky 2016), each image's each channel normalized over its pixels,

      (8.5) IN(h)_{n,i,j,c} = (h_{n,i,j,c} - mu_{n,c}) / sqrt(sigma^2_{n,c} + eps),

  with mu and sigma^2 the mean and (biased) variance over (i, j) and eps = 1e-5, no learned
  scale or shift (PyTorch's ``InstanceNorm2d`` defaults, which the authors' code uses). It
  is Keras' own ``GroupNormalization`` with one group per channel.
- :class:`ImageHistory`: the history of generated images a discriminator is shown
  (Shrivastava et al. 2017; CycleGAN keeps the last 50), so that it judges the generator's
  recent past and not only its latest step, which damps oscillation.
- :class:`SingleChannelConv2D`: ``keras.layers.Conv2D`` with one output channel (a
  generator's last layer on grey images, a PatchGAN's verdicts), computed as a depthwise
  convolution summed over the input channels,

      out_{n,i,j} = sum_c (h_{n,.,.,c} * K_{.,.,c})_{i,j} + b,

  the same sum as the convolution in another order (equal up to float rounding), with the
  same kernel, bias, initializers and config. TensorFlow's CPU kernels take the gradient of a
  convolution with a single output channel slowly: it was the largest cost of the course's
  CycleGAN training step (``benchmarks/bench_cyclegan.py``), and the depthwise form computes
  the same values and gradients faster.

The history's rule is the authors' ``ImagePool.query``, image by image: while the pool holds
fewer than ``size`` images, a new image is stored and shown; after that, with probability
1/2 a new image is shown as it is, and otherwise it replaces a uniformly chosen stored image,
which is shown in its place. :func:`history_update` is that rule for a whole batch at once,
with no data-dependent shapes (so it compiles under XLA): a swapped-in image can be swapped
out again by a later image of the same batch, exactly as in the sequential loop.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from course_lib import sampling
from course_lib.checks import check_positive_int, check_seed

INSTANCE_NORM_EPSILON = 1e-5


def instance_normalization(name=None):
    """Eq. (8.5) as a layer: ``GroupNormalization(groups=-1)`` (one group per channel) with
    epsilon 1e-5 and no learned scale or centre, the paper's instance normalization."""
    return keras.layers.GroupNormalization(groups=-1, epsilon=INSTANCE_NORM_EPSILON,
                                           center=False, scale=False, name=name)


def history_update(pool, count, images, coins, slots):
    """One query of the history, the authors' sequential rule for a batch (module docstring).

    Args:
        pool: (size, d) stored images (rows at and after ``count`` unused).
        count: scalar int, the number of images stored so far (at most size).
        images: (n, d) new images, in the order the sequential rule takes them.
        coins: (n,) uniform [0, 1) draws: a new image on a full pool is swapped in if its
            coin is above 1/2 (the authors' ``random.uniform(0, 1) > 0.5``).
        slots: (n,) ints in [0, size): the stored image a swapped-in image replaces.

    Returns:
        ``(shown (n, d), new pool (size, d), new count)``.
    """
    pool = ops.convert_to_tensor(pool)
    images = ops.cast(images, pool.dtype)
    size, n = ops.shape(pool)[0], ops.shape(images)[0]
    count = ops.cast(count, "int32")
    order = ops.arange(n, dtype="int32")
    position = count + order                           # where image i goes while filling
    filling = position < size
    fills = ops.cast(ops.logical_and(
        filling[None, :], ops.arange(size, dtype="int32")[:, None] == position[None, :]),
        pool.dtype)                                     # (size, n): slot s filled by image i
    filled = ops.sum(fills, axis=1, keepdims=True)
    pool = pool * (1.0 - filled) + ops.matmul(fills, images)

    swap = ops.logical_and(ops.logical_not(filling), coins > 0.5)
    slots = ops.cast(slots, "int32")
    # earlier[i, j]: image j < i was swapped into the slot image i takes out
    earlier = ops.logical_and(ops.logical_and(swap[None, :], slots[None, :] == slots[:, None]),
                              order[None, :] < order[:, None])
    latest = ops.max(ops.where(earlier, order[None, :], -1), axis=1)        # -1: none
    from_pool = ops.matmul(ops.one_hot(slots, size, dtype=pool.dtype), pool)
    from_batch = ops.matmul(ops.one_hot(ops.maximum(latest, 0), n, dtype=pool.dtype), images)
    taken_out = ops.where((latest >= 0)[:, None], from_batch, from_pool)
    shown = ops.where(swap[:, None], taken_out, images)

    # the last image swapped into each slot stays there
    later = ops.logical_and(ops.logical_and(swap[None, :], slots[None, :] == slots[:, None]),
                            order[None, :] > order[:, None])
    last = ops.logical_and(swap, ops.logical_not(ops.any(later, axis=1)))
    writes = ops.cast(ops.logical_and(
        last[None, :], ops.arange(size, dtype="int32")[:, None] == slots[None, :]), pool.dtype)
    written = ops.sum(writes, axis=1, keepdims=True)
    pool = pool * (1.0 - written) + ops.matmul(writes, images)
    return shown, pool, ops.minimum(count + n, size)


@keras.saving.register_keras_serializable(package="course_lib")
class SingleChannelConv2D(keras.layers.Conv2D):
    """``keras.layers.Conv2D(1, kernel_size, ...)`` computed as a depthwise convolution summed
    over the input channels (module docstring): the kernel (kh, kw, C, 1) is at once the
    convolution's and a depthwise kernel with one output per input channel.

    Args:
        kernel_size, strides, padding, activation, use_bias, ...: as ``keras.layers.Conv2D``.
        filters: must be 1 (it is in the config so that the layer round-trips).

    Unequal strides (which TensorFlow's depthwise kernels refuse) and a compute dtype other
    than float32 (mixed precision: the depthwise form would sum in float16) take Keras'
    convolution.
    """

    def __init__(self, kernel_size, *, filters=1, **kwargs):
        if isinstance(filters, bool) or filters != 1:
            raise ValueError(f"SingleChannelConv2D has one output channel: filters must be 1; "
                             f"got {filters!r} (use keras.layers.Conv2D for more).")
        if kwargs.get("groups", 1) != 1:
            raise ValueError(f"SingleChannelConv2D has no groups: groups must be 1; got "
                             f"{kwargs['groups']!r}.")
        super().__init__(1, kernel_size, **kwargs)

    def convolution_op(self, inputs, kernel):
        # unequal strides: TensorFlow's depthwise kernels refuse them. Half-precision compute
        # (mixed precision, a GPU setting): Keras' convolution accumulates in float32, the
        # depthwise form would round every channel's map and the kernel's gradient to float16.
        if self.strides[0] != self.strides[1] or self.compute_dtype != "float32":
            return super().convolution_op(inputs, kernel)
        channels = -1 if self.data_format == "channels_last" else 1
        return ops.sum(ops.depthwise_conv(inputs, kernel, strides=self.strides,
                                          padding=self.padding, data_format=self.data_format,
                                          dilation_rate=self.dilation_rate),
                       axis=channels, keepdims=True)


@keras.saving.register_keras_serializable(package="course_lib")
class ImageHistory(keras.layers.Layer):
    """The last generated images a discriminator sees (module docstring), saved with the model.

    Calling it on a batch of generated images returns the batch the discriminator is shown
    and updates the stored images. Its draws come from a stateless stream keyed by ``seed``
    and a query counter, identical on every replica under ``tf.distribute``: the replicas
    gather their images, apply one update to the whole batch, and each takes back its own
    rows, so the history is one state, as on one device.

    Args:
        size: images kept (the paper's 50); 0 is not allowed (use no history instead).
        seed: int seed of the draws (None: a random one, stored in the config).
    """

    def __init__(self, size=50, *, seed=None, **kwargs):
        kwargs.setdefault("dtype", "float32")     # stored images stay float32
        super().__init__(**kwargs)
        self.size = check_positive_int(size, "size")
        seed = check_seed(seed, allow_none=True)
        self.seed = int(np.random.default_rng().integers(2**31)) if seed is None else seed

    def build(self, input_shape):
        width = int(np.prod(input_shape[1:]))
        self.images = self.add_weight(shape=(self.size, width), initializer="zeros",
                                      trainable=False, name="images")
        self.count = self.add_weight(shape=(), initializer="zeros", dtype="int32",
                                     trainable=False, name="count")
        self.queries = self.add_weight(shape=(), initializer="zeros", dtype="int32",
                                       trainable=False, name="queries")

    def call(self, images):
        shape = ops.shape(images)
        flat = ops.reshape(ops.cast(images, "float32"), (shape[0], -1))
        every = sampling.gather_replica_rows(flat)
        n = ops.shape(every)[0]
        key = tf.random.experimental.stateless_fold_in(
            tf.constant([self.seed, 8], tf.int32), ops.convert_to_tensor(self.queries))
        coins = tf.random.stateless_uniform((n,), key)
        slots = tf.random.stateless_uniform((n,), key + tf.constant([0, 1]), minval=0,
                                            maxval=self.size, dtype=tf.int32)
        shown, pool, count = history_update(self.images, self.count, every, coins, slots)
        self.images.assign(pool)
        self.count.assign(count)
        self.queries.assign_add(1)
        # this replica's rows back (the blocks may differ in size: sampling.replica_offset)
        start, _ = sampling.replica_offset(shape[0])
        return ops.cast(ops.reshape(shown[start:start + shape[0]], shape), images.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "size": self.size, "seed": self.seed}
