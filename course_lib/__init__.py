"""course_lib: models and machinery for the deep generative models course.

Model families, one per module: ``rbm`` (Bernoulli and Gaussian-Bernoulli RBMs trained by
CD-k, PCD and FPCD), ``boltzmann_machine`` (the fully connected Boltzmann machine), ``dbn``
(deep belief networks with up-down fine-tuning), ``dbm`` (deep Boltzmann machines), ``vae``
(VAE, IWAE and conditional VAE) and ``vqvae`` (VQ-VAE and a prior over its codes).

Shared machinery: ``stacking`` (greedy layer-wise training, the DBM's doubled RBMs),
``latent`` (Gaussian latent variables, KL, decoder likelihoods, gradient estimators),
``data`` (MNIST offline, binarizations, 8x8 digits), ``toy_data``
(synthetic sets with known optima), ``sampling`` (seeded Bernoulli/Gaussian draws),
``evaluation`` (exact likelihood, AIS, importance-weighted bounds, active units,
pseudo-likelihood and other scores), ``training``
(divergence guard, safe checkpoints, evaluation callbacks, fast array input), ``plotting``,
``results`` (numbers beside the published ones), ``exercises`` (student versions and
grading) and ``config`` (the smoke-mode switch).
"""

__version__ = "0.1.0"
