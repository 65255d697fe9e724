"""Tests of course_lib.data: MNIST finding, loading and checksums, binarizations, toys."""

import shutil

import numpy as np
import pytest

from course_lib import data

TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.fixture(scope="module")
def mnist_file():
    path = data._repo_data_path()
    assert path.is_file(), f"the repository copy of MNIST is missing at {path}"
    return path


@pytest.fixture(scope="module")
def mnist(mnist_file):
    return data.load_mnist(mnist_file, allow_download=False)


@pytest.fixture(scope="module")
def fixed_splits(mnist_file):
    return data.mnist_splits(mnist_file, allow_download=False)


@pytest.fixture
def nowhere(tmp_path, monkeypatch):
    """No repository copy, no $COURSE_LIB_DATA and an empty Keras home."""
    keras_home = tmp_path / "keras_home"
    keras_home.mkdir()
    monkeypatch.setattr(data, "_repo_data_path", lambda: tmp_path / "no_repo" / "mnist.npz")
    monkeypatch.delenv(data.DATA_ENV_VAR, raising=False)
    monkeypatch.setenv("KERAS_HOME", str(keras_home))
    return keras_home


def _write_npz(path, arrays):
    np.savez(path, **arrays)
    return path


# ----- loading and checksums --------------------------------------------------------------


def test_load_mnist_shapes_dtypes_and_label_counts(mnist):
    assert sorted(mnist) == ["x_test", "x_train", "y_test", "y_train"]
    assert mnist["x_train"].shape == (60000, 28, 28)
    assert mnist["x_test"].shape == (10000, 28, 28)
    assert mnist["y_train"].shape == (60000,) and mnist["y_test"].shape == (10000,)
    assert all(a.dtype == np.uint8 for a in mnist.values())
    assert np.bincount(mnist["y_train"]).tolist() == TRAIN_COUNTS
    assert np.bincount(mnist["y_test"]).tolist() == TEST_COUNTS
    for key, a in mnist.items():
        assert data._sha256(a) == data.MNIST_ARRAY_SHA256[key]


def test_explicit_path_wins(tmp_path, mnist_file, monkeypatch):
    copy = tmp_path / "elsewhere" / "mnist.npz"
    copy.parent.mkdir()
    shutil.copy(mnist_file, copy)
    monkeypatch.setenv(data.DATA_ENV_VAR, str(tmp_path))
    assert data.find_mnist(copy, allow_download=False) == copy
    assert data.find_mnist(copy.parent, allow_download=False) == copy


def test_explicit_missing_path_raises_naming_it(tmp_path):
    missing = tmp_path / "nope.npz"
    with pytest.raises(data.DataError, match="nope.npz"):
        data.find_mnist(missing)
    with pytest.raises(data.DataError, match="mnist.npz"):
        data.find_mnist(tmp_path)  # a directory without the file


def test_nothing_found_names_every_place(nowhere, tmp_path):
    with pytest.raises(data.DataError) as info:
        data.find_mnist(allow_download=False)
    message = str(info.value)
    assert str(tmp_path / "no_repo" / "mnist.npz") in message
    assert data.DATA_ENV_VAR in message
    assert str(nowhere / "datasets" / "mnist.npz") in message
    assert data.MNIST_URL in message and "allow_download=False" in message


def test_failed_download_is_reported(nowhere, monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("network unreachable")

    monkeypatch.setattr(data.keras.utils, "get_file", refuse)
    with pytest.raises(data.DataError, match="network unreachable"):
        data.find_mnist(allow_download=True)


def test_env_var_and_keras_cache_are_searched(nowhere, tmp_path, mnist_file, monkeypatch):
    cached = nowhere / "datasets" / "mnist.npz"
    cached.parent.mkdir()
    shutil.copy(mnist_file, cached)
    assert data.find_mnist(allow_download=False) == cached
    env_dir = tmp_path / "course_data"
    env_dir.mkdir()
    shutil.copy(mnist_file, env_dir / "mnist.npz")
    monkeypatch.setenv(data.DATA_ENV_VAR, str(env_dir))
    assert data.find_mnist(allow_download=False) == env_dir / "mnist.npz"


def test_truncated_file(tmp_path, mnist_file):
    bad = tmp_path / "truncated.npz"
    bad.write_bytes(mnist_file.read_bytes()[:100_000])
    with pytest.raises(data.DataError, match="truncated.npz"):
        data.load_mnist(bad)


def test_damaged_bytes_inside_the_archive(tmp_path, mnist_file):
    raw = bytearray(mnist_file.read_bytes())
    raw[len(raw) // 2 : len(raw) // 2 + 64] = bytes(64)
    bad = tmp_path / "damaged.npz"
    bad.write_bytes(bytes(raw))
    with pytest.raises(data.DataError, match="damaged.npz"):
        data.load_mnist(bad)


def test_text_file(tmp_path):
    bad = tmp_path / "mnist.npz"
    bad.write_text("<html>404 Not Found</html>\n")
    with pytest.raises(data.DataError, match="not a readable .npz"):
        data.load_mnist(bad)


def test_missing_key(tmp_path, mnist):
    bad = _write_npz(tmp_path / "three.npz", {k: v for k, v in mnist.items() if k != "y_test"})
    with pytest.raises(data.DataError, match=r"lacks the arrays \['y_test'\]"):
        data.load_mnist(bad)


def test_wrong_dtype(tmp_path, mnist):
    arrays = dict(mnist, y_train=mnist["y_train"].astype(np.int64))
    bad = _write_npz(tmp_path / "int64.npz", arrays)
    with pytest.raises(data.DataError, match="y_train.*int64.*expected.*uint8"):
        data.load_mnist(bad)


def test_one_changed_pixel_fails_checksum(tmp_path, mnist):
    x_train = mnist["x_train"].copy()
    x_train[123, 14, 14] ^= 1
    bad = _write_npz(tmp_path / "edited.npz", dict(mnist, x_train=x_train))
    with pytest.raises(data.DataError, match="Checksum mismatch for x_train") as info:
        data.load_mnist(bad)
    assert data.MNIST_ARRAY_SHA256["x_train"] in str(info.value)
    assert data.load_mnist(bad, verify=False)["x_train"][123, 14, 14] == x_train[123, 14, 14]


# ----- splits and binarization ------------------------------------------------------------


def test_split_sizes_and_types(fixed_splits, mnist):
    sizes = {k: len(v) for k, v in fixed_splits.items()}
    assert sizes == {
        "x_train": 50000, "y_train": 50000, "x_valid": 10000,
        "y_valid": 10000, "x_test": 10000, "y_test": 10000,
    }  # fmt: skip
    assert fixed_splits["x_train"].shape == (50000, 784)
    assert all(fixed_splits[k].dtype == np.float32 for k in ("x_train", "x_valid", "x_test"))
    assert all(fixed_splits[k].dtype == np.int64 for k in ("y_train", "y_valid", "y_test"))
    np.testing.assert_array_equal(fixed_splits["y_valid"], mnist["y_train"][50000:])
    np.testing.assert_array_equal(fixed_splits["y_test"], mnist["y_test"])


def test_fixed_binarization_is_the_documented_draw(fixed_splits, mnist):
    rng = np.random.default_rng(data.FIXED_BINARIZATION_SEED)
    u = rng.random((60000, 28, 28), dtype=np.float32)
    for rows, x in (
        (slice(0, 5), fixed_splits["x_train"][:5]),
        (slice(-3, None), fixed_splits["x_valid"][-3:]),
    ):
        p = mnist["x_train"][rows].astype(np.float32) / 255
        np.testing.assert_array_equal(x, (u[rows] < p).reshape(len(x), -1))
    u_test = rng.random((4, 28, 28), dtype=np.float32)
    p_test = mnist["x_test"][:4].astype(np.float32) / 255
    np.testing.assert_array_equal(fixed_splits["x_test"][:4], (u_test < p_test).reshape(4, -1))


def test_fixed_binarization_reproducible_and_seeded(fixed_splits, mnist_file, mnist):
    again = data.mnist_splits(mnist_file, allow_download=False, flatten=False)
    np.testing.assert_array_equal(again["x_test"].reshape(10000, -1), fixed_splits["x_test"])
    other = data.mnist_splits(mnist_file, seed=7, allow_download=False)
    assert not np.array_equal(other["x_train"], fixed_splits["x_train"])
    assert set(np.unique(fixed_splits["x_train"])) == {0.0, 1.0}
    intensity = mnist["x_train"][:50000].reshape(50000, -1)
    assert (fixed_splits["x_train"][intensity == 0] == 0).all()  # Bernoulli(0) is never on
    assert (fixed_splits["x_train"][intensity == 255] == 1).all()  # Bernoulli(1) always is
    intensity_mean = mnist["x_train"][:50000].mean() / 255
    assert abs(fixed_splits["x_train"].mean() - intensity_mean) < 0.002


def test_threshold_and_none_conventions(mnist_file, mnist):
    thr = data.mnist_splits(mnist_file, binarization="threshold", allow_download=False)
    expected = (mnist["x_test"].reshape(10000, -1) / 255 > 0.5).astype(np.float32)
    np.testing.assert_array_equal(thr["x_test"], expected)
    raw = data.mnist_splits(mnist_file, binarization="none", flatten=False, allow_download=False)
    assert raw["x_valid"].shape == (10000, 28, 28) and raw["x_valid"].dtype == np.float32
    np.testing.assert_allclose(raw["x_valid"] * 255, mnist["x_train"][50000:], atol=1e-4)


def test_unknown_binarization_lists_names(mnist_file):
    with pytest.raises(ValueError, match="'fixed', 'threshold', 'none'"):
        data.mnist_splits(mnist_file, binarization="otsu")


def test_binarize_conventions():
    x = np.random.default_rng(0).random((200, 50))
    a = data.binarize(x, "fixed", seed=3)
    np.testing.assert_array_equal(a, data.binarize(x, "fixed", seed=3))
    assert a.dtype == np.float32 and a.shape == x.shape and set(np.unique(a)) <= {0.0, 1.0}
    assert abs(a.mean() - x.mean()) < 0.02
    np.testing.assert_array_equal(data.binarize(x, "threshold"), x > 0.5)
    assert not np.array_equal(data.binarize(x, "dynamic", seed=1), data.binarize(x, "dynamic"))


@pytest.mark.parametrize(
    ("x", "kwargs", "error", "match"),
    [
        (np.full((2, 3), 200, np.uint8), {}, data.DataError, "uint8.*255"),
        (np.array([[0.0, 1.5]]), {}, data.DataError, "min 0 and max 1.5"),
        (np.array([[-0.25, 0.5]]), {}, data.DataError, "min -0.25"),
        (np.array([[np.nan, 0.5]]), {}, data.DataError, "NaN"),
        (np.array([[0.0, 0.5]]), {"seed": None}, ValueError, "needs an int seed"),
    ],
)
def test_binarize_errors(x, kwargs, error, match):
    with pytest.raises(error, match=match):
        data.binarize(x, "fixed", **kwargs)


def test_binarize_unknown_convention():
    with pytest.raises(ValueError, match="'fixed', 'dynamic', 'threshold'"):
        data.binarize(np.zeros((1, 1)), "random")


# ----- dynamic binarization ---------------------------------------------------------------


def test_dynamic_binarization_batches():
    p = np.random.default_rng(1).random((1000, 64)).astype(np.float32)
    ds = data.DynamicBinarization(p, 128, seed=5, shuffle=False)
    assert len(ds) == 8
    first = ds[0]
    assert first.shape == (128, 64) and first.dtype == np.float32
    assert ds[7].shape == (1000 - 7 * 128, 64)
    np.testing.assert_array_equal(first, ds[0])  # same (seed, epoch, idx)
    assert abs(np.concatenate([ds[i] for i in range(len(ds))]).mean() - p.mean()) < 0.01
    ds.on_epoch_end()
    assert not np.array_equal(first, ds[0])  # the same images, binarized anew
    replay = data.DynamicBinarization(p, 128, seed=5, shuffle=False)
    replay.on_epoch_end()
    np.testing.assert_array_equal(ds[0], replay[0])
    with pytest.raises(IndexError):
        ds[8]


def test_dynamic_binarization_shuffles_per_epoch():
    p = np.linspace(0, 1, 10, dtype=np.float32)[:, None] * np.ones((10, 4000), np.float32)
    ds = data.DynamicBinarization(p, 10, seed=0)
    order_0 = np.argsort(ds[0].mean(axis=1))  # row means reveal the intensities
    ds.on_epoch_end()
    order_1 = np.argsort(ds[0].mean(axis=1))
    assert not np.array_equal(order_0, order_1)
    assert data.DynamicBinarization(p, 3, seed=0).__len__() == 4


def test_dynamic_binarization_validates():
    with pytest.raises(data.DataError, match="uint8"):
        data.DynamicBinarization(np.zeros((4, 2), np.uint8), 2, seed=0)
    with pytest.raises(data.DataError, match=r"got shape \(4,\)"):
        data.DynamicBinarization(np.zeros(4), 2, seed=0)
    with pytest.raises(ValueError, match="batch_size"):
        data.DynamicBinarization(np.zeros((4, 2)), 0, seed=0)


# ----- toys -------------------------------------------------------------------------------


def test_digits_8x8():
    d = data.digits_8x8()
    assert d["x"].shape == (1797, 64) and d["x"].dtype == np.float32
    assert d["y"].dtype == np.int64 and d["x"].min() == 0 and d["x"].max() == 1
    b = data.digits_8x8(binarize_threshold=0.5)["x"]
    np.testing.assert_array_equal(b, d["x"] > 0.5)
    with pytest.raises(ValueError, match="binarize_threshold"):
        data.digits_8x8(binarize_threshold=8)


def test_check_images_accepts_and_converts():
    out = data.check_images([[0, 1], [1, 0]], expected_dim=2, binary=True)
    assert out.dtype == np.float32 and out.shape == (2, 2)


@pytest.mark.parametrize(
    ("x", "kwargs", "match"),
    [
        (np.zeros((2, 3, 4)), {}, r"2-D array \(n, d\); got shape \(2, 3, 4\)"),
        (np.zeros((0, 4)), {}, "at least one row"),
        (np.zeros((2, 5)), {"expected_dim": 784}, r"784 columns; got shape \(2, 5\)"),
        (np.array([[0.0, np.inf]]), {}, "finite"),
        (np.array([[0.0, np.nan]]), {}, "finite"),
        (np.array([[0.0, 0.5]]), {"binary": True}, "binary"),
        (np.array([["a", "b"]]), {}, "numeric"),
    ],
)
def test_check_images_errors(x, kwargs, match):
    with pytest.raises(data.DataError, match=match):
        data.check_images(x, name="v", **kwargs)


# ----- the second digit domain of Chapter 8: 8x8 digits in MNIST's 28x28 frame -------------


@pytest.fixture(scope="module")
def digits28():
    return data.digits_28x28()


def tf_resize_in_frame(images8, box=20, canvas=28):
    """The oracle: TensorFlow's own bilinear resize (half-pixel centres, no antialiasing) of
    (n, 8, 8) images to box x box, pasted in the centre of a zero canvas (shares no code
    with ``bilinear_matrix``)."""
    import tensorflow as tf

    resized = tf.image.resize(np.asarray(images8, np.float32)[..., None], (box, box),
                              method="bilinear", antialias=False).numpy()[..., 0]
    out = np.zeros((len(resized), canvas, canvas), np.float32)
    m = (canvas - box) // 2
    out[:, m:m + box, m:m + box] = resized
    return out


@pytest.mark.parametrize(("n_in", "n_out", "expected"), [
    # output pixel j samples the input at (j + 1/2) n_in / n_out - 1/2, clamped
    (2, 4, [[1, 0], [0.75, 0.25], [0.25, 0.75], [0, 1]]),   # -0.25, 0.25, 0.75, 1.25
    (4, 2, [[0.5, 0.5, 0, 0], [0, 0, 0.5, 0.5]]),           # 0.5, 2.5
    (3, 3, np.eye(3)),                                      # same size: the identity
    (1, 3, [[1], [1], [1]]),                                # one input pixel: a constant
])
def test_bilinear_matrix_on_hand_derived_cases(n_in, n_out, expected):
    # Catches full-pixel instead of half-pixel centres (2 -> 4 would give rows [1, 0],
    # [0.5, 0.5], [0, 1], [0, 1]), a missing clamp (weights outside [0, 1]) and swapped axes.
    np.testing.assert_allclose(data.bilinear_matrix(n_in, n_out), expected, atol=1e-12)


@pytest.mark.parametrize(("n_in", "n_out"), [(8, 20), (8, 28), (5, 3), (7, 7), (1, 4), (3, 11)])
def test_bilinear_matrix_rows_are_convex_weights(n_in, n_out):
    # an interpolation keeps constants: each row sums to 1, weights in [0, 1], and at most
    # two neighbouring input pixels per row
    a = data.bilinear_matrix(n_in, n_out)
    assert a.shape == (n_out, n_in)
    np.testing.assert_allclose(a.sum(axis=1), 1.0, atol=1e-12)
    assert a.min() >= 0.0 and a.max() <= 1.0
    for row in a:
        support = np.flatnonzero(row)
        assert len(support) <= 2 and (len(support) < 2 or support[1] == support[0] + 1)


def test_upsample_digits_is_tf_bilinear_resize_centred_on_a_zero_canvas():
    # Catches a transposed resampling (A^T X A, or A X^T A^T: the test images are not
    # symmetric), an off-centre paste, a nonzero background and a rescaled range.
    rng = np.random.default_rng(0)
    x = rng.random((5, 8, 8))
    out = data.upsample_digits(x)
    assert out.shape == (5, 28, 28) and out.dtype == np.float32
    np.testing.assert_allclose(out, tf_resize_in_frame(x), atol=1e-6)
    # other sizes, and flat (n, 64) rows read as (n, 8, 8) in C order
    np.testing.assert_allclose(data.upsample_digits(x.reshape(5, 64), box=12, canvas=16),
                               tf_resize_in_frame(x, box=12, canvas=16), atol=1e-6)
    np.testing.assert_allclose(data.upsample_digits(x, box=8, canvas=8), x, atol=1e-6)


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"images": np.zeros((2, 7, 7))}, data.DataError, r"\(n, 8, 8\) or \(n, 64\); got shape "
                                                      r"\(2, 7, 7\)"),
    ({"images": np.zeros((2, 63))}, data.DataError, r"got shape \(2, 63\)"),
    ({"images": np.full((1, 8, 8), np.nan)}, data.DataError, "NaN or infinite"),
    ({"box": 19}, ValueError, "canvas - box must be even.*box=19, canvas=28"),
    ({"box": 30}, ValueError, "canvas - box must be even and >= 0.*box=30, canvas=28"),
    ({"box": 0}, ValueError, "box"),
    ({"canvas": 2.5}, TypeError, "canvas"),
])
def test_upsample_digits_refuses_bad_inputs(kwargs, error, match):
    kwargs = {"images": np.zeros((2, 8, 8)), **kwargs}
    with pytest.raises(error, match=match):
        data.upsample_digits(kwargs.pop("images"), **kwargs)


def test_digits_28x28_split_shapes_range_and_class_balance(digits28):
    d = digits28
    assert sorted(d) == ["x_test", "x_train", "y_test", "y_train"]
    assert d["x_train"].shape == (1297, 28, 28) and d["x_test"].shape == (500, 28, 28)
    assert d["y_train"].shape == (1297,) and d["y_test"].shape == (500,)
    assert d["x_train"].dtype == d["x_test"].dtype == np.float32
    assert d["y_train"].dtype == d["y_test"].dtype == np.int64
    for x in (d["x_train"], d["x_test"]):
        assert x.min() == 0.0 and x.max() == 1.0   # counts / 16: 0 and 16 both occur
        # MNIST's frame: nothing outside the centred 20x20 box
        assert not x[:, :4].any() and not x[:, 24:].any()
        assert not x[:, :, :4].any() and not x[:, :, 24:].any()
    # every class in both parts, balanced as the docstring says (128-132 and 46-51)
    train, test = np.bincount(d["y_train"], minlength=10), np.bincount(d["y_test"], minlength=10)
    assert len(train) == len(test) == 10
    assert train.min() >= 128 and train.max() <= 132
    assert test.min() >= 46 and test.max() <= 51


def test_digits_28x28_are_scikit_learns_digits_resampled_first_1297_train(digits28):
    # Oracle: scikit-learn's file read directly, / 16, resized by TensorFlow. Catches a
    # shuffled or reversed split, labels out of step with their images, a wrong scale
    # (/ 15, / 255) and any departure from the resampling rule.
    from sklearn.datasets import load_digits

    raw = load_digits()
    expected = tf_resize_in_frame(raw.data.reshape(-1, 8, 8) / 16.0)
    np.testing.assert_allclose(digits28["x_train"], expected[:1297], atol=1e-6)
    np.testing.assert_allclose(digits28["x_test"], expected[1297:], atol=1e-6)
    np.testing.assert_array_equal(digits28["y_train"], raw.target[:1297])
    np.testing.assert_array_equal(digits28["y_test"], raw.target[1297:])


def test_digits_28x28_test_split_shares_no_image_with_train(digits28):
    # scikit-learn's 1,797 digits hold no exact duplicate (checked: all distinct as 8x8
    # counts), so no test image may reappear among the training images.
    train = {row.tobytes() for row in digits28["x_train"]}
    assert not [i for i, row in enumerate(digits28["x_test"]) if row.tobytes() in train]
    assert len(train) == 1297


def test_digits_28x28_flatten(digits28):
    flat = data.digits_28x28(flatten=True)
    assert flat["x_train"].shape == (1297, 784) and flat["x_test"].shape == (500, 784)
    for key in ("x_train", "x_test"):
        np.testing.assert_array_equal(flat[key], digits28[key].reshape(-1, 784))
    for key in ("y_train", "y_test"):
        np.testing.assert_array_equal(flat[key], digits28[key])


@pytest.mark.parametrize("bad", ["yes", 1, None])
def test_digits_28x28_refuses_a_flag_that_is_not_a_bool(bad):
    with pytest.raises(TypeError, match=f"flatten must be True or False; got {bad!r}"):
        data.digits_28x28(flatten=bad)


def test_digits_28x28_refuses_a_wrong_checksum(monkeypatch):
    monkeypatch.setitem(data.DIGITS_SHA256, "x", "0" * 64)
    with pytest.raises(data.DataError, match=r"digits \(x\) have SHA-256 8f26b2bd.*not 0000"):
        data.digits_28x28()


def _patched_load_digits(monkeypatch, change):
    """scikit-learn's load_digits returning its data altered by ``change``."""
    import sklearn.datasets

    original = sklearn.datasets.load_digits

    def load_digits(*args, **kwargs):
        bunch = original(*args, **kwargs)
        return change(bunch)

    monkeypatch.setattr(sklearn.datasets, "load_digits", load_digits)


def test_digits_28x28_refuses_corrupted_data(monkeypatch):
    def one_pixel(bunch):
        bunch.data = bunch.data.copy()
        bunch.data[100, 30] = (bunch.data[100, 30] + 1) % 17
        return bunch

    _patched_load_digits(monkeypatch, one_pixel)
    with pytest.raises(data.DataError, match=r"digits \(x\) have SHA-256 .* different data"):
        data.digits_28x28()


def test_digits_28x28_refuses_relabelled_data(monkeypatch):
    def relabel(bunch):
        bunch.target = bunch.target.copy()
        bunch.target[0] = (bunch.target[0] + 1) % 10
        return bunch

    _patched_load_digits(monkeypatch, relabel)
    with pytest.raises(data.DataError, match=r"digits \(y\) have SHA-256"):
        data.digits_28x28()


def test_digits_28x28_refuses_data_of_another_shape_or_unreadable(monkeypatch):
    def truncate(bunch):
        bunch.data, bunch.target = bunch.data[:100], bunch.target[:100]
        return bunch

    _patched_load_digits(monkeypatch, truncate)
    with pytest.raises(data.DataError, match=r"1,797 rows of 64 integer counts; got data of "
                                             r"shape \(100, 64\)"):
        data.digits_28x28()

    def unreadable(bunch):
        raise OSError("no such file")

    _patched_load_digits(monkeypatch, unreadable)
    with pytest.raises(data.DataError, match="could not be read.*reinstall scikit-learn"):
        data.digits_28x28()
