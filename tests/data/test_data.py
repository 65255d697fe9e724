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
