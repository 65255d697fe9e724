"""The adversarial family (Chapter 5, and the base of Chapter 8's image translation).

- ``gan``: the two-player ``GAN`` model (one optimizer per player, minimax, non-saturating
  and least-squares losses, k discriminator steps), its losses as functions, the seed
  paper's MLP networks, a small DCGAN, the ``MinibatchDiscrimination`` layer and a
  ``LeakyReLU`` whose gradient TensorFlow's graph optimizer can fuse.

``course_lib.evaluation.samples`` judges the samples of these (and every other) generators
without a likelihood: Parzen windows, Fréchet and kernel distances, mode coverage.
"""

from course_lib.adversarial.gan import (
    GAN,
    LOSSES,
    LeakyReLU,
    MinibatchDiscrimination,
    dcgan_discriminator,
    dcgan_generator,
    discriminator_loss,
    generator_loss,
    mlp_discriminator,
    mlp_generator,
)

__all__ = ["GAN", "LOSSES", "LeakyReLU", "MinibatchDiscrimination", "dcgan_discriminator",
           "dcgan_generator", "discriminator_loss", "generator_loss", "mlp_discriminator",
           "mlp_generator"]
