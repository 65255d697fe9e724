"""The losses of unpaired translation (Eqs. 8.1-8.4 and 8.6-8.8 of ``08_cyclegan_unit.ipynb``).

    (8.1) least-squares adversarial losses (Mao et al. 2017), on a discriminator's raw
          outputs l (one per patch for a PatchGAN), as in the CycleGAN authors' code:
          discriminator  1/2 [E (l(y) - 1)^2 + E l(G(x))^2],   generator  E (l(G(x)) - 1)^2
    (8.2) cycle consistency      E |F(G(x)) - x|_1 + E |G(F(y)) - y|_1
    (8.3) identity               E |F(x) - x|_1 + E |G(y) - y|_1
    (8.4) CycleGAN's objective   adversarial + lambda (cycle + lambda_id identity)
    (8.7) UNIT's KL term: with q(z | x) = N(mu(x), I) and p(z) = N(0, I),
          KL(q || p) = 1/2 |mu|^2; the authors' code penalizes mean(mu^2), which is that KL
          per latent dimension times 2, and so does :func:`latent_penalty`.

Every mean is over all elements (pixels, channels, patches, images), as ``torch.nn.L1Loss``
and ``MSELoss`` take them; losses come out float32 whatever the networks compute in.
"""

from __future__ import annotations

from keras import ops

LOSS_DTYPE = "float32"


def _float(x):
    return ops.cast(x, LOSS_DTYPE)


def l1_distance(a, b):
    """The mean absolute difference of two batches, the L1 loss of Eqs. (8.2) and (8.3)."""
    return ops.mean(ops.abs(_float(a) - _float(b)))


def cycle_loss(x, cycled_x, y, cycled_y):
    """Eq. (8.2): the L1 distance of each domain's images to their round trips."""
    return l1_distance(cycled_x, x) + l1_distance(cycled_y, y)


def identity_loss(x, f_of_x, y, g_of_y):
    """Eq. (8.3): each generator should leave images of its own output domain alone."""
    return l1_distance(f_of_x, x) + l1_distance(g_of_y, y)


def discriminator_loss(real_outputs, fake_outputs):
    """Eq. (8.1), the discriminator's least-squares loss: real patches to 1, fakes to 0,
    halved as in the authors' code."""
    return 0.5 * (ops.mean(ops.square(_float(real_outputs) - 1.0))
                  + ops.mean(ops.square(_float(fake_outputs))))


def generator_loss(fake_outputs):
    """Eq. (8.1), the generator's least-squares loss: its images' patches to 1."""
    return ops.mean(ops.square(_float(fake_outputs) - 1.0))


def latent_penalty(mean):
    """Eq. (8.7): mean(mu^2) over all latent elements, UNIT's KL(N(mu, I) || N(0, I)) per
    dimension times 2 (the authors' code)."""
    return ops.mean(ops.square(_float(mean)))
