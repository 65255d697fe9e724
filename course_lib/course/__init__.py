"""Course tooling, apart from the model library.

- ``config``: the smoke-mode switch every notebook reads in its hyperparameters cell.
- ``results``: the results log a notebook writes and ``docs/build_results.py`` renders.
- ``release``: student versions of the chapter notebooks (``course-release``).
- ``grading``: grading submissions apart from the instructor's files (``course-grade``),
  and ``check_answer``, which hidden tests call.
- ``exercises``: the public names of both and ``python -m course_lib.course.exercises``.

The tooling may use every other part of ``course_lib``; nothing in the library imports it.
"""
