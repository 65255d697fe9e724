"""course_lib: models and machinery for the deep generative models course.

One model family per module (``rbm``, ``boltzmann_machine``, ...); shared machinery in
its own modules: ``data``, ``evaluation``, ``training``, ``plotting``, ``exercises`` and
``config`` (the smoke-mode switch).
"""

__version__ = "0.1.0"
