"""Exercises: release student notebooks from instructor notebooks, and grade submissions.

``release`` (in :mod:`course_lib.course.release`) turns an instructor chapter notebook
(solutions and hidden tests in) into the student version; ``grade`` (in
:mod:`course_lib.course.grading`) runs a submission with the instructor's tests put back,
apart from the instructor's files, scores each exercise and writes a JSON or CSV report;
``grade_batch`` grades a folder into one CSV. Hidden tests call :func:`check_answer`, which
the grader compares with the instructor's own run. This module gathers their public names
and the command line.

How instructors use it::

    course-release notebooks/01_rbm.ipynb --out student/
    course-grade alice/01_rbm.ipynb --instructor notebooks/01_rbm.ipynb --report a.json
    course-grade --batch submissions/ --instructor notebooks/01_rbm.ipynb --csv grades.csv

(or ``python -m course_lib.course.exercises release|grade ...``). Grading runs in smoke mode
(``COURSE_LIB_SMOKE=1``) unless ``--full`` is given. nbgrader itself (the ``instructor``
extra) reads the same notebooks; these modules need only core dependencies (nbformat,
nbclient, jupyter_client, ipykernel, psutil).
"""

from __future__ import annotations

import sys

from course_lib.course.grading import (
    BATCH_COLUMNS,
    MISSING_CELL,
    PASSED_VARIABLES,
    REPORT_COLUMNS,
    InstructorRunError,
    SubmissionError,
    check_answer,
    grade,
    grade_batch,
    grade_main,
)
from course_lib.course.release import (
    ANSWER_PROMPT,
    CODE_PROMPT,
    HIDDEN_BEGIN,
    HIDDEN_END,
    SOLUTION_BEGIN,
    SOLUTION_END,
    STUDENT_STUB,
    ExerciseFormatError,
    exercises,
    make_student_version,
    release,
    release_main,
)

__all__ = ["ANSWER_PROMPT", "BATCH_COLUMNS", "CODE_PROMPT", "HIDDEN_BEGIN", "HIDDEN_END",
           "MISSING_CELL", "PASSED_VARIABLES", "REPORT_COLUMNS", "SOLUTION_BEGIN",
           "SOLUTION_END", "STUDENT_STUB", "ExerciseFormatError", "InstructorRunError",
           "SubmissionError", "check_answer", "exercises", "grade", "grade_batch",
           "grade_main", "main", "make_student_version", "release", "release_main"]


def main(argv=None) -> int:
    """``python -m course_lib.course.exercises {release,grade} ...``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = {"release": release_main, "grade": grade_main}
    if not argv or argv[0] not in commands:
        print("usage: python -m course_lib.course.exercises {release,grade} ...", file=sys.stderr)
        return 2
    return commands[argv[0]](argv[1:])


if __name__ == "__main__":
    sys.exit(main())
