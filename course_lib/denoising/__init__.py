"""The denoising family (Chapter 7): autoencoders that learn to undo a corruption, and the
Markov chains they define.

- ``dae``: ``DenoisingAutoencoder`` (Bengio et al. 2013): salt-and-pepper, masking or
  Gaussian corruption, walkback training, the chain corrupt -> reconstruct -> sample, and
  ``log_corruption`` for the exact chain of a small binary model
  (``course_lib.evaluation.exact_dae_chain``). Its code layer is also the space in which
  Chapter 7 trains GMMN+AE.
"""

from course_lib.denoising.dae import CORRUPTIONS, DenoisingAutoencoder

__all__ = ["CORRUPTIONS", "DenoisingAutoencoder"]
