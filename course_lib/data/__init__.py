"""Data sets of the course: MNIST and its binarizations, and small toys with known optima.

Offers:

* ``find_mnist`` / ``load_mnist``: find ``mnist.npz`` (explicit path, repository ``data/``,
  ``$COURSE_LIB_DATA``, Keras cache, download) and load it with SHA-256 checks per array.
* ``mnist_splits`` (50k/10k/10k; ``"fixed"``, ``"threshold"`` or ``"none"`` binarization),
  ``binarize`` and ``DynamicBinarization`` (a ``keras.utils.PyDataset`` re-sampling pixels).
* ``digits_8x8``: scikit-learn's bundled 8x8 digits (offline).
* ``digits_28x28``: the same digits resampled to MNIST's frame (``upsample_digits``), with
  a fixed train/test split: the second digit domain of Chapter 8's translations.
* Synthetic toys with known optima live in :mod:`course_lib.data.toy`.
* ``DataError`` and ``check_images`` (re-exported from :mod:`course_lib.checks`).

Used by the notebooks on Boltzmann machines and RBMs (binarized MNIST, 8x8 digits), VAEs
(binarized MNIST), and unpaired translation (MNIST and the resampled 8x8 digits).

The fixed binarization is frozen: pixel ``i`` (C order over ``[x_train (60k), x_test
(10k)]``) is ``u_i < x_i / 255`` in float32, with ``u`` one draw of
``np.random.default_rng(FIXED_BINARIZATION_SEED).random((70000, 28, 28), dtype=np.float32)``.
"""

from __future__ import annotations

import hashlib
import math
import os
import pathlib
import zipfile
import zlib

import keras
import numpy as np

from course_lib.checks import (  # noqa: F401 (DataError and check_images are re-exported)
    ArgumentTypeError,
    DataError,
    check_bool,
    check_images,
    check_positive_int,
    check_seed,
    describe,
    is_int,
)

MNIST_ARRAY_SHA256 = {
    "x_train": "741c988805d008ac6e4c904b69001ba184c24b2c540a4ef403f4c71b676cf757",
    "y_train": "1feba77c54802fa5339a11837ea4b2866434b83314ec45192930f1df69120c13",
    "x_test": "6d87418db22cc8025d05968bec9bd5c3932904b23485740db143a061a2c9d161",
    "y_test": "ddeff807876a9661a1110d45c266c86239a3a1b7d37da0c3716a7a683c852ff5",
}
MNIST_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"
_MNIST_DOWNLOAD_SHA256 = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"
_MNIST_LAYOUT = {
    "x_train": (60000, 28, 28),
    "y_train": (60000,),
    "x_test": (10000, 28, 28),
    "y_test": (10000,),
}
DATA_ENV_VAR = "COURSE_LIB_DATA"
FIXED_BINARIZATION_SEED = 1234
MNIST_BINARIZATIONS = ("fixed", "threshold", "none")
BINARIZE_CONVENTIONS = ("fixed", "dynamic", "threshold")
# Negative differential entropy of two independent unit-variance Laplace sources
# (scale b = 1/sqrt(2)): -2 * (1 + log(2 b)) = -2.6931...
_CHUNK = 1 << 22  # uniforms drawn per step; chunking does not change the stream


def _repo_data_path() -> pathlib.Path:
    """The ``data/mnist.npz`` of the repository this package sits in."""
    return pathlib.Path(__file__).resolve().parents[2] / "data" / "mnist.npz"


def find_mnist(path=None, *, allow_download=True) -> pathlib.Path:
    """Finds ``mnist.npz``: ``path``, repository ``data/``, ``$COURSE_LIB_DATA``,
    ``$KERAS_HOME/datasets`` (else ``~/.keras/datasets``), then ``keras.utils.get_file``.

    Args:
        path: optional file, or directory holding ``mnist.npz``; it must exist (no fallback).
        allow_download: whether the last step may use the network.

    Returns:
        The ``pathlib.Path`` of the file.

    Raises:
        DataError: if ``path`` does not exist, or nothing was found (the message names every
            place looked and the download error, if one was tried).
        TypeError: if ``path`` is not a string or path.
    """
    allow_download = check_bool(allow_download, "allow_download")
    if path is not None and not isinstance(path, (str, os.PathLike)):
        raise ArgumentTypeError(f"path must be a file or directory path (str or "
                                f"pathlib.Path); got {describe(path)}.")
    if path is not None:
        given = pathlib.Path(path).expanduser()
        candidate = given / "mnist.npz" if given.is_dir() else given
        if not candidate.is_file():
            raise DataError(f"MNIST file {str(candidate)!r} does not exist (path={str(path)!r}).")
        return candidate
    env_dir, keras_home = os.environ.get(DATA_ENV_VAR), os.environ.get("KERAS_HOME")
    env_file = pathlib.Path(env_dir).expanduser() / "mnist.npz" if env_dir else None
    keras_dir = pathlib.Path(keras_home) if keras_home else pathlib.Path.home() / ".keras"
    looked = []
    for label, candidate in [
        ("repository data folder", _repo_data_path()),
        (f"${DATA_ENV_VAR}", env_file),
        ("Keras cache", keras_dir / "datasets" / "mnist.npz"),
    ]:
        if candidate is not None and candidate.is_file():
            return candidate
        looked.append(
            f"{label}: not set" if candidate is None else f"{label}: {candidate} (not found)"
        )
    if allow_download:
        try:
            file = keras.utils.get_file("mnist.npz", MNIST_URL, file_hash=_MNIST_DOWNLOAD_SHA256)
            return pathlib.Path(file)
        except Exception as err:  # any failure becomes one readable message below
            looked.append(f"download from {MNIST_URL}: failed ({type(err).__name__}: {err})")
    else:
        looked.append(f"download from {MNIST_URL}: skipped (allow_download=False)")
    raise DataError(
        "Could not find mnist.npz. Looked in:\n  - "
        + "\n  - ".join(looked)
        + "\nPut mnist.npz in one of these places, or pass its path."
    )


def _sha256(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


def load_mnist(path=None, *, allow_download=True, verify=True) -> dict:
    """Loads MNIST as uint8 arrays, checking layout and (with ``verify``) checksums.

    Args:
        path, allow_download: as in `find_mnist`.
        verify: compare each array's SHA-256 with `MNIST_ARRAY_SHA256`.

    Returns:
        Dict of uint8 arrays ``x_train`` (60000, 28, 28), ``y_train`` (60000,), ``x_test``
        (10000, 28, 28), ``y_test`` (10000,).

    Raises:
        DataError: if the file is missing, unreadable or truncated, lacks a key, has a wrong
            shape or dtype, or fails a checksum (the message names the array).
    """
    verify = check_bool(verify, "verify")
    file = find_mnist(path, allow_download=allow_download)
    try:
        npz = np.load(file, allow_pickle=False)
        if not isinstance(npz, np.lib.npyio.NpzFile):
            raise DataError(f"{file} holds a single .npy array; expected an .npz archive.")
        with npz:
            missing = sorted(set(_MNIST_LAYOUT) - set(npz.files))
            if missing:
                raise DataError(
                    f"{file} lacks the arrays {missing}; expected {sorted(_MNIST_LAYOUT)}, "
                    f"found {sorted(npz.files)}."
                )
            arrays = {key: npz[key] for key in _MNIST_LAYOUT}
    except DataError:
        raise
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, zlib.error) as err:
        raise DataError(
            f"{file} is not a readable .npz archive (corrupt or truncated?): "
            f"{type(err).__name__}: {err}"
        ) from err
    for key, shape in _MNIST_LAYOUT.items():
        a = arrays[key]
        if a.shape != shape or a.dtype != np.uint8:
            raise DataError(
                f"{key} in {file} has shape {a.shape} and dtype {a.dtype}; "
                f"expected shape {shape} and dtype uint8."
            )
        if key.startswith("y") and a.max() > 9:
            raise DataError(f"{key} in {file} holds label {a.max()}; expected labels 0..9.")
        if verify and (got := _sha256(a)) != MNIST_ARRAY_SHA256[key]:
            raise DataError(
                f"Checksum mismatch for {key} in {file}: expected SHA-256 "
                f"{MNIST_ARRAY_SHA256[key]}, got {got}. Replace the file, or pass verify=False."
            )
    return arrays


def _bernoulli(p: np.ndarray, rng: np.random.Generator, scale: float = 1.0) -> np.ndarray:
    """float32 ``u < p / scale`` with float32 uniforms ``u`` drawn in C order, in chunks."""
    flat = np.ascontiguousarray(p).reshape(-1)
    out = np.empty(flat.shape, np.float32)
    for start in range(0, flat.size, _CHUNK):
        q = flat[start : start + _CHUNK].astype(np.float32)
        if scale != 1.0:
            q /= np.float32(scale)
        out[start : start + _CHUNK] = rng.random(q.shape, dtype=np.float32) < q
    return out.reshape(np.shape(p))


def mnist_splits(
    path=None, *, binarization="fixed", seed=FIXED_BINARIZATION_SEED, flatten=True,
    allow_download=True,
) -> dict:  # fmt: skip
    """The course's MNIST split: first 50,000 training images / last 10,000 / the test set.

    Args:
        path, allow_download: as in `find_mnist`.
        binarization: ``"fixed"`` (each pixel drawn once from Bernoulli(intensity / 255),
            one uniform draw for all 70,000 images, see the module docstring), ``"threshold"``
            (intensity / 255 > 0.5) or ``"none"`` (intensities in [0, 1]).
        seed: seed of the ``"fixed"`` draw; the published numbers use 1234.
        flatten: return images as (n, 784) rather than (n, 28, 28).

    Returns:
        Dict with ``x_train``, ``y_train``, ``x_valid``, ``y_valid``, ``x_test``, ``y_test``;
        images float32, labels int64.

    Raises:
        ValueError: if ``binarization`` is not one of `MNIST_BINARIZATIONS`, or ``"fixed"``
            comes without an int ``seed``.
        DataError: as `load_mnist`.
    """
    if binarization not in MNIST_BINARIZATIONS:
        raise ValueError(
            f"binarization must be one of {MNIST_BINARIZATIONS}; got {binarization!r}."
        )
    if binarization == "fixed" and not is_int(seed):
        raise ValueError(f"The 'fixed' binarization needs an int seed; got {describe(seed)}.")
    seed = check_seed(seed)
    flatten = check_bool(flatten, "flatten")
    raw = load_mnist(path, allow_download=allow_download)
    x_all = np.concatenate([raw["x_train"], raw["x_test"]])
    if binarization == "fixed":
        x_all = _bernoulli(x_all, np.random.default_rng(seed), scale=255.0)
    elif binarization == "threshold":
        x_all = (x_all >= 128).astype(np.float32)  # x / 255 > 0.5 exactly, for uint8 x
    else:
        x_all = x_all.astype(np.float32) / 255
    if flatten:
        x_all = x_all.reshape(len(x_all), -1)
    y_all = np.concatenate([raw["y_train"], raw["y_test"]]).astype(np.int64)
    cuts = {"train": slice(0, 50000), "valid": slice(50000, 60000), "test": slice(60000, None)}
    return {
        f"{k}_{split}": a[cut]
        for split, cut in cuts.items()
        for k, a in (("x", x_all), ("y", y_all))
    }


def _check_probabilities(x, name="x") -> np.ndarray:
    try:
        x = np.asarray(x)
    except (ValueError, TypeError):              # ragged nested lists
        raise DataError(f"{name} must be a floating array of intensities in [0, 1]; got "
                        f"{describe(x)} that NumPy cannot read as one array.") from None
    if not np.issubdtype(x.dtype, np.floating):
        raise DataError(
            f"{name} must be a floating array of intensities in [0, 1]; got dtype {x.dtype}. "
            "Divide uint8 images by 255 first."
        )
    if x.size and np.isnan(x).any():
        raise DataError(f"{name} contains NaN; expected intensities in [0, 1].")
    if x.size and (x.min() < 0 or x.max() > 1):
        raise DataError(
            f"{name} must hold values in [0, 1]; got min {x.min():g} and max {x.max():g}."
        )
    return x


def binarize(x, convention, *, seed=None) -> np.ndarray:
    """Turns intensities into binary pixels.

    Args:
        x: floating array with values in [0, 1], any shape.
        convention: ``"fixed"`` (Bernoulli(x), drawn once with an int ``seed`` and kept),
            ``"dynamic"`` (Bernoulli(x), drawn anew per call) or ``"threshold"`` (x > 0.5).
        seed: seed for ``np.random.default_rng``; required for ``"fixed"``.

    Returns:
        float32 array of the shape of ``x`` with values in {0, 1}.

    Raises:
        DataError: if ``x`` is not floating, contains NaN or leaves [0, 1].
        ValueError: if ``convention`` is unknown, or ``"fixed"`` comes without an int seed.
    """
    if not isinstance(convention, str) or convention not in BINARIZE_CONVENTIONS:
        raise ValueError(f"convention must be one of {BINARIZE_CONVENTIONS}; got "
                         f"{describe(convention)}.")
    x = _check_probabilities(x)
    if convention == "fixed" and not is_int(seed):
        raise ValueError(f"The 'fixed' convention needs an int seed; got {describe(seed)}.")
    seed = check_seed(seed, allow_none=True)
    if convention == "threshold":
        return (x > 0.5).astype(np.float32)
    return _bernoulli(x, np.random.default_rng(seed))


class DynamicBinarization(keras.utils.PyDataset):
    """Batches of freshly sampled binary pixels (dynamic binarization), inputs only.

    Batch ``idx`` of epoch ``e`` is ``u < x[rows]`` with float32 uniforms from
    ``np.random.default_rng([seed, e, idx])``; epoch ``e``'s row order comes from
    ``np.random.default_rng([seed, e])`` (0..n-1 without ``shuffle``). ``e`` counts calls
    of ``on_epoch_end`` (``fit`` makes one more than it has epochs); a rerun with the same
    seed replays the same batches, whatever order Keras asks for them in.

    Args:
        x: floating array (n, d) of intensities in [0, 1].
        batch_size: positive int.
        seed: non-negative int.
        shuffle: reshuffle the rows every epoch.
        **kwargs: passed to ``keras.utils.PyDataset`` (``workers``, ...).

    Raises:
        DataError: if ``x`` is not a floating (n, d) array in [0, 1].
        ValueError: if ``batch_size`` or ``seed`` is not as described.
    """

    def __init__(self, x, batch_size, *, seed, shuffle=True, **kwargs):
        super().__init__(**kwargs)
        x = _check_probabilities(x)
        if x.ndim != 2 or len(x) == 0:
            raise DataError(f"x must be a non-empty (n, d) array; got shape {x.shape}.")
        self.batch_size = check_positive_int(batch_size, "batch_size")
        self.seed = check_seed(seed)
        self.shuffle = check_bool(shuffle, "shuffle")
        self.x = x.astype(np.float32)
        self.epoch = 0
        self._order = self._epoch_order()

    def _epoch_order(self) -> np.ndarray:
        if not self.shuffle:
            return np.arange(len(self.x))
        return np.random.default_rng([self.seed, self.epoch]).permutation(len(self.x))

    def __len__(self):
        return math.ceil(len(self.x) / self.batch_size)

    def __getitem__(self, idx):
        if not is_int(idx):
            raise ArgumentTypeError(f"batch index must be an integer; got {describe(idx)}.")
        if not 0 <= idx < len(self):
            raise IndexError(f"batch index must be in [0, {len(self)}); got {idx}.")
        rows = self._order[idx * self.batch_size : (idx + 1) * self.batch_size]
        rng = np.random.default_rng([self.seed, self.epoch, int(idx)])
        return _bernoulli(self.x[rows], rng)

    def on_epoch_end(self):
        self.epoch += 1
        self._order = self._epoch_order()


def digits_8x8(*, binarize_threshold=None) -> dict:
    """The 1,797 8x8 handwritten digits bundled with scikit-learn (no download).

    Args:
        binarize_threshold: optional float in [0, 1); pixels above it become 1, others 0.

    Returns:
        Dict with ``"x"`` float32 (1797, 64) in [0, 1] (counts / 16) and ``"y"`` int64.

    Raises:
        ValueError: if ``binarize_threshold`` is not None or a number in [0, 1).
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = digits.data.astype(np.float32) / 16
    if binarize_threshold is not None:
        t = binarize_threshold
        if isinstance(t, bool) or not isinstance(t, (int, float, np.number)) or not 0 <= t < 1:
            raise ValueError(f"binarize_threshold must be None or a number in [0, 1); got {t!r}.")
        x = (x > t).astype(np.float32)
    return {"x": x, "y": digits.target.astype(np.int64)}


# SHA-256 of scikit-learn's bundled digits as uint8 (pixel counts 0..16 in C order) and labels
DIGITS_SHA256 = {
    "x": "8f26b2bd9d135c256808f68f14fdabddde6d9c7f869ae419704b051f0f14b3b3",
    "y": "8ba4f891220f5e4c9c819638d1602d74b83618f167043c6da52a2a247841ddf0",
}
DIGITS_TEST_SIZE = 500   # the last 500 of the 1,797 digits; the first 1,297 train


def _load_sklearn_digits():
    """scikit-learn's digits as (uint8 counts (1797, 8, 8), int64 labels), checksum-verified."""
    from sklearn.datasets import load_digits

    try:
        digits = load_digits()
    except OSError as error:
        raise DataError(f"scikit-learn's bundled digits could not be read ({error}); "
                        "reinstall scikit-learn.") from None
    x, y = digits.data, digits.target
    if x.shape != (1797, 64) or y.shape != (1797,) or not np.array_equal(x, np.round(x)):
        raise DataError(f"scikit-learn's digits should be 1,797 rows of 64 integer counts; "
                        f"got data of shape {x.shape} and labels of shape {y.shape}.")
    x, y = x.astype(np.uint8), y.astype(np.uint8)
    for key, a in (("x", x), ("y", y)):
        if (got := _sha256(a)) != DIGITS_SHA256[key]:
            raise DataError(f"scikit-learn's digits ({key}) have SHA-256 {got}, not "
                            f"{DIGITS_SHA256[key]}: this scikit-learn ships different data.")
    return x.reshape(-1, 8, 8), y.astype(np.int64)


def bilinear_matrix(n_in, n_out) -> np.ndarray:
    """The (n_out, n_in) matrix of linear interpolation with half-pixel centres (output pixel
    j samples the input at (j + 1/2) n_in / n_out - 1/2, clamped to [0, n_in - 1]; the rule
    of ``tf.image.resize(..., "bilinear")`` without antialiasing). Each row sums to 1."""
    n_in = check_positive_int(n_in, "n_in")
    n_out = check_positive_int(n_out, "n_out")
    centres = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0, n_in - 1)
    low = np.floor(centres).astype(int)
    high = np.minimum(low + 1, n_in - 1)
    weight = centres - low
    matrix = np.zeros((n_out, n_in))
    matrix[np.arange(n_out), low] += 1 - weight
    matrix[np.arange(n_out), high] += weight
    return matrix


def upsample_digits(images, *, box=20, canvas=28) -> np.ndarray:
    """8x8 digits in MNIST's frame: each image bilinearly resampled (:func:`bilinear_matrix`,
    separable: A X A^T) to ``box`` x ``box`` and centred on a ``canvas`` x ``canvas`` zero
    background, as MNIST puts its digits in a 20x20 box inside 28x28. Values keep their range.

    Args:
        images: (n, 8, 8) or (n, 64) array.
        box, canvas: sizes, with ``canvas - box`` even and non-negative.

    Returns:
        float32 (n, canvas, canvas).
    """
    box = check_positive_int(box, "box")
    canvas = check_positive_int(canvas, "canvas")
    if canvas < box or (canvas - box) % 2:
        raise ValueError(f"canvas - box must be even and >= 0 to centre the digit; got box="
                         f"{box}, canvas={canvas}.")
    x = np.asarray(images, dtype=np.float64)
    if x.ndim == 2 and x.shape[1] == 64:
        x = x.reshape(-1, 8, 8)
    if x.ndim != 3 or x.shape[1:] != (8, 8):
        raise DataError(f"images must be (n, 8, 8) or (n, 64); got shape {x.shape}.")
    if not np.isfinite(x).all():
        raise DataError("images contain NaN or infinite values.")
    a = bilinear_matrix(8, box)
    out = np.zeros((len(x), canvas, canvas), np.float32)
    margin = (canvas - box) // 2
    out[:, margin:margin + box, margin:margin + box] = np.einsum("ij,njk,lk->nil", a, x, a)
    return out


def digits_28x28(*, flatten=False) -> dict:
    """A second digit domain in MNIST's format: scikit-learn's 1,797 bundled 8x8 digits
    (43 writers, counts 0..16 of 4x4 blocks of 32x32 bitmaps; no download), scaled to
    [0, 1] (counts / 16) and resampled by :func:`upsample_digits` (bilinear to 20x20, centred
    on 28x28). They are blurred, thick digits: not USPS, and not comparable with it.

    The split is fixed: the first 1,297 images train, the last ``DIGITS_TEST_SIZE`` (500)
    are the held-out test set (the file cycles through the classes, so both parts are
    balanced: 128-132 and 46-51 images per class).

    Args:
        flatten: return images as (n, 784) rather than (n, 28, 28).

    Returns:
        Dict with ``x_train``, ``y_train``, ``x_test``, ``y_test``; images float32 in [0, 1],
        labels int64.

    Raises:
        DataError: if scikit-learn's data are missing or not the expected file.
    """
    flatten = check_bool(flatten, "flatten")
    counts, labels = _load_sklearn_digits()
    x = upsample_digits(counts.astype(np.float32) / 16)
    if flatten:
        x = x.reshape(len(x), -1)
    cut = len(x) - DIGITS_TEST_SIZE
    return {"x_train": x[:cut], "y_train": labels[:cut], "x_test": x[cut:],
            "y_test": labels[cut:]}
