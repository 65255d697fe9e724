"""CycleGAN (Zhu, Park, Isola & Efros 2017): unpaired translation by cycle consistency.

Two generators G: X -> Y and F: Y -> X and two discriminators D_X, D_Y (PatchGANs), trained
on Eq. (8.4) of ``08_cyclegan_unit.ipynb``:

    L(G, F, D_X, D_Y) = L_GAN(G, D_Y) + L_GAN(F, D_X) + lambda L_cyc(G, F)
                        + lambda lambda_id L_id(G, F)

with the least-squares adversarial losses (8.1), the cycle loss (8.2) and the identity loss
(8.3) of :mod:`course_lib.translation.losses`. Symbols -> code: G -> ``generator_xy``, F ->
``generator_yx``, D_X -> ``discriminator_x``, D_Y -> ``discriminator_y``, lambda ->
``cycle_weight`` (10), lambda_id -> ``identity_weight`` (0.5, relative to lambda, as the
authors' code weights it).

One ``train_step`` is the authors' ``optimize_parameters``: one forward pass of both
generators; a generator update of G and F together (one optimizer, the discriminators
fixed); then a discriminator update of D_X and D_Y together on real images and on generated
images passed through each discriminator's :class:`ImageHistory` (the generated images are
those of the same forward pass, taken as constants). Under one tape the generators run on
concatenated batches, ``G([x; y])`` giving G(x) and the identity image G(y) at once (instance
normalization treats every image alone, so this changes no number); the discriminators judge
real and remembered images in one call each.
"""

from __future__ import annotations

import keras
from keras import ops

from course_lib.checks import check_finite_float, check_nonneg_int
from course_lib.translation import losses
from course_lib.translation.base import TranslationModel
from course_lib.translation.layers import ImageHistory


@keras.saving.register_keras_serializable(package="course_lib")
class CycleGAN(TranslationModel):
    """Unpaired translation between domains X and Y by cycle consistency (module docstring).

    Args:
        generator_xy, generator_yx: G: X -> Y and F: Y -> X, Keras models from images of
            ``image_shape`` in [-1, 1] to images of the same shape (tanh outputs).
        discriminator_x, discriminator_y: D_X and D_Y, Keras models from images to one raw
            output per patch, (n, h, w, 1) (or per image, (n, 1)).
        cycle_weight: lambda of Eq. (8.4), >= 0 (0 removes the cycle loss: the ablation).
        identity_weight: lambda_id, relative to lambda, >= 0 (0: no identity loss, and the
            identity images are not computed).
        history_size: generated images each discriminator's history keeps (0: none; the
            discriminators then see only the latest images).
        seed: int seed of the histories' draws.

    ``compile(generator_optimizer=..., discriminator_optimizer=...)``: the first updates G
    and F, the second D_X and D_Y (the paper: Adam(2e-4, beta_1=0.5)). Metrics:
    ``generator_loss`` (the whole objective G and F minimize), ``adversarial_loss``,
    ``cycle_loss``, ``identity_loss``, ``discriminator_loss`` (D_X's plus D_Y's).

    Example:
        >>> model = CycleGAN(**cyclegan_networks((28, 28, 1)), seed=0)
        >>> model.compile(generator_optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5),
        ...               discriminator_optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5))
        >>> model.fit(2 * mnist - 1, 2 * digits - 1, batch_size=32, epochs=1)
        >>> translated = model.translate(2 * mnist_test - 1, "x_to_y")
    """

    divergence_advice = ("lower both learning rates (the paper's Adam(2e-4, beta_1=0.5)); "
                         "check that both domains' images lie in [-1, 1]")

    NETWORKS = ("generator_xy", "generator_yx", "discriminator_x", "discriminator_y")
    LOGGED = ("generator_loss", "adversarial_loss", "cycle_loss", "identity_loss",
              "discriminator_loss")

    def __init__(self, generator_xy, generator_yx, discriminator_x, discriminator_y, *,
                 image_shape=(28, 28, 1), cycle_weight=10.0, identity_weight=0.5,
                 history_size=50, seed=None, **kwargs):
        super().__init__(image_shape=image_shape, seed=seed, **kwargs)
        self.cycle_weight = check_finite_float(cycle_weight, "cycle_weight", at_least=0.0)
        self.identity_weight = check_finite_float(identity_weight, "identity_weight",
                                                  at_least=0.0)
        self.history_size = check_nonneg_int(history_size, "history_size")
        self.set_networks(dict(zip(self.NETWORKS, (generator_xy, generator_yx, discriminator_x,
                                                   discriminator_y), strict=True)))
        histories = [None, None]
        if self.history_size:
            histories = [ImageHistory(self.history_size, seed=None if seed is None else seed + i,
                                      name=f"history_{d}") for i, d in enumerate("xy")]
            for history in histories:
                history.build((None, *self.image_shape))
        self.history_x, self.history_y = histories
        self.check_networks({"generator_xy": generator_xy, "generator_yx": generator_yx},
                            {"discriminator_x": discriminator_x,
                             "discriminator_y": discriminator_y})

    def get_config(self):
        return {**super().get_config(), **self.network_config(),
                "image_shape": list(self.image_shape), "cycle_weight": self.cycle_weight,
                "identity_weight": self.identity_weight, "history_size": self.history_size,
                "seed": self.seed}

    # ------------------------------------------------------------------ translation
    def translate_batch(self, images, direction, training=False):
        network = self.generator_xy if direction == "x_to_y" else self.generator_yx
        return network(images, training=training)

    def cycle_batch(self, images, domain):
        there, back = ((self.generator_xy, self.generator_yx) if domain == "x"
                       else (self.generator_yx, self.generator_xy))
        return back(there(images, training=False), training=False)

    # ------------------------------------------------------------------ the game
    def generator_terms(self, x, y, training=True):
        """The generators' forward pass and the terms of Eq. (8.4): returns ``(fake_y,
        fake_x, {"adversarial": ..., "cycle": ..., "identity": ...})``."""
        n = ops.shape(x)[0]
        if self.identity_weight:
            g_out = self.generator_xy(ops.concatenate([x, y]), training=training)
            f_out = self.generator_yx(ops.concatenate([y, x]), training=training)
            fake_y, same_y = g_out[:n], g_out[n:]
            m = ops.shape(y)[0]
            fake_x, same_x = f_out[:m], f_out[m:]
            identity = losses.identity_loss(x, same_x, y, same_y)
        else:
            fake_y = self.generator_xy(x, training=training)
            fake_x = self.generator_yx(y, training=training)
            identity = ops.zeros((), losses.LOSS_DTYPE)
        cycle = losses.cycle_loss(x, self.generator_yx(fake_y, training=training),
                                  y, self.generator_xy(fake_x, training=training))
        adversarial = (losses.generator_loss(self.discriminator_y(fake_y, training=training))
                       + losses.generator_loss(self.discriminator_x(fake_x, training=training)))
        return fake_y, fake_x, {"adversarial": adversarial, "cycle": cycle,
                                "identity": identity}

    def generator_objective(self, terms):
        """Eq. (8.4) from its terms."""
        return (terms["adversarial"] + self.cycle_weight * terms["cycle"]
                + self.cycle_weight * self.identity_weight * terms["identity"])

    def shown(self, to_x, to_y):
        """What the discriminators judge as generated: the histories' answers, or the
        latest images without histories."""
        to_x, to_y = super().shown(to_x, to_y)
        if not self.history_size:
            return to_x, to_y
        return self.history_x(to_x), self.history_y(to_y)

    def logged(self, g_loss, terms, d_loss):
        return {"generator_loss": g_loss, "adversarial_loss": terms["adversarial"],
                "cycle_loss": terms["cycle"], "identity_loss": terms["identity"],
                "discriminator_loss": d_loss}
