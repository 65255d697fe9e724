"""Course tooling, apart from the model library.

- ``config``: the smoke-mode switch every notebook reads in its hyperparameters cell.
- ``results``: the results log a notebook writes and ``docs/build_results.py`` renders.
- ``exercises``: student versions (``course-release``) and grading (``course-grade``).

The tooling may use every other part of ``course_lib``; nothing in the library imports it.
"""
