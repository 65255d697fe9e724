"""The variational family (Chapter 4): latent-variable models trained by a bound.

- ``latent``: the chapter's math as functions (reparameterization, Gaussian KL, decoder
  log-likelihoods, log-mean-exp, the two gradient estimators).
- ``vae``: VAE, IWAE and the conditional VAE, with the ``KLAnnealing`` callback.
- ``vqvae``: the VQ-VAE, its vector-quantizer layer and a prior over its codes.

``course_lib.evaluation.variational`` evaluates these models through their named methods
(``log_importance_weights``, ``encode``).
"""

from course_lib.variational import latent
from course_lib.variational.vae import VAE, KLAnnealing
from course_lib.variational.vqvae import VQVAE, PositionwisePrior, VectorQuantizer, perplexity

__all__ = ["latent", "VAE", "KLAnnealing", "VQVAE", "PositionwisePrior", "VectorQuantizer",
           "perplexity"]
