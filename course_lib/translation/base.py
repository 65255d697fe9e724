"""What every unpaired translation model shares: two image domains X and Y, unpaired data,
two players (the translating networks and the discriminators), and translation as a method.

:class:`TranslationModel` is a Keras model whose ``fit(x, y)`` takes images of domain X as
``x`` and images of domain Y as ``y``: two arrays of any sizes, with no pairing between their
rows (:func:`~course_lib.training.unpaired_dataset`: one epoch is one pass over the larger
domain). Both are checked: (n, height, width, channels) of the model's ``image_shape``,
finite, inside [-1, 1] (the generators end in tanh). A ``tf.data.Dataset`` of ``(x batch,
y batch)`` pairs gets the same checks batch by batch. It compiles with one optimizer per
player (``compile(generator_optimizer=..., discriminator_optimizer=...)``: every generating
network shares the first, both discriminators the second, as in both papers' code) and
trains through the project's guarded ``fit`` (divergence guard, checkpoints).

Evaluation reaches a model through :meth:`translate` and :meth:`cycle` only.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from course_lib import sampling
from course_lib.checks import DataError, DataTypeError, check_positive_int, check_seed, describe
from course_lib.training import GuardedFitMixin, scaled_loss, unpaired_dataset
from course_lib.training.fit import host_checked
from course_lib.training.generators import check_keras_model
from course_lib.training.two_player import PlayerOptimizersMixin
from course_lib.translation import losses
from course_lib.translation.networks import check_image_shape

DOMAINS = ("x", "y")
DIRECTIONS = ("x_to_y", "y_to_x")
DATA_RANGE = (-1.0, 1.0)


def check_direction(direction):
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}; got {describe(direction)}.")
    return direction


def check_domain_name(domain):
    if domain not in DOMAINS:
        raise ValueError(f"domain must be one of {DOMAINS}; got {describe(domain)}.")
    return domain


def check_translation_images(images, image_shape, name):
    """A batch of images (n, height, width, channels) of ``image_shape``, finite, in
    [-1, 1], as float32; a clear error naming ``name`` otherwise."""
    try:
        arr = np.asarray(images)
    except (ValueError, TypeError):
        raise DataError(f"{name} must be an array of images (n, *{image_shape}); got "
                        f"{describe(images)} that NumPy cannot read as one.") from None
    if arr.dtype.kind not in "biuf":
        raise DataTypeError(f"{name} must be real-valued images; got dtype {arr.dtype}.")
    wanted = f"(n, {', '.join(map(str, image_shape))})"
    if arr.ndim != 4:
        hint = (" Add the channel axis, e.g. x[..., None]." if arr.ndim == 3
                and arr.shape[1:] == tuple(image_shape[:2]) else "")
        raise DataError(f"{name} must be images of shape {wanted}; got shape {arr.shape}."
                        f"{hint}")
    if arr.shape[1:3] != tuple(image_shape[:2]):
        raise DataError(f"{name} must be {image_shape[0]}x{image_shape[1]} images, shape "
                        f"{wanted}; got shape {arr.shape} (both domains must share one image "
                        "size).")
    if arr.shape[3] != image_shape[2]:
        raise DataError(f"{name} must have {image_shape[2]} channel(s), shape {wanted}; got "
                        f"{arr.shape[3]} channel(s), shape {arr.shape}.")
    if arr.shape[0] == 0:
        raise DataError(f"{name} must hold at least one image; got shape {arr.shape}.")
    arr = arr.astype(np.float32, copy=False)
    low, high = float(arr.min()), float(arr.max())
    if not (np.isfinite(low) and np.isfinite(high)):
        raise DataError(f"{name} must be finite; got {arr.size - np.isfinite(arr).sum()} NaN "
                        "or inf values.")
    if low < DATA_RANGE[0] or high > DATA_RANGE[1]:
        raise DataError(f"{name} must lie in [-1, 1] (the generators end in tanh); got values "
                        f"in [{low:g}, {high:g}]. Map images in [0, 1] with 2 * x - 1.")
    return arr


class TranslationModel(PlayerOptimizersMixin, GuardedFitMixin, keras.Model):
    """Two domains, two players, unpaired ``fit`` (see the module docstring).

    A subclass names its networks (``NETWORKS``, its constructor's first arguments, the two
    discriminators ``discriminator_x`` and ``discriminator_y`` among them; every other network
    belongs to the generating player) and its logged metrics (``LOGGED``), calls
    :meth:`set_networks` and :meth:`check_networks`, and writes ``translate_batch``,
    ``cycle_batch``, ``generator_terms``, ``generator_objective`` and ``logged``. The
    training step is shared: the generating networks take a step on their objective, then
    the discriminators one on real images and on what :meth:`shown` makes of the same pass's
    translations (Eq. 8.1).
    """

    checkpoint_monitor = None   # no loss says which of two translators is better
    NETWORKS = ()
    LOGGED = ()

    def __init__(self, *, image_shape, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.image_shape = check_image_shape(image_shape)
        self.seed = check_seed(seed, allow_none=True)
        self.seed_generator = sampling.tracked_seed_generator(self, seed)
        self.generator_optimizer = self.discriminator_optimizer = None

    def build(self, input_shape):
        """Nothing to create: the networks were built on one example by the constructor."""

    def set_networks(self, networks):
        """Keeps ``networks`` ({name: network}, the names of ``NETWORKS``) as attributes and
        creates the metrics' trackers; refuses one network in two places, which would put
        its variables twice in its player's list and update them twice per step."""
        for name, network in networks.items():
            check_keras_model(network, name)
        if len({id(n) for n in networks.values()}) < len(networks):
            raise ValueError(f"{type(self).__name__} needs {len(networks)} distinct networks "
                             f"({', '.join(networks)}); got one network in two places.")
        for name, network in networks.items():
            setattr(self, name, network)
        self.trackers = {name: keras.metrics.Mean(name=name) for name in self.LOGGED}

    def network_config(self):
        """The networks, serialized, for ``get_config``."""
        return {name: keras.saving.serialize_keras_object(getattr(self, name))
                for name in self.NETWORKS}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for name in cls.NETWORKS:
            config[name] = keras.saving.deserialize_keras_object(config[name])
        return cls(**config)

    def player_variables(self):
        judges = ("discriminator_x", "discriminator_y")
        generating = [v for name in self.NETWORKS if name not in judges
                      for v in getattr(self, name).trainable_variables]
        return (generating, [v for name in judges
                             for v in getattr(self, name).trainable_variables])

    @property
    def metrics(self):
        return list(self.trackers.values())

    def check_networks(self, maps, judges):
        """Builds every network on one example: each of ``maps`` ({name: network}) must take
        images of ``image_shape`` to images of ``image_shape``, each of ``judges`` must take
        them to one output per patch (n, h, w, 1)."""
        example = np.zeros((1, *self.image_shape), "float32")
        for kind, networks in (("map", maps), ("judge", judges)):
            for name, network in networks.items():
                check_keras_model(network, name)
                try:
                    out = network(example)
                except Exception as error:  # noqa: BLE001 -- any failure: shapes do not fit
                    raise ValueError(f"{name} does not take images of shape (n, "
                                     f"{', '.join(map(str, self.image_shape))}): "
                                     f"{type(error).__name__}: {error}") from None
                shape = tuple(out.shape)
                if kind == "map" and shape != (1, *self.image_shape):
                    raise ValueError(f"{name} must return images of the input's shape (n, "
                                     f"{', '.join(map(str, self.image_shape))}); it returns "
                                     f"{shape} for one image.")
                if kind == "judge" and (len(shape) not in (2, 4) or shape[-1] != 1):
                    raise ValueError(f"{name} must return one output per image or patch, "
                                     f"shape (n, 1) or (n, h, w, 1); it returns {shape}.")
        self.build((None, *self.image_shape))

    # ------------------------------------------------------------------- input
    def check_domain(self, images, domain, name=None):
        """Images of ``domain`` (``"x"`` or ``"y"``) checked for the model (module docstring)."""
        domain = check_domain_name(domain)
        return check_translation_images(images, self.image_shape,
                                        name or f"images of domain {domain.upper()}")

    def check_visible(self, x, name="x"):
        return self.check_domain(x, "x", name)

    def _arrays(self, x, y, name):
        if y is None:
            raise ValueError(f"{type(self).__name__}.fit needs both domains: fit(x, y) with x "
                             "the images of domain X and y those of domain Y (unpaired, any "
                             f"sizes); got no y for {name}.")
        return (self.check_domain(x, "x", f"{name} (domain X)"),
                self.check_domain(y, "y", f"y of {name} (domain Y)"))

    def array_input(self, x, y, batch_size, *, shuffle, epoch=0):
        return unpaired_dataset(x, y, batch_size, shuffle=shuffle, seed=self.seed, epoch=epoch)

    def _checked_dataset(self, dataset, name):
        """Each ``(x batch, y batch)`` of ``dataset`` checked on the host as it is produced."""
        spec = dataset.element_spec
        if not (isinstance(spec, tuple) and len(spec) == 2):
            raise ValueError(f"{type(self).__name__} needs a dataset of (x batch, y batch) "
                             f"pairs, one batch of each domain; {name} yields {describe(spec)}.")

        def check(x, y):
            return tuple(
                host_checked(lambda a, d=domain: self.check_domain(
                    a, d, f"a batch of {name} (domain {d.upper()})"), [images], tf.float32,
                    images.shape)
                for images, domain in ((x, "x"), (y, "y")))

        return dataset.map(check)

    def fit(self, x=None, y=None, *, validation_split=0.0, **kwargs):
        """Keras' ``fit`` on unpaired domains: ``x`` the images of X, ``y`` those of Y
        (arrays of any sizes, or ``x`` a dataset of ``(x batch, y batch)`` pairs);
        ``validation_data=(x_val, y_val)`` likewise. ``validation_split`` is refused: hold out
        images of each domain yourself."""
        if validation_split:
            raise ValueError(f"{type(self).__name__}.fit takes no validation_split: the two "
                             "domains are unpaired. Pass validation_data=(x_val, y_val).")
        return super().fit(x, y, **kwargs)

    @staticmethod
    def unpack_domains(data, model_name):
        """``(x, y)`` batches from what ``fit`` delivers."""
        if not (isinstance(data, (tuple, list)) and len(data) == 2):
            raise ValueError(f"{model_name} trains on (x batch, y batch) pairs, one batch of "
                             "each domain.")
        return data[0], data[1]

    # ------------------------------------------------------------------- translation
    def translate_batch(self, images, direction, training=False):
        """One batch translated (a tensor); ``direction`` ``"x_to_y"`` or ``"y_to_x"``."""
        raise NotImplementedError

    def cycle_batch(self, images, domain):
        """One batch of ``domain`` translated to the other domain and back."""
        raise NotImplementedError

    def _compiled(self, key, fn):
        """One ``tf.function`` per key, kept outside Keras' attribute tracking."""
        cache = self.__dict__.setdefault("_translation_functions", {})
        if key not in cache:
            cache[key] = tf.function(fn, reduce_retracing=True)
        return cache[key]

    def _batched(self, key, fn, images, batch_size):
        batch_size = check_positive_int(batch_size, "batch_size")
        compiled = self._compiled(key, fn)
        return np.concatenate([compiled(tf.constant(images[i:i + batch_size])).numpy()
                               for i in range(0, len(images), batch_size)]).astype(np.float32)

    def translate(self, images, direction="x_to_y", *, batch_size=256):
        """Images of the source domain translated into the other domain, as a float32 NumPy
        array in [-1, 1]: ``"x_to_y"`` (G) or ``"y_to_x"`` (F)."""
        direction = check_direction(direction)
        images = self.check_domain(images, direction[0], "images to translate")
        return self._batched(direction, lambda b: self.translate_batch(b, direction), images,
                             batch_size)

    def cycle(self, images, domain="x", *, batch_size=256):
        """Images of ``domain`` translated to the other domain and back (x -> F(G(x)) for
        ``"x"``), as a float32 NumPy array."""
        domain = check_domain_name(domain)
        images = self.check_domain(images, domain, "images to cycle")
        return self._batched(f"cycle_{domain}", lambda b: self.cycle_batch(b, domain), images,
                             batch_size)

    # ------------------------------------------------------------------- the game
    def generator_terms(self, x, y, training=True):
        """The generating networks' pass: ``(x -> y images, y -> x images, {term: loss})``."""
        raise NotImplementedError

    def generator_objective(self, terms):
        """The generating player's loss from its terms."""
        raise NotImplementedError

    def logged(self, g_loss, terms, d_loss):
        """{metric name: value} for the trackers."""
        raise NotImplementedError

    def shown(self, to_x, to_y):
        """The generated images the discriminators judge: the pass's translations, held
        fixed (CycleGAN passes them through its histories)."""
        return ops.stop_gradient(to_x), ops.stop_gradient(to_y)

    def discriminator_objective(self, x, y, shown_x, shown_y, training=True):
        """D_X's plus D_Y's least-squares loss (8.1), each on its domain's real images and the
        generated images it is shown; one call per discriminator."""
        n_x, n_y = ops.shape(x)[0], ops.shape(y)[0]
        out_x = self.discriminator_x(ops.concatenate([x, ops.cast(shown_x, x.dtype)]),
                                     training=training)
        out_y = self.discriminator_y(ops.concatenate([y, ops.cast(shown_y, y.dtype)]),
                                     training=training)
        return (losses.discriminator_loss(out_x[:n_x], out_x[n_x:])
                + losses.discriminator_loss(out_y[:n_y], out_y[n_y:]))

    def train_step(self, data):
        x, y = self.unpack_domains(data, type(self).__name__)
        generating, discriminating = self.player_variables()
        with tf.GradientTape() as tape:
            to_y, to_x, terms = self.generator_terms(x, y)
            g_loss = self.generator_objective(terms)
            scaled = scaled_loss(self.generator_optimizer, g_loss)
        self.generator_optimizer.apply(tape.gradient(scaled, generating), generating)
        shown_x, shown_y = self.shown(to_x, to_y)
        with tf.GradientTape() as tape:
            d_loss = self.discriminator_objective(x, y, shown_x, shown_y)
            scaled = scaled_loss(self.discriminator_optimizer, d_loss)
        self.discriminator_optimizer.apply(tape.gradient(scaled, discriminating),
                                           discriminating)
        return self._record(self.logged(g_loss, terms, d_loss))

    def test_step(self, data):
        """The objective's terms on held-out images (no update; the discriminators judge the
        pass's translations directly)."""
        x, y = self.unpack_domains(data, type(self).__name__)
        to_y, to_x, terms = self.generator_terms(x, y, training=False)
        d_loss = self.discriminator_objective(x, y, to_x, to_y, training=False)
        return self._record(self.logged(self.generator_objective(terms), terms, d_loss))

    def _record(self, values):
        for name, value in values.items():
            self.trackers[name].update_state(value)
        return {name: tracker.result() for name, tracker in self.trackers.items()}

    def call(self, inputs, training=False):
        """X -> Y translation of a batch (what ``predict`` gives)."""
        return self.translate_batch(inputs, "x_to_y", training=training)
