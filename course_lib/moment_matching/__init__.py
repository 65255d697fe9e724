"""The moment-matching family (Chapter 7): generators trained by a kernel two-sample
statistic instead of a likelihood or a discriminator.

- ``gmmn``: the ``GMMN`` model (Li, Swersky & Zemel 2015), trained on sqrt(MMD^2) with a
  sum of Gaussian kernels, and the paper's MLP generator ``gmmn_generator``. GMMN+AE is the
  same model trained on the codes of an autoencoder (``course_lib.denoising``).

The MMD itself lives in ``course_lib.kernels`` and its permutation test in
``course_lib.evaluation.two_sample``.
"""

from course_lib.moment_matching.gmmn import GMMN, gmmn_generator

__all__ = ["GMMN", "gmmn_generator"]
