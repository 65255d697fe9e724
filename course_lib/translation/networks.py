"""The networks of Chapter 8, sized for 28x28 digits.

- :func:`resnet_generator`: CycleGAN's generator (Johnson et al. 2016's residual network),
  ``c7s1-k, d2k, d4k, R4k x B, u2k, uk, c7s1-C`` in the paper's notation: a 7x7
  convolution, two stride-2 downsamplings (28 -> 14 -> 7), B residual blocks at 7x7, two
  stride-2 transposed convolutions back to 28x28 and a 7x7 convolution with tanh. Every
  convolution but the last is followed by instance normalization and ReLU.
- :func:`patch_discriminator`: a PatchGAN for 28x28: two stride-2 4x4 convolutions (the
  second instance-normalized) with leaky ReLU, then a 3x3 convolution to one output per
  patch: a 7x7 grid of real/fake verdicts, each seeing an 18x18 window through its
  convolutions (the paper's 70x70 PatchGAN judges 256x256 images in overlapping 70x70
  patches). As in the paper's, the instance normalization's statistics pool the whole
  feature map, so every verdict also depends a little on the rest of the image.
- :func:`unit_networks`: UNIT's two encoder-generator pairs for 28x28, whose last encoder
  layer and first generator layer are shared: domain-specific fronts (28 -> 14 -> 7), one
  shared residual block and a 1x1 convolution to the latent mean (7x7xc), one shared
  residual block of the generator, domain-specific backs (7 -> 14 -> 28, tanh), and a
  PatchGAN per domain.

Deviations from the papers, stated: convolutions pad with zeros, not by reflection (Keras
has no reflection-padding layer; on 28x28 images with dark borders the two coincide almost
everywhere); the PatchGAN's first convolution, the one layer without normalization, has no
bias (with one, TensorFlow 2.20's graph optimizer fails to fuse convolution, bias and leaky
ReLU in the gradient of a multi-step training loop and prints an error on every run; the
bias would only shift where each of its channels bends). Sizes are the course's (small
enough to train on two CPU cores), not the papers' 256x256 ones.

Every layer with one output channel (the generators' last convolution on grey images, the
PatchGAN's verdicts) is a :class:`~course_lib.translation.layers.SingleChannelConv2D`: the
same convolution, kernel and bias as ``keras.layers.Conv2D``, computed in an order that
TensorFlow's CPU kernels differentiate faster.
"""

from __future__ import annotations

import keras

from course_lib.checks import check_int_sequence, check_nonneg_int, check_positive_int
from course_lib.translation.layers import SingleChannelConv2D, instance_normalization


def check_image_shape(image_shape):
    """``image_shape`` as a tuple (height, width, channels) of positive ints, with height and
    width divisible by 4 (two stride-2 halvings)."""
    shape = tuple(check_int_sequence(image_shape, "image_shape", min_length=3))
    if len(shape) != 3:
        raise ValueError(f"image_shape must be (height, width, channels); got {shape}.")
    if shape[0] % 4 or shape[1] % 4:
        raise ValueError(f"image height and width must be multiples of 4 (two stride-2 "
                         f"halvings); got {shape[:2]}.")
    return shape


def _conv_norm_act(h, filters, kernel, strides, name, *, transpose=False, negative_slope=0.0,
                   norm=True):
    layer = keras.layers.Conv2DTranspose if transpose else keras.layers.Conv2D
    h = layer(filters, kernel, strides=strides, padding="same", use_bias=not norm,
              name=f"{name}_conv")(h)
    if norm:
        h = instance_normalization(name=f"{name}_in")(h)
    if negative_slope:
        return keras.layers.LeakyReLU(negative_slope=negative_slope, name=f"{name}_lrelu")(h)
    return keras.layers.ReLU(name=f"{name}_relu")(h)


def _image_output(h, channels, name):
    """The generators' last layer: a 7x7 convolution to the image's channels with tanh
    (:class:`SingleChannelConv2D` for grey images: the same map, computed faster)."""
    if channels == 1:
        return SingleChannelConv2D(7, padding="same", activation="tanh", name=name)(h)
    return keras.layers.Conv2D(channels, 7, padding="same", activation="tanh", name=name)(h)


def _residual_block(h, filters, name):
    """Two 3x3 convolutions with instance normalization, added to the input."""
    r = _conv_norm_act(h, filters, 3, 1, f"{name}_a")
    r = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_b_conv")(r)
    r = instance_normalization(name=f"{name}_b_in")(r)
    return keras.layers.Add(name=f"{name}_add")([h, r])


def resnet_generator(image_shape=(28, 28, 1), *, filters=16, residual_blocks=3,
                     name="generator"):
    """CycleGAN's generator (module docstring) from and to images of ``image_shape`` in
    [-1, 1]; ``filters`` is k, the width of the first convolution."""
    shape = check_image_shape(image_shape)
    k = check_positive_int(filters, "filters")
    blocks = check_nonneg_int(residual_blocks, "residual_blocks")
    inputs = keras.Input(shape)
    h = _conv_norm_act(inputs, k, 7, 1, f"{name}_c7s1")
    h = _conv_norm_act(h, 2 * k, 3, 2, f"{name}_d{2 * k}")
    h = _conv_norm_act(h, 4 * k, 3, 2, f"{name}_d{4 * k}")
    for b in range(blocks):
        h = _residual_block(h, 4 * k, f"{name}_r{b}")
    h = _conv_norm_act(h, 2 * k, 3, 2, f"{name}_u{2 * k}", transpose=True)
    h = _conv_norm_act(h, k, 3, 2, f"{name}_u{k}", transpose=True)
    outputs = _image_output(h, shape[2], f"{name}_out")
    return keras.Model(inputs, outputs, name=name)


def patch_discriminator(image_shape=(28, 28, 1), *, filters=32, name="discriminator"):
    """A PatchGAN for 28x28 images (module docstring): one raw least-squares output per
    patch, shape (n, H/4, W/4, 1)."""
    shape = check_image_shape(image_shape)
    k = check_positive_int(filters, "filters")
    inputs = keras.Input(shape)
    # No bias in the first convolution (module docstring): with one, TensorFlow's graph
    # optimizer fails to fuse convolution + bias + leaky ReLU in the gradient and logs an error.
    h = keras.layers.Conv2D(k, 4, strides=2, padding="same", use_bias=False,
                            name=f"{name}_c{k}_conv")(inputs)
    h = keras.layers.LeakyReLU(negative_slope=0.2, name=f"{name}_c{k}_lrelu")(h)
    h = _conv_norm_act(h, 2 * k, 4, 2, f"{name}_c{2 * k}", negative_slope=0.2)
    outputs = SingleChannelConv2D(3, padding="same", name=f"{name}_patches")(h)
    return keras.Model(inputs, outputs, name=name)


def cyclegan_networks(image_shape=(28, 28, 1), *, generator_filters=16, residual_blocks=3,
                      discriminator_filters=32):
    """The four networks of a :class:`~course_lib.translation.CycleGAN`, as keyword
    arguments: ``generator_xy`` (G: X -> Y), ``generator_yx`` (F: Y -> X),
    ``discriminator_x`` and ``discriminator_y``."""
    def generator(name):
        return resnet_generator(image_shape, filters=generator_filters,
                                residual_blocks=residual_blocks, name=name)

    def discriminator(name):
        return patch_discriminator(image_shape, filters=discriminator_filters, name=name)

    return {"generator_xy": generator("G_xy"), "generator_yx": generator("F_yx"),
            "discriminator_x": discriminator("D_x"), "discriminator_y": discriminator("D_y")}


def unit_networks(image_shape=(28, 28, 1), *, filters=16, latent_channels=32,
                  discriminator_filters=32):
    """UNIT's eight networks (module docstring), as keyword arguments of
    :class:`~course_lib.translation.UNIT`: ``encoder_x``, ``encoder_y`` (the domain fronts,
    image -> 7x7x4k features), ``shared_encoder`` (features -> latent mean, 7x7xc),
    ``shared_decoder`` (latent -> features), ``decoder_x``, ``decoder_y`` (features ->
    image), ``discriminator_x`` and ``discriminator_y``."""
    shape = check_image_shape(image_shape)
    k = check_positive_int(filters, "filters")
    c = check_positive_int(latent_channels, "latent_channels")
    grid = (shape[0] // 4, shape[1] // 4)

    def front(name):
        inputs = keras.Input(shape)
        h = _conv_norm_act(inputs, k, 7, 1, f"{name}_c7s1", negative_slope=0.2)
        h = _conv_norm_act(h, 2 * k, 3, 2, f"{name}_d{2 * k}", negative_slope=0.2)
        h = _conv_norm_act(h, 4 * k, 3, 2, f"{name}_d{4 * k}", negative_slope=0.2)
        return keras.Model(inputs, h, name=name)

    def back(name):
        inputs = keras.Input((*grid, 4 * k))
        h = _conv_norm_act(inputs, 2 * k, 3, 2, f"{name}_u{2 * k}", transpose=True)
        h = _conv_norm_act(h, k, 3, 2, f"{name}_u{k}", transpose=True)
        outputs = _image_output(h, shape[2], f"{name}_out")
        return keras.Model(inputs, outputs, name=name)

    features = keras.Input((*grid, 4 * k))
    mean = keras.layers.Conv2D(c, 1, name="shared_encoder_mean")(
        _residual_block(features, 4 * k, "shared_encoder_r0"))
    shared_encoder = keras.Model(features, mean, name="shared_encoder")
    latent = keras.Input((*grid, c))
    h = _conv_norm_act(latent, 4 * k, 1, 1, "shared_decoder_in")
    shared_decoder = keras.Model(latent, _residual_block(h, 4 * k, "shared_decoder_r0"),
                                 name="shared_decoder")
    return {"encoder_x": front("E_x"), "encoder_y": front("E_y"),
            "shared_encoder": shared_encoder, "shared_decoder": shared_decoder,
            "decoder_x": back("G_x"), "decoder_y": back("G_y"),
            "discriminator_x": patch_discriminator(shape, filters=discriminator_filters,
                                                   name="D_x"),
            "discriminator_y": patch_discriminator(shape, filters=discriminator_filters,
                                                   name="D_y")}
