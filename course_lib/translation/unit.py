"""UNIT (Liu, Breuel & Kautz 2017): unpaired translation through a shared latent space.

Two VAE-GANs (Larsen, Sønderby, Larochelle & Winther 2016), one per domain, whose last
encoder layers and first generator layers are the same layers, so that an image of either
domain is encoded into one latent space, and decoded into either domain:

    encoders    E_X = S_E o E'_X,   E_Y = S_E o E'_Y       (S_E shared: ``shared_encoder``)
    generators  G_X = G'_X o S_G,   G_Y = G'_Y o S_G       (S_G shared: ``shared_decoder``)
    q(z | x) = N(E_X(x), I)   and   z = E_X(x) + eps (the authors' latent has unit variance)
    translation x -> y:   G_Y(E_X(x))   (the mean, no noise)

The seed's objective, Eqs. (8.6)-(8.8) of ``08_cyclegan_unit.ipynb``, for each domain
(written for X; Y is symmetric):

    (8.6) VAE     lambda_1 KL(q(z | x) || N(0, I)) + lambda_2 E |G_X(z) - x|_1
    (8.7) KL      1/2 |E_X(x)|^2 (:func:`~course_lib.translation.losses.latent_penalty`)
    (8.8) GAN     E (l_X(G_X(z_y)) - 1)^2 for the translated y -> x images (least squares, as
                  in the authors' code; the discriminators' loss as in Eq. 8.1)
    cycle         lambda_3 KL(q(z | G_Y(z_x)) || N(0, I))
                  + lambda_4 E |G_X(E_Y(G_Y(z_x)) + eps) - x|_1

with the authors' code's weights: lambda_2 = lambda_4 = 10 (``reconstruction_weight``,
``cycle_weight``), lambda_1 = lambda_3 = 0.01 (``kl_weight``, ``cycle_kl_weight``), the
adversarial terms weighted 1 (the paper's 100 : 0.1 : 10 in the same ratios).

One ``train_step`` is the authors' ``gen_update`` then ``dis_update``: the generating networks
(both fronts, both backs, the shared layers; one optimizer) take a step on the whole
objective, then the discriminators take one on real images and the translations of the same
pass. Because the shared layers are one set of variables, both domains' losses reach them;
they appear once in ``trainable_variables``.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from course_lib import sampling
from course_lib.checks import check_finite_float
from course_lib.translation import losses
from course_lib.translation.base import TranslationModel

NETWORKS = ("encoder_x", "encoder_y", "shared_encoder", "shared_decoder", "decoder_x",
            "decoder_y", "discriminator_x", "discriminator_y")
WEIGHTS = {"adversarial_weight": 1.0, "reconstruction_weight": 10.0, "kl_weight": 0.01,
           "cycle_weight": 10.0, "cycle_kl_weight": 0.01}


@keras.saving.register_keras_serializable(package="course_lib")
class UNIT(TranslationModel):
    """Two VAE-GANs with a shared latent space (module docstring).

    Args:
        encoder_x, encoder_y: the domain-specific encoder fronts E'_X, E'_Y (images ->
            features).
        shared_encoder: S_E, features -> latent mean (shared by both domains).
        shared_decoder: S_G, latent -> features (shared by both domains).
        decoder_x, decoder_y: the domain-specific generator backs G'_X, G'_Y (features ->
            images in [-1, 1]).
        discriminator_x, discriminator_y: one raw output per patch (n, h, w, 1).
        adversarial_weight, reconstruction_weight, kl_weight, cycle_weight,
            cycle_kl_weight: the objective's weights (module docstring), each >= 0.
        seed: int seed of the latent noise.

    ``compile(generator_optimizer=..., discriminator_optimizer=...)``: the first updates every
    encoder and generator layer (shared ones once), the second both discriminators (the
    authors: Adam(1e-4, beta_1=0.5, beta_2=0.999) and weight decay). Metrics:
    ``generator_loss`` (the whole objective), ``adversarial_loss``, ``reconstruction_loss``,
    ``kl_loss``, ``cycle_loss``, ``discriminator_loss``.
    """

    divergence_advice = ("lower both learning rates (the authors' Adam(1e-4, beta_1=0.5)); "
                         "check that both domains' images lie in [-1, 1]")

    NETWORKS = NETWORKS
    LOGGED = ("generator_loss", "adversarial_loss", "reconstruction_loss", "kl_loss",
              "cycle_loss", "discriminator_loss")

    def __init__(self, encoder_x, encoder_y, shared_encoder, shared_decoder, decoder_x,
                 decoder_y, discriminator_x, discriminator_y, *, image_shape=(28, 28, 1),
                 adversarial_weight=1.0, reconstruction_weight=10.0, kl_weight=0.01,
                 cycle_weight=10.0, cycle_kl_weight=0.01, seed=None, **kwargs):
        super().__init__(image_shape=image_shape, seed=seed, **kwargs)
        given = {"adversarial_weight": adversarial_weight,
                 "reconstruction_weight": reconstruction_weight, "kl_weight": kl_weight,
                 "cycle_weight": cycle_weight, "cycle_kl_weight": cycle_kl_weight}
        self.weights_of_terms = {name: check_finite_float(value, name, at_least=0.0)
                                 for name, value in given.items()}
        # the shared layers are the shared_encoder and shared_decoder, used by both domains
        self.set_networks(dict(zip(NETWORKS, (encoder_x, encoder_y, shared_encoder,
                                              shared_decoder, decoder_x, decoder_y,
                                              discriminator_x, discriminator_y), strict=True)))
        self._check_latent_path()
        self.check_networks({}, {"discriminator_x": discriminator_x,
                                 "discriminator_y": discriminator_y})

    def _check_latent_path(self):
        """Each domain's front must feed the shared encoder, and the shared decoder each back."""
        example = np.zeros((1, *self.image_shape), "float32")
        for domain in "xy":
            front, back = getattr(self, f"encoder_{domain}"), getattr(self, f"decoder_{domain}")
            try:
                features = front(example)
                latent = self.shared_encoder(features)
                images = back(self.shared_decoder(latent))
            except Exception as error:  # noqa: BLE001 -- any failure: shapes do not fit
                raise ValueError(f"domain {domain.upper()}'s path encoder_{domain} -> "
                                 f"shared_encoder -> shared_decoder -> decoder_{domain} does not "
                                 f"fit together: {type(error).__name__}: {error}") from None
            if tuple(images.shape) != (1, *self.image_shape):
                raise ValueError(f"decoder_{domain} must return images of shape (n, "
                                 f"{', '.join(map(str, self.image_shape))}); it returns "
                                 f"{tuple(images.shape)}.")

    def get_config(self):
        return {**super().get_config(), **self.network_config(),
                "image_shape": list(self.image_shape), "seed": self.seed,
                **self.weights_of_terms}

    # ------------------------------------------------------------------ the latent space
    def encode(self, images, domain, training=False):
        """The latent mean E_d(images) (no noise)."""
        front = self.encoder_x if domain == "x" else self.encoder_y
        return self.shared_encoder(front(images, training=training), training=training)

    def decode(self, latent, domain, training=False):
        """G_d(latent), images of domain ``domain``."""
        back = self.decoder_x if domain == "x" else self.decoder_y
        return back(self.shared_decoder(latent, training=training), training=training)

    def noisy(self, mean):
        """z = mean + eps, eps ~ N(0, I) (drawn for the whole batch alike on every replica)."""
        eps = sampling.batch_normal(ops.shape(mean), self.seed_generator)
        return mean + ops.cast(eps, mean.dtype)

    def translate_batch(self, images, direction, training=False):
        source, target = ("x", "y") if direction == "x_to_y" else ("y", "x")
        return self.decode(self.encode(images, source, training), target, training)

    def cycle_batch(self, images, domain):
        other = "y" if domain == "x" else "x"
        there = self.decode(self.encode(images, domain), other)
        return self.decode(self.encode(there, other), domain)

    # ------------------------------------------------------------------ the objective
    def generator_terms(self, x, y, training=True):
        """The generating networks' pass and the terms of the objective: returns
        ``(x -> y translations, y -> x translations, terms)``."""
        n = ops.shape(x)[0]
        mean_x, mean_y = self.encode(x, "x", training), self.encode(y, "y", training)
        # one draw per domain: under R replicas each draw hands replica r its block of that
        # domain's rows, as on one device (one draw for [mean_x; mean_y] would not)
        z = ops.concatenate([self.noisy(mean_x), self.noisy(mean_y)])
        # each back decodes both domains' codes at once: its own reconstruction, and the
        # other domain translated into it
        features = self.shared_decoder(z, training=training)
        out_x = self.decoder_x(features, training=training)     # [x -> x; y -> x]
        out_y = self.decoder_y(features, training=training)     # [x -> y; y -> y]
        recon_x, y_to_x = out_x[:n], out_x[n:]
        x_to_y, recon_y = out_y[:n], out_y[n:]
        mean_xy, mean_yx = self.encode(x_to_y, "y", training), self.encode(y_to_x, "x", training)
        cycled_x = self.decode(self.noisy(mean_xy), "x", training)
        cycled_y = self.decode(self.noisy(mean_yx), "y", training)
        terms = {
            "adversarial": (losses.generator_loss(self.discriminator_x(y_to_x, training=training))
                            + losses.generator_loss(self.discriminator_y(x_to_y,
                                                                         training=training))),
            "reconstruction": losses.l1_distance(recon_x, x) + losses.l1_distance(recon_y, y),
            "kl": losses.latent_penalty(mean_x) + losses.latent_penalty(mean_y),
            "cycle": losses.cycle_loss(x, cycled_x, y, cycled_y),
            "cycle_kl": losses.latent_penalty(mean_xy) + losses.latent_penalty(mean_yx),
        }
        return x_to_y, y_to_x, terms

    def generator_objective(self, terms):
        w = self.weights_of_terms
        return (w["adversarial_weight"] * terms["adversarial"]
                + w["reconstruction_weight"] * terms["reconstruction"]
                + w["kl_weight"] * terms["kl"] + w["cycle_weight"] * terms["cycle"]
                + w["cycle_kl_weight"] * terms["cycle_kl"])

    def logged(self, g_loss, terms, d_loss):
        return {"generator_loss": g_loss, "adversarial_loss": terms["adversarial"],
                "reconstruction_loss": terms["reconstruction"],
                "kl_loss": terms["kl"] + terms["cycle_kl"], "cycle_loss": terms["cycle"],
                "discriminator_loss": d_loss}
