"""Unpaired image translation (Chapter 8): CycleGAN and UNIT.

- :class:`CycleGAN` (``cyclegan``): two generators, two PatchGAN discriminators,
  least-squares adversarial, cycle-consistency and identity losses, image histories.
- :class:`UNIT` (``unit``): two VAE-GANs whose last encoder layers and first generator
  layers are shared, so both domains map into one latent space.
- :class:`TranslationModel` (``base``): what both share: two image domains, unpaired
  ``fit(x, y)``, one optimizer per player, ``translate`` and ``cycle``.
- ``layers``: :func:`instance_normalization`, :class:`ImageHistory` and
  :class:`SingleChannelConv2D`; ``losses``: the
  losses of both models; ``networks``: the 28x28 networks (:func:`resnet_generator`,
  :func:`patch_discriminator`, :func:`cyclegan_networks`, :func:`unit_networks`).
"""

from course_lib.translation.base import DIRECTIONS, DOMAINS, TranslationModel
from course_lib.translation.cyclegan import CycleGAN
from course_lib.translation.layers import (
    ImageHistory,
    SingleChannelConv2D,
    history_update,
    instance_normalization,
)
from course_lib.translation.networks import (
    cyclegan_networks,
    patch_discriminator,
    resnet_generator,
    unit_networks,
)
from course_lib.translation.unit import UNIT

__all__ = [
    "CycleGAN", "UNIT", "TranslationModel", "DIRECTIONS", "DOMAINS", "ImageHistory",
    "SingleChannelConv2D",
    "history_update", "instance_normalization", "cyclegan_networks", "unit_networks",
    "resnet_generator", "patch_discriminator",
]
