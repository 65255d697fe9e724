"""Chapter 8's pieces against independent oracles: instance normalization and the losses
against NumPy formulas, the image history against a pure-Python copy of the CycleGAN
authors' sequential ``ImagePool.query``, the PatchGAN's receptive field by autodiff, the
networks' shapes, the input checks' messages, and the translation scores on a hand-made
classifier and a hand-made translation whose every score is known exactly."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from course_lib.checks import DataError, DataTypeError
from course_lib.evaluation import translation as scores
from course_lib.evaluation.classifier import FEATURES_LAYER
from course_lib.translation import (
    CycleGAN,
    ImageHistory,
    SingleChannelConv2D,
    cyclegan_networks,
    history_update,
    instance_normalization,
    losses,
    patch_discriminator,
    resnet_generator,
    unit_networks,
)
from course_lib.translation.base import check_translation_images
from course_lib.translation.networks import check_image_shape


# ----- instance normalization (Eq. 8.5) ----------------------------------------------------
def test_instance_normalization_against_numpy():
    # per image and per channel over (H, W), biased variance, eps = 1e-5. Channels of very
    # different means and scales (one of variance 1e-4, where eps = 1e-5 vs 1e-3 or 1e-6
    # shows) catch batch statistics, layer norm (pooled channels), the unbiased variance and
    # a wrong epsilon.
    rng = np.random.default_rng(0)
    h = (rng.normal(size=(3, 6, 5, 4)) * [1.0, 0.01, 5.0, 0.3] + [0.0, 0.05, -4.0, 2.0])
    h[1] *= 3.0                                             # images differ in scale too
    h = h.astype(np.float32)
    layer = instance_normalization()
    got = keras.ops.convert_to_numpy(layer(h))
    x = h.astype(np.float64)
    mean = x.mean(axis=(1, 2), keepdims=True)
    var = ((x - mean) ** 2).mean(axis=(1, 2), keepdims=True)
    np.testing.assert_allclose(got, (x - mean) / np.sqrt(var + 1e-5), rtol=1e-5, atol=1e-5)
    assert layer.weights == [] and layer.trainable_weights == []   # no learned scale/shift


# ----- losses (Eqs. 8.1-8.3, 8.7) ---------------------------------------------------------
@pytest.fixture
def loss_arrays():
    rng = np.random.default_rng(1)
    # the two domains differ in batch size, so a term paired with the other domain's batch
    # fails to broadcast instead of passing unnoticed
    return {"x": rng.uniform(-1, 1, (3, 4, 4, 1)), "cx": rng.uniform(-1, 1, (3, 4, 4, 1)),
            "y": rng.uniform(-1, 1, (5, 4, 4, 1)), "cy": rng.uniform(-1, 1, (5, 4, 4, 1)),
            "real": rng.normal(1.0, 0.7, (3, 2, 2, 1)), "fake": rng.normal(0.2, 0.7, (5, 2, 2, 1)),
            "mu": rng.normal(0.0, 2.0, (4, 2, 2, 3))}


def l1(a, b):
    return np.mean(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)))


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16"])
def test_losses_against_numpy(loss_arrays, dtype):
    # Catches a sum instead of a mean, the missing 1/2 of the discriminator's loss, swapped
    # targets (real to 0, fakes to 1), a cycle or identity loss missing one domain's term,
    # a KL with the 1/2 (the authors penalize mean(mu^2)), and a squared L1.
    a = {k: v.astype(dtype) for k, v in loss_arrays.items()}
    f = {k: v.astype(np.float64) for k, v in a.items()}     # the values actually passed
    expected = {
        "l1_distance": (losses.l1_distance(a["x"], a["cx"]), l1(f["x"], f["cx"])),
        "cycle_loss": (losses.cycle_loss(a["x"], a["cx"], a["y"], a["cy"]),
                       l1(f["cx"], f["x"]) + l1(f["cy"], f["y"])),
        "identity_loss": (losses.identity_loss(a["x"], a["cx"], a["y"], a["cy"]),
                          l1(f["cx"], f["x"]) + l1(f["cy"], f["y"])),
        "discriminator_loss": (losses.discriminator_loss(a["real"], a["fake"]),
                               0.5 * (np.mean((f["real"] - 1) ** 2) + np.mean(f["fake"] ** 2))),
        "generator_loss": (losses.generator_loss(a["fake"]), np.mean((f["fake"] - 1) ** 2)),
        "latent_penalty": (losses.latent_penalty(a["mu"]), np.mean(f["mu"] ** 2)),
    }
    for name, (got, want) in expected.items():
        assert keras.backend.standardize_dtype(got.dtype) == "float32", name
        assert tuple(got.shape) == (), name
        np.testing.assert_allclose(float(got), want, rtol=2e-6, err_msg=name)


def test_loss_targets_are_exact_at_the_optimum():
    # a discriminator that says 1 to reals and 0 to fakes has loss 0, a fooled one 1; a
    # generator whose fakes score 1 has loss 0
    ones, zeros = np.ones((2, 3, 3, 1)), np.zeros((4, 3, 3, 1))
    assert float(losses.discriminator_loss(ones, zeros)) == 0.0
    assert float(losses.discriminator_loss(zeros, ones)) == 1.0
    assert float(losses.generator_loss(ones)) == 0.0
    assert float(losses.generator_loss(zeros)) == 1.0


# ----- the image history: the authors' ImagePool.query, image by image ---------------------
def image_pool_query(pool, count, images, coins, slots):
    """The CycleGAN authors' ``ImagePool.query`` as a Python loop, with the draws given."""
    pool = [row.copy() for row in pool]
    shown = []
    for image, coin, slot in zip(images, coins, slots, strict=True):
        if count < len(pool):
            pool[count] = image.copy()
            count += 1
            shown.append(image)
        elif coin > 0.5:
            shown.append(pool[slot].copy())
            pool[slot] = image.copy()
        else:
            shown.append(image)
    return np.array(shown), np.array(pool), count


def assert_history_matches_the_loop(pool, count, images, coins, slots):
    pool, images = pool.astype(np.float32), images.astype(np.float32)
    coins, slots = np.asarray(coins, np.float32), np.asarray(slots, np.int32)
    shown, new_pool, new_count = (keras.ops.convert_to_numpy(t) for t in history_update(
        pool, count, images, coins, slots))
    want_shown, want_pool, want_count = image_pool_query(pool, count, images, coins, slots)
    np.testing.assert_array_equal(shown, want_shown)
    np.testing.assert_array_equal(new_pool, want_pool)
    assert int(new_count) == want_count


def distinct_images(n, d=3, start=0):
    """n images whose every pixel is their number: any mix-up shows."""
    return np.repeat(np.arange(start, start + n, dtype=np.float32)[:, None], d, axis=1)


@pytest.mark.parametrize(("size", "count", "n", "coins", "slots"), [
    # filling from empty, the batch overflows the pool (count + n > size): 5 stored, then
    # image 5 swaps out image 2 (stored by this very batch), image 6 is shown (coin 0.2),
    # and image 7 swaps out image 5 from slot 2 again
    (5, 0, 8, [0.9] * 5 + [0.9, 0.2, 0.7], [0, 0, 0, 0, 0, 2, 1, 2]),
    # half full (2 of 4), 3 new images: two fill slots 2, 3, the third meets a full pool
    (4, 2, 3, [0.1, 0.1, 0.99], [3, 3, 3]),
    # full pool, slot 1 taken three times in one batch (each swap returns the previous
    # swapper), coin exactly 0.5 (not swapped, '> 0.5'), coins just above and below
    (4, 4, 6, [0.9, 0.8, 0.5, 0.6, 0.4999, 0.5001], [1, 1, 3, 1, 0, 3]),
    # full pool, nothing swapped; a batch larger than the pool, everything swapped
    (3, 3, 4, [0.0, 0.1, 0.5, 0.3], [0, 1, 2, 0]),
    (2, 2, 5, [0.9] * 5, [0, 1, 0, 0, 1]),
    # empty pool filled exactly
    (3, 0, 3, [0.9] * 3, [0, 1, 2]),
])
def test_history_update_matches_the_sequential_loop(size, count, n, coins, slots):
    # Catches a batch rule that lets every image see the pool as it was before the batch
    # (image 7 of the first case would show image 2 again, and the first case's slot 2 keep
    # image 5), a '>=' coin test, a fill that ignores count, and a count past size.
    pool = distinct_images(size, start=100) * np.where(np.arange(size) < count, 1, -1)[:, None]
    assert_history_matches_the_loop(pool, count, distinct_images(n), coins, slots)


def test_history_update_matches_the_sequential_loop_on_random_cases():
    rng = np.random.default_rng(2)
    for _ in range(40):
        size = int(rng.integers(1, 6))
        count = int(rng.integers(0, size + 1))
        n = int(rng.integers(1, 9))
        coins = rng.choice([0.1, 0.5, 0.7, 0.95], size=n)
        assert_history_matches_the_loop(rng.normal(size=(size, 4)), count,
                                        rng.normal(size=(n, 4)), coins,
                                        rng.integers(0, size, size=n))


def test_image_history_layer_fills_then_swaps_conserving_images():
    size, shape = 5, (4, 3, 2)
    history = ImageHistory(size, seed=7)
    rng = np.random.default_rng(3)
    batches = [rng.normal(size=(3, *shape)).astype(np.float32) for _ in range(12)]
    swapped = 0
    for q, batch in enumerate(batches):
        before = keras.ops.convert_to_numpy(history.images).copy() if q else None
        count_before = int(history.count) if q else 0
        shown = history(batch)
        assert tuple(shown.shape) == batch.shape and shown.dtype == tf.float32
        shown = keras.ops.convert_to_numpy(shown).reshape(3, -1)
        flat = batch.reshape(3, -1)
        assert int(history.queries) == q + 1
        pool = keras.ops.convert_to_numpy(history.images)
        if q == 0:        # filling: the first 3 stored in order and shown as they are
            np.testing.assert_array_equal(pool[:3], flat)
            np.testing.assert_array_equal(shown, flat)
            assert int(history.count) == 3
            continue
        assert int(history.count) == min(size, count_before + 3)
        if count_before == size:
            # nothing made or lost: what is stored and shown is what was stored and given
            got = sorted(map(tuple, np.concatenate([pool, shown])))
            assert got == sorted(map(tuple, np.concatenate([before, flat])))
            swapped += int(np.sum(np.any(shown != flat, axis=1)))
    # 30 images met a full pool; each is swapped with probability 1/2 (a swap with its own
    # slot's image never shows as unchanged here: all images are distinct): 15 +- 4 sd
    assert 4 <= swapped <= 26


def test_image_history_same_seed_same_outputs_and_dtype_under_mixed_precision():
    x = np.random.default_rng(4).normal(size=(6, 2, 2, 1)).astype(np.float32)
    a, b, c = ImageHistory(2, seed=1), ImageHistory(2, seed=1), ImageHistory(2, seed=2)
    outs = {k: [keras.ops.convert_to_numpy(h(x * (i + 1))) for i in range(6)]
            for k, h in (("a", a), ("b", b), ("c", c))}
    for u, v in zip(outs["a"], outs["b"], strict=True):
        np.testing.assert_array_equal(u, v)
    assert any(not np.array_equal(u, v) for u, v in zip(outs["a"], outs["c"], strict=True))
    mixed = ImageHistory(2, seed=1, dtype="mixed_float16")
    out = mixed(x.astype(np.float16))
    assert out.dtype == tf.float16 and tuple(out.shape) == x.shape
    assert mixed.images.dtype == "float32"                  # stored images stay float32
    assert a.trainable_weights == []


# ----- SingleChannelConv2D ----------------------------------------------------------------
def conv_pair(channels, kernel, *, dtype="float32", **kwargs):
    """Keras' Conv2D(1, ...) and SingleChannelConv2D with the same random weights (the bias
    nonzero, so that a lost bias shows)."""
    reference = keras.layers.Conv2D(1, kernel, dtype=dtype, **kwargs)
    ours = SingleChannelConv2D(kernel, dtype=dtype, **kwargs)
    shape = (None, 9, 10, channels)
    reference.build(shape)
    ours.build(shape)
    assert [tuple(w.shape) for w in ours.weights] == [tuple(w.shape) for w in reference.weights]
    rng = np.random.default_rng(channels)
    weights = [rng.normal(size=tuple(w.shape)).astype(np.float32) for w in reference.weights]
    reference.set_weights(weights)
    ours.set_weights(weights)
    return reference, ours


def value_and_gradients(layer, x, upstream, jit_compile=False):
    """The layer's output and the gradients of sum(output * upstream) in x and every weight."""
    @tf.function(jit_compile=jit_compile)
    def run(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            out = layer(x)
            loss = tf.reduce_sum(tf.cast(out, tf.float32) * upstream)
        return [out, *tape.gradient(loss, [x, *layer.trainable_weights])]
    return [keras.ops.convert_to_numpy(t).astype(np.float64) for t in run(tf.constant(x))]


@pytest.mark.parametrize(("channels", "kernel", "kwargs"), [
    (16, 7, {"padding": "same", "activation": "tanh"}),     # the generators' last layer
    (64, 3, {"padding": "same"}),                           # the PatchGAN's verdicts
    (5, 4, {"strides": 2, "padding": "same", "use_bias": False}),
    (3, (3, 2), {"strides": (2, 1), "padding": "valid", "activation": "relu"}),
    (1, 2, {"padding": "valid"}),
])
@pytest.mark.parametrize("jit_compile", [False, True])
def test_single_channel_conv_equals_keras_conv(channels, kernel, kwargs, jit_compile):
    # values and the gradients in the input, the kernel and the bias equal Keras' convolution
    # with the same weights, with and without XLA. Images 9 x 10 (not square) and a 3 x 2
    # kernel catch transposed axes; a sum over the wrong axis, the kernel read as
    # (kh, kw, 1, C), or a lost bias, stride or activation fails.
    reference, ours = conv_pair(channels, kernel, **kwargs)
    rng = np.random.default_rng(10 + channels)
    x = rng.normal(size=(3, 9, 10, channels)).astype(np.float32)
    upstream = rng.normal(size=tuple(reference(x).shape)).astype(np.float32)
    want = value_and_gradients(reference, x, upstream)
    got = value_and_gradients(ours, x, upstream, jit_compile)
    assert len(got) == len(want) == 2 + len(reference.trainable_weights)
    names = ["output", "input gradient", "kernel gradient", "bias gradient"][:len(want)]
    for name, g, w in zip(names, got, want, strict=True):
        assert g.shape == w.shape, name
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5 * np.abs(w).max(), err_msg=name)


def test_single_channel_conv_under_mixed_precision():
    # float16 compute with float32 weights, as under the mixed_float16 policy: Keras'
    # convolution (float32 accumulation), so values and gradients are exactly those of
    # keras.layers.Conv2D under the same policy, and within float16 rounding of float32.
    # The depthwise form here would round each channel's map to float16 before the sum: its
    # output and kernel gradient are about twice as far from float32 (measured), and the
    # models' mixed-precision step no longer matches their float32 step.
    reference, _ = conv_pair(16, 7, padding="same")
    keras_half, ours = conv_pair(16, 7, padding="same", dtype="mixed_float16")
    assert ours.kernel.dtype == "float32" and ours.compute_dtype == "float16"
    x = np.random.default_rng(2).uniform(-1, 1, (2, 9, 10, 16)).astype(np.float32)
    upstream = np.random.default_rng(3).normal(size=(2, 9, 10, 1)).astype(np.float32)
    got = value_and_gradients(ours, x.astype(np.float16), upstream)
    same = value_and_gradients(keras_half, x.astype(np.float16), upstream)
    want = value_and_gradients(reference, x, upstream)
    assert ours(x.astype(np.float16)).dtype == tf.float16
    assert len(got) == len(same) == len(want) == 4
    for g, s, w in zip(got, same, want, strict=True):
        np.testing.assert_array_equal(g, s)
        np.testing.assert_allclose(g, w, rtol=0, atol=5e-3 * np.abs(w).max())


@pytest.mark.parametrize(("dtype", "strides", "depthwise"), [
    ("float32", 1, True), ("float32", 2, True), ("float32", (2, 1), False),
    ("mixed_float16", 1, False),
])
def test_single_channel_conv_computes_depthwise_where_it_should(dtype, strides, depthwise):
    # the point of the layer is the depthwise form: a layer that always took Keras'
    # convolution would pass every equality test above and save nothing
    layer = SingleChannelConv2D(3, strides=strides, padding="same", dtype=dtype)
    spec = tf.TensorSpec((None, 8, 8, 4), layer.compute_dtype)
    graph = tf.function(layer).get_concrete_function(spec).graph
    kinds = {op.type for op in graph.get_operations()}
    assert ("DepthwiseConv2dNative" in kinds) == depthwise, kinds
    assert ("Conv2D" in kinds) == (not depthwise), kinds


def test_single_channel_conv_config_round_trip_and_refusals():
    layer = SingleChannelConv2D(7, strides=2, padding="same", activation="tanh", name="out")
    config = layer.get_config()
    assert config["filters"] == 1 and config["kernel_size"] == (7, 7)
    again = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(again) is SingleChannelConv2D and again.get_config() == config
    with pytest.raises(ValueError, match="filters must be 1; got 3"):
        SingleChannelConv2D(7, filters=3)
    with pytest.raises(ValueError, match="groups must be 1; got 2"):
        SingleChannelConv2D(7, groups=2)


# ----- networks ---------------------------------------------------------------------------
def without_instance_norm(model):
    """The same convolutions (shared weights) with every instance normalization removed."""
    def clone(layer):
        if isinstance(layer, keras.layers.GroupNormalization):
            return keras.layers.Identity(name=layer.name)
        return layer
    return keras.models.clone_model(model, clone_function=clone)


def input_gradient(model, x, i, j):
    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        out = model(x)[0, i, j, 0]
    return np.abs(tape.gradient(out, x).numpy()[0, :, :, 0])


def test_patch_discriminator_receptive_field_is_18x18():
    # The convolutions' receptive field: 4x4/2, 4x4/2, 3x3/1 give 3 -> 8 -> 18 pixels. The
    # centre patch (3, 3) of the 7x7 grid sees rows and columns 5..22 ('same' padding puts
    # 1 pixel before each stride-2 window); a corner patch is clipped by the border.
    # Autodiff finds it: the gradient of one output w.r.t. the image (leaky ReLUs never zero
    # a gradient). The instance normalization is removed for this: its statistics pool the
    # whole feature map, so in the full network every output depends on every pixel (below).
    keras.utils.set_random_seed(0)
    network = patch_discriminator((28, 28, 1), filters=4)
    x = np.random.default_rng(5).uniform(-1, 1, (1, 28, 28, 1)).astype(np.float32)
    assert tuple(network(x).shape) == (1, 7, 7, 1)
    convolutions = without_instance_norm(network)
    expected = np.zeros((28, 28), bool)
    expected[5:23, 5:23] = True
    np.testing.assert_array_equal(input_gradient(convolutions, x, 3, 3) > 0, expected)
    corner = np.zeros((28, 28), bool)
    corner[:11, :11] = True                                  # rows -7..10 clipped to 0..10
    np.testing.assert_array_equal(input_gradient(convolutions, x, 0, 0) > 0, corner)
    # with instance normalization, one patch's verdict depends on all 784 pixels, mostly
    # on its 18x18 window
    full = input_gradient(network, x, 3, 3)
    assert (full > 0).all()
    assert full[expected].mean() > 3 * full[~expected].mean()


def test_generator_maps_images_to_images_in_tanh_range():
    keras.utils.set_random_seed(1)
    generator = resnet_generator((28, 28, 1), filters=4, residual_blocks=1)
    x = np.random.default_rng(6).uniform(-1, 1, (2, 28, 28, 1)).astype(np.float32)
    out = keras.ops.convert_to_numpy(generator(x))
    assert out.shape == (2, 28, 28, 1)
    assert out.min() >= -1.0 and out.max() <= 1.0 and np.isfinite(out).all()
    # images are processed independently (instance norm, no batch statistics)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(generator(x[:1])), out[:1],
                               atol=1e-5)


@pytest.mark.parametrize("image_shape", [(8, 8, 1), (8, 12, 3)])
def test_network_output_shapes(image_shape):
    # a non-square, three-channel shape catches height and width (or channels) confused
    h, w, c = image_shape
    x = np.zeros((2, *image_shape), np.float32)
    cyc = cyclegan_networks(image_shape, generator_filters=2, residual_blocks=1,
                            discriminator_filters=2)
    for name in ("generator_xy", "generator_yx"):
        assert tuple(cyc[name](x).shape) == (2, h, w, c), name
    for name in ("discriminator_x", "discriminator_y"):
        assert tuple(cyc[name](x).shape) == (2, h // 4, w // 4, 1), name
    unit = unit_networks(image_shape, filters=2, latent_channels=3, discriminator_filters=2)
    for domain in ("x", "y"):
        features = unit[f"encoder_{domain}"](x)
        assert tuple(features.shape) == (2, h // 4, w // 4, 8)
        mean = unit["shared_encoder"](features)
        assert tuple(mean.shape) == (2, h // 4, w // 4, 3)
        back = unit["shared_decoder"](mean)
        assert tuple(back.shape) == (2, h // 4, w // 4, 8)
        assert tuple(unit[f"decoder_{domain}"](back).shape) == (2, h, w, c)
        assert tuple(unit[f"discriminator_{domain}"](x).shape) == (2, h // 4, w // 4, 1)
    # one-channel outputs (every discriminator's verdicts, the generators' grey images) are
    # SingleChannelConv2D; a colour generator ends in Keras' Conv2D
    for network in [cyc["discriminator_x"], unit["discriminator_y"],
                    *([cyc["generator_xy"], unit["decoder_x"]] if c == 1 else [])]:
        assert type(network.layers[-1]) is SingleChannelConv2D, network.name
    if c != 1:
        assert type(cyc["generator_xy"].layers[-1]) is keras.layers.Conv2D
    # the two domains' fronts are distinct networks; the shared parts are one each
    assert unit["encoder_x"] is not unit["encoder_y"]
    assert unit["decoder_x"] is not unit["decoder_y"]


@pytest.mark.parametrize(("bad", "error", "match"), [
    ((28, 28), ValueError, "image_shape must hold at least 3 integers"),
    ((28, 28, 1, 1), ValueError, r"image_shape must be \(height, width, channels\)"),
    ((30, 28, 1), ValueError, r"multiples of 4 .*got \(30, 28\)"),
    ((28, 30, 1), ValueError, r"multiples of 4 .*got \(28, 30\)"),
    ("28", TypeError, "image_shape must be a list or tuple of integers"),
    ((28, 28, 0), ValueError, "image_shape"),
    ((28.0, 28, 1), TypeError, "image_shape"),
])
def test_check_image_shape_refuses(bad, error, match):
    with pytest.raises(error, match=match):
        check_image_shape(bad)


def test_check_image_shape_accepts_a_list():
    assert check_image_shape([8, 12, 3]) == (8, 12, 3)


# ----- input checks of the translation models ---------------------------------------------
SHAPE = (28, 28, 1)


@pytest.mark.parametrize(("images", "error", "match"), [
    (np.zeros((2, 28, 28)), DataError, r"got shape \(2, 28, 28\)\. Add the channel axis, "
                                       r"e\.g\. x\[\.\.\., None\]"),
    (np.zeros((2, 28, 28, 3)), DataError, r"must have 1 channel\(s\), shape \(n, 28, 28, 1\); "
                                          r"got 3 channel\(s\)"),
    (np.zeros((2, 32, 32, 1)), DataError, r"must be 28x28 images, shape \(n, 28, 28, 1\); got "
                                          r"shape \(2, 32, 32, 1\)"),
    (np.zeros((2, 784)), DataError, r"shape \(n, 28, 28, 1\); got shape \(2, 784\)\.$"),
    (np.full((2, 28, 28, 1), 0.5) + np.eye(28)[None, :, :, None] * 0.6, DataError,
     r"must lie in \[-1, 1\].*got values in \[0\.5, 1\.1\]\. Map images in \[0, 1\] with "
     r"2 \* x - 1"),
    (np.full((1, 28, 28, 1), -1.5), DataError, r"\[-1\.5, -1\.5\]"),
    (np.where(np.eye(28)[None, :, :, None] > 0, np.nan, 0.0), DataError,
     "must be finite; got 28 NaN or inf values"),
    (np.zeros((0, 28, 28, 1)), DataError, "at least one image"),
    (np.full((1, 28, 28, 1), "a"), DataTypeError, "real-valued images; got dtype <U1"),
    ([[1, 2], [3]], DataError, "NumPy cannot read"),
])
def test_check_translation_images_messages(images, error, match):
    with pytest.raises(error, match=match) as caught:
        check_translation_images(images, SHAPE, "the images")
    assert str(caught.value).startswith("the images ")


def test_check_translation_images_accepts_and_converts():
    out = check_translation_images(np.zeros((2, 28, 28, 1), np.float64) - 1.0, SHAPE, "x")
    assert out.dtype == np.float32 and out.shape == (2, 28, 28, 1)
    assert check_translation_images(np.ones((1, 28, 28, 1), np.int64), SHAPE, "x").max() == 1


@pytest.fixture(scope="module")
def tiny_cyclegan():
    nets = cyclegan_networks((8, 8, 1), generator_filters=2, residual_blocks=0,
                             discriminator_filters=2)
    return CycleGAN(**nets, image_shape=(8, 8, 1), history_size=2, seed=0)


def test_translation_model_input_checks(tiny_cyclegan):
    model = tiny_cyclegan
    good = np.zeros((3, 8, 8, 1), np.float32)
    with pytest.raises(DataError, match=r"images to translate must be images of shape "
                                        r"\(n, 8, 8, 1\).*x\[\.\.\., None\]"):
        model.translate(np.zeros((3, 8, 8)), "x_to_y")
    with pytest.raises(DataError, match=r"images to cycle must lie in \[-1, 1\].*2 \* x - 1"):
        model.cycle(good + 2.0, "y")
    with pytest.raises(ValueError, match=r"direction must be one of \('x_to_y', 'y_to_x'\)"):
        model.translate(good, "x_to_z")
    with pytest.raises(ValueError, match=r"domain must be one of \('x', 'y'\)"):
        model.cycle(good, "z")
    with pytest.raises(ValueError, match="needs both domains"):
        model.fit(good, verbose=0)
    with pytest.raises(DataError, match=r"y of x \(domain Y\) must be 8x8 images"):
        model.fit(good, np.zeros((3, 28, 28, 1), np.float32), verbose=0)
    with pytest.raises(DataError, match=r"x \(domain X\) must be finite"):
        model.fit(good + np.nan, good, verbose=0)
    with pytest.raises(ValueError, match="takes no validation_split"):
        model.fit(good, good, validation_split=0.5, verbose=0)
    # and good input goes through, in the tanh range
    out = model.translate(good, "y_to_x", batch_size=2)
    assert out.shape == (3, 8, 8, 1) and out.dtype == np.float32 and np.abs(out).max() <= 1


# ----- translation scores on a hand-made classifier and translation ------------------------
BLOCK = 78     # class k is "block k bright": pixels 78 k .. 78 k + 77 of the 784


def block_classifier():
    """(n, 784) -> features = the sum of each of 10 pixel blocks, logits = features: its
    prediction is the brightest block, known exactly."""
    w = np.zeros((784, 10), np.float32)
    for k in range(10):
        w[k * BLOCK:(k + 1) * BLOCK, k] = 1.0
    model = keras.Sequential([keras.Input((784,)),
                              keras.layers.Dense(10, name=FEATURES_LAYER),
                              keras.layers.Dense(10, name="logits")])
    model.get_layer(FEATURES_LAYER).set_weights([w, np.zeros(10, np.float32)])
    model.get_layer("logits").set_weights([np.eye(10, dtype=np.float32),
                                           np.zeros(10, np.float32)])
    return model


def block_images(blocks):
    """Images (n, 28, 28, 1) in [-1, 1]: -1 everywhere, +1 on block ``blocks[i]``."""
    flat = -np.ones((len(blocks), 784), np.float32)
    for i, k in enumerate(blocks):
        flat[i, k * BLOCK:(k + 1) * BLOCK] = 1.0
    return flat.reshape(-1, 28, 28, 1)


class RollingTranslation:
    """A hand-made translation: ``x_to_y`` moves the bright block up by one (k -> k + 1),
    ``y_to_x`` down by one; its cycle adds exactly 0.2 everywhere. Records its calls."""

    def __init__(self):
        self.calls = []

    def translate(self, images, direction, batch_size=256):
        self.calls.append(("translate", direction, batch_size, len(images)))
        shift = {"x_to_y": 1, "y_to_x": -1}[direction]
        flat = np.asarray(images, np.float32).reshape(len(images), 784).copy()
        flat[:, :780] = np.roll(flat[:, :780], shift * BLOCK, axis=1)
        return flat.reshape(images.shape)

    def cycle(self, images, domain):
        self.calls.append(("cycle", domain, len(images)))
        return np.asarray(images, np.float32) + 0.2


@pytest.fixture(scope="module")
def classifier():
    return block_classifier()


def test_the_hand_made_classifier_reads_the_bright_block(classifier):
    x = scores.classifier_images(block_images(range(10)))
    assert scores.accuracy(classifier, x, np.arange(10)) == 1.0
    assert scores.accuracy(classifier, x, (np.arange(10) + 1) % 10) == 0.0


def test_label_preservation_known_exactly(classifier):
    # labels 0..9; images 0-2 show their own block, images 3-9 the block one below. Source
    # only: 3 of 10 right. Translated x -> y (block up by one): images 3-9 right, 0-2 wrong.
    # y -> x (block down): none right. Catches the two scores swapped, the direction not
    # passed on, and the translated images scored against permuted labels.
    labels = np.arange(10)
    blocks = [k if k < 3 else (k - 1) % 10 for k in labels]
    images = block_images(blocks)
    model = RollingTranslation()
    up = scores.label_preservation(model, "x_to_y", images, labels, classifier, batch_size=7)
    assert (up.direction, up.source_only, up.translated) == ("x_to_y", 0.3, 0.7)
    down = scores.label_preservation(model, "y_to_x", images, labels, classifier)
    assert (down.direction, down.source_only, down.translated) == ("y_to_x", 0.3, 0.0)
    assert model.calls == [("translate", "x_to_y", 7, 10), ("translate", "y_to_x", 256, 10)]
    assert str(up) == "x_to_y: source only 30.00%, translated 70.00%"


def test_translation_scores_refuse_bad_directions_and_labels(classifier):
    images, model = block_images(range(4)), RollingTranslation()
    with pytest.raises(ValueError, match=r"direction must be one of \('x_to_y', 'y_to_x'\); "
                                         r"got 'x_to_z'"):
        scores.label_preservation(model, "x_to_z", images, np.arange(4), classifier)
    with pytest.raises(ValueError, match="direction must be one of"):
        scores.adaptation_accuracy(model, "y", images, np.arange(4), images, np.arange(4))
    with pytest.raises(DataError, match=r"labels must be 4 integer class labels"):
        scores.label_preservation(model, "x_to_y", images, np.arange(3), classifier)
    with pytest.raises(DataError, match=r"labels must be 4 integer class labels"):
        scores.label_preservation(model, "x_to_y", images, np.arange(4.0), classifier)
    assert model.calls == []                     # refused before translating anything


def test_cycle_error_is_half_the_mean_absolute_difference():
    model = RollingTranslation()
    images = np.random.default_rng(7).uniform(-1, 0.8, (5, 28, 28, 1)).astype(np.float32)
    assert scores.cycle_error(model, images, "y") == pytest.approx(0.1, abs=1e-6)
    assert model.calls == [("cycle", "y", 5)]


def test_classifier_images_maps_the_range_and_flattens_in_c_order():
    x = np.zeros((2, 3, 4, 2), np.float32)
    x[0, 0, 0, 0], x[0, 0, 0, 1], x[1, 2, 3, 1], x[1, 1, 2, 0] = -1.0, 1.0, 1.0, 0.5
    out = scores.classifier_images(x)
    expected = (x.reshape(2, 24).astype(np.float64) + 1) / 2
    assert out.shape == (2, 24) and out.dtype == np.float32
    np.testing.assert_array_equal(out, expected)
    assert out[0, 0] == 0.0 and out[0, 1] == 1.0 and out[1, 23] == 1.0   # -1 -> 0, 1 -> 1
    for bad, match in ((np.zeros((2, 784)), r"\(n, height, width, channels\)"),
                       (x + 1.5, r"lie in \[-1, 1\]"), (np.where(x > 0.7, np.nan, x), "finite")):
        with pytest.raises(DataError, match=match):
            scores.classifier_images(bad)


def frechet_oracle(a, b):
    """Eq. (5.6) with SciPy's matrix square root (shares no code with the library)."""
    from scipy import linalg

    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = linalg.sqrtm(cov_a @ cov_b).real
    return float(np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a + cov_b - 2 * root))


def test_feature_distance_on_block_sums(classifier):
    # the hand-made classifier's features are block sums of (x + 1) / 2: a NumPy function
    rng = np.random.default_rng(8)
    a = rng.uniform(-1, 1, (40, 28, 28, 1)).astype(np.float32)
    b = np.clip(rng.uniform(-1, 1, (30, 28, 28, 1)) * 0.7 + 0.2, -1, 1).astype(np.float32)

    def features(images):
        flat = (images.reshape(len(images), 784).astype(np.float64) + 1) / 2
        return flat[:, :780].reshape(len(images), 10, BLOCK).sum(axis=2)

    want = frechet_oracle(features(a), features(b))
    got = scores.feature_distance(classifier, a, b)
    assert want > 1.0
    assert got == pytest.approx(want, rel=1e-4)
    assert scores.feature_distance(classifier, a, a) == pytest.approx(0.0, abs=1e-3)


def majority_block_trainer(calls):
    """A stand-in for ``train_digit_classifier`` that learns exactly: each bright block reads
    as the label most often seen with it in training (a block classifier whose logits are
    the block-label counts). Records what it was trained on."""
    def train(images, labels, **kwargs):
        calls.append((np.array(images), np.array(labels), kwargs))
        blocks = images[:, :780].reshape(len(images), 10, BLOCK).sum(axis=2).argmax(axis=1)
        counts = np.zeros((10, 10), np.float32)
        np.add.at(counts, (blocks, labels), 1.0)
        model = block_classifier()
        model.get_layer("logits").set_weights([counts, np.zeros(10, np.float32)])
        return model
    return train


@pytest.mark.parametrize(("direction", "translated"), [("x_to_y", 1.0), ("y_to_x", 0.0)])
def test_adaptation_accuracy_known_exactly(monkeypatch, direction, translated):
    # Source digits show the block one below their label, target digits their own block.
    # Trained on the untranslated source, a classifier reads block b as b + 1: 0 right on
    # the target. Trained on the source moved up by one (x -> y), it reads b as b: all right;
    # moved down (y -> x), b as b + 2: none. Catches the two classifiers swapped, scoring on
    # the source instead of the target, the target labels or the direction not passed on,
    # and training on [-1, 1] images instead of classifier intensities.
    calls = []
    monkeypatch.setattr(scores, "train_digit_classifier", majority_block_trainer(calls))
    labels = np.arange(30) % 10
    source = block_images((labels - 1) % 10)
    target_labels = np.arange(20)[::-1] % 10
    target = block_images(target_labels)
    model = RollingTranslation()
    result = scores.adaptation_accuracy(model, direction, source, labels, target,
                                        target_labels, epochs=3, seed=5)
    assert (result.direction, result.source_only, result.translated) == (direction, 0.0,
                                                                         translated)
    assert [c[:2] for c in model.calls] == [("translate", direction)]
    (base_x, base_y, base_kw), (moved_x, moved_y, moved_kw) = calls
    np.testing.assert_array_equal(base_x, scores.classifier_images(source))
    np.testing.assert_array_equal(moved_x, scores.classifier_images(
        RollingTranslation().translate(source, direction)))
    np.testing.assert_array_equal(base_y, labels)
    np.testing.assert_array_equal(moved_y, labels)
    assert base_kw == moved_kw == {"epochs": 3, "seed": 5}


def test_adaptation_accuracy_reuses_a_known_baseline(monkeypatch):
    # a known source-only accuracy is passed through and its classifier is not trained again
    calls = []
    monkeypatch.setattr(scores, "train_digit_classifier", majority_block_trainer(calls))
    labels = np.arange(10)
    source, target = block_images((labels - 1) % 10), block_images(labels)
    result = scores.adaptation_accuracy(RollingTranslation(), "x_to_y", source, labels, target,
                                        labels, source_only=0.25)
    assert (result.source_only, result.translated) == (0.25, 1.0)
    assert len(calls) == 1
    model = RollingTranslation()
    for bad in (1.5, -0.1, "0.3", float("nan")):
        with pytest.raises(ValueError, match="source_only must be"):
            scores.adaptation_accuracy(model, "x_to_y", source, labels, target, labels,
                                       source_only=bad)
    assert model.calls == [] and len(calls) == 1


def test_train_digit_classifier_smoke():
    # one epoch on 20 images: the course's architecture, scoring in [0, 1]
    labels = np.arange(20) % 10
    x = scores.classifier_images(block_images(labels))
    saved = np.random.get_state()
    try:
        model = scores.train_digit_classifier(x, labels, epochs=1, batch_size=10, seed=3)
    finally:
        np.random.set_state(saved)
    assert model.output_shape == (None, 10)
    assert [layer.name for layer in model.layers][-2:] == [FEATURES_LAYER, "logits"]
    assert 0.0 <= scores.accuracy(model, x, labels) <= 1.0


def test_train_digit_classifier_leaves_the_global_random_stream_alone(monkeypatch):
    # The library never sets global seeds (STYLE.md, "Keras 3 and TFP"): training a
    # classifier for a score must not reset the caller's global NumPy stream. (The network
    # is replaced by a one-layer stand-in to keep this fast; only the seeding is tested.)
    def tiny(seed=None):
        return keras.Sequential([keras.Input((784,)), keras.layers.Dense(10)])

    monkeypatch.setattr(scores, "mnist_classifier_network", tiny)
    labels = np.arange(10)
    x = scores.classifier_images(block_images(labels))
    saved = np.random.get_state()
    try:
        np.random.seed(123)
        expected_next = np.random.random()
        np.random.seed(123)
        scores.train_digit_classifier(x, labels, epochs=1, batch_size=10, seed=3)
        after = np.random.random()
    finally:
        np.random.set_state(saved)
    assert after == expected_next, "train_digit_classifier reseeded NumPy's global stream"


def test_train_digit_classifier_is_reproducible_from_its_seed_alone():
    # The same seed gives the same classifier whatever Keras' global state; another seed,
    # another one (a classifier drawing on the global generator would differ between calls).
    labels = np.arange(10)
    x = scores.classifier_images(block_images(labels))
    first = scores.train_digit_classifier(x, labels, epochs=2, batch_size=4, seed=5)
    keras.utils.set_random_seed(99)
    second = scores.train_digit_classifier(x, labels, epochs=2, batch_size=4, seed=5)
    other = scores.train_digit_classifier(x, labels, epochs=2, batch_size=4, seed=6)
    for a, b in zip(first.get_weights(), second.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(first.get_weights(), other.get_weights(),
                                                         strict=True))


@pytest.mark.parametrize(("images", "kwargs", "error", "match"), [
    (np.zeros((4, 100)), {}, DataError, r"\(n, 784\) intensities in \[0, 1\]"),
    (np.full((4, 784), 1.5), {}, DataError, r"\(n, 784\) intensities in \[0, 1\]"),
    (np.zeros((4, 784)), {"epochs": 0}, ValueError, "epochs"),
    (np.zeros((4, 784)), {"labels": np.zeros(3, int)}, DataError, "4 integer class labels"),
])
def test_train_digit_classifier_refuses_bad_input(images, kwargs, error, match):
    labels = kwargs.pop("labels", np.zeros(len(images), int))
    with pytest.raises(error, match=match):
        scores.train_digit_classifier(images, labels, **kwargs)
