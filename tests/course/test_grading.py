"""Tests for course_lib.course.grading against crafted submissions, limits, malformed notebooks
and batches.

Most tests grade submissions built from ``fixtures/checked_chapter.ipynb``, whose hidden tests
use ``check_answer`` and which imports no TensorFlow, so each kernel starts in about a
second. The instructor's reference run is made once per test session (the grader caches it).
"""

from __future__ import annotations

import csv
import json
import shutil
import textwrap
import time
from pathlib import Path

import nbformat
import psutil
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from course_lib.course.exercises import (
    BATCH_COLUMNS,
    check_answer,
    grade,
    grade_batch,
    grade_main,
    make_student_version,
)

FIXTURES = Path(__file__).parent / "fixtures"
CHECKED = FIXTURES / "checked_chapter.ipynb"
TINY = FIXTURES / "tiny_chapter.ipynb"
WRONG = {"ex1_square_solution": "def square(x):\n    return 0 * x\n",
         "ex2_log_sum_exp_solution": "def log_sum_exp(values):\n    return 0.0\n"}
LIMITS = {"timeout": 30, "total_timeout": 120}


def _cell(nb, grade_id):
    return next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


def _attack(instructor_path, source):
    """A submission whose first solution cell holds ``source`` and the second nothing."""
    return _submission(instructor_path, {"ex1_square_solution": source,
                                         "ex2_log_sum_exp_solution": "# (see above)"})


def _submission(instructor_path, solutions, extra=()):
    """The student version with whole solution cells replaced, then ``extra`` code cells
    put right after the setup cell (before any graded cell)."""
    nb = make_student_version(nbformat.read(instructor_path, as_version=4))
    for grade_id, source in solutions.items():
        _cell(nb, grade_id).source = textwrap.dedent(source)
    for n, source in enumerate(extra):
        nb.cells.insert(2 + n, new_code_cell(textwrap.dedent(source)))
    return nb


@pytest.fixture
def instructor(tmp_path):
    path = tmp_path / "instructor" / CHECKED.name
    path.parent.mkdir()
    shutil.copy(CHECKED, path)
    return path


@pytest.fixture
def write(tmp_path):
    def write(nb, name="submission.ipynb"):
        path = tmp_path / "submitted" / name
        path.parent.mkdir(exist_ok=True)
        if isinstance(nb, (str, bytes)):
            path.write_bytes(nb.encode() if isinstance(nb, str) else nb)
        else:
            nbformat.write(nb, path)
        return path

    return write


def _reasons(report):
    return {row["grade_id"]: row["reason"] for row in report["exercises"]}


# --------------------------------------------------------------------------- check_answer


def test_check_answer_outside_grading_is_assert_allclose():
    import numpy as np

    check_answer(np.float32(2.0), 2.0)
    check_answer([[1, 2]], np.array([[1.0, 2.0]]))
    check_answer(np.zeros(3), 0.0, atol=1e-12)  # broadcasts like assert_allclose
    check_answer(np.array([True, False]))  # no expected: only "is it numbers?"
    with pytest.raises(AssertionError):
        check_answer(1.0, 1.1, rtol=1e-3)

    class AlwaysEqual:
        def __eq__(self, other):
            return True

    for value in (AlwaysEqual(), "3", None, [1, [2, 3]], 1 + 2j):
        with pytest.raises(TypeError, match="check_answer needs numbers"):
            check_answer(value, 3)


# -------------------------------------------------------------------- crafted submissions

ALWAYS_EQUAL = """\
import numpy as np

class AlwaysEqual:
    "Equal to everything, and close to everything."
    def __eq__(self, other): return True
    def __ne__(self, other): return False
    def __lt__(self, other): return True
    def __sub__(self, other): return self
    def __abs__(self): return self
    __hash__ = object.__hash__

class ArrayTrick(np.ndarray):
    def __eq__(self, other): return np.ones(np.shape(other), bool)

class WrongArray(AlwaysEqual):
    def __array__(self, dtype=None, copy=None): return np.zeros(7)

def square(x):
    return WrongArray() if np.ndim(x) == 0 else AlwaysEqual()

def log_sum_exp(values):
    return np.array(0.0).view(ArrayTrick)
"""

BLANK_HIDDEN = """\
def square(x):
    return 9

def log_sum_exp(values):
    return 0.0

def _drop_tests(lines):
    return [] if any("check_answer" in line or "assert" in line for line in lines) else lines

get_ipython().input_transformers_post.append(_drop_tests)
get_ipython().input_transformers_cleanup.append(_drop_tests)
"""

BLANK_EVERYTHING = """\
def square(x):
    return 9

def log_sum_exp(values):
    return 0.0

get_ipython().input_transformers_post.append(lambda lines: [])
"""

PATCHES = """\
import builtins
import numpy as np

def square(x):
    return 9

def log_sum_exp(values):
    return 0.0

np.testing.assert_allclose = lambda *args, **kwargs: None
check_answer = lambda *args, **kwargs: None
builtins.abs = lambda x: 0.0
__course_grade__.check = lambda *args, **kwargs: None
"""

READ_INSTRUCTOR = """\
import glob, json, os

def _notebooks():
    places = {os.getcwd(), os.path.dirname(os.getcwd()), os.environ.get("HOME", ""),
              os.environ.get("TMPDIR", "")}
    for place in places - {""}:
        yield from glob.glob(os.path.join(place, "**", "*.ipynb"), recursive=True)

for _path in _notebooks():
    for _cell in json.load(open(_path))["cells"]:
        _source = "".join(_cell["source"])
        if "### BEGIN SOLUTION" in _source and _cell["cell_type"] == "code":
            exec(_source.replace("### BEGIN SOLUTION", "").replace("### END SOLUTION", ""))
"""

REWRITE_INSTRUCTOR = """\
import glob, json, os

def square(x):
    return 9

def log_sum_exp(values):
    return 0.0

for _place in (os.getcwd(), os.path.dirname(os.getcwd()), *TARGETS):
    for _path in glob.glob(os.path.join(_place, "**", "*.ipynb"), recursive=True) + [_place]:
        if not _path.endswith(".ipynb"):
            continue
        _nb = json.load(open(_path))
        for _cell in _nb["cells"]:
            if _cell.get("metadata", {}).get("nbgrader", {}).get("grade"):
                _cell["source"] = "pass"
        json.dump(_nb, open(_path, "w"))
"""


@pytest.mark.parametrize("attack", ["always_equal", "blank_hidden", "blank_everything",
                                    "patches", "read_instructor"])
def test_crafted_submission_scores_zero(attack, instructor, write):
    source = {"always_equal": ALWAYS_EQUAL, "blank_hidden": BLANK_HIDDEN,
              "blank_everything": BLANK_EVERYTHING, "patches": PATCHES,
              "read_instructor": READ_INSTRUCTOR}[attack]
    report = grade(write(_attack(instructor, source)), instructor, **LIMITS)
    assert report["score"] == 0.0, report
    reasons = _reasons(report)
    if attack == "always_equal":
        assert "check_answer needs numbers" in reasons["ex1_square"]
        assert "differ from the instructor's" in reasons["ex2_log_sum_exp"]
    if attack == "blank_hidden":  # the hidden checks ran, on the wrong answers
        assert reasons["ex1_square"] == "check 1 of 2 (line 4): shape (), expected (5,)"
    if attack == "patches":
        assert set(reasons.values()) == {"check 1 of 2 (line 4): did not run",
                                         "check 1 of 3 (line 1): did not run"}
    if attack == "blank_everything":
        assert set(reasons.values()) == {
            "the tests did not run to their end (their completion record is missing)"}
    if attack == "read_instructor":
        assert all(r.startswith("NameError") for r in reasons.values()), reasons


def test_plain_assert_tests_survive_input_transformers(tmp_path, write):
    """Graded cells without check_answer still run as written: the transformer is undone."""
    instructor = tmp_path / "tiny.ipynb"
    shutil.copy(TINY, instructor)
    nb = _attack(instructor, BLANK_HIDDEN.replace("return 9", "return x + 6"))
    report = grade(write(nb), instructor, **LIMITS)
    assert report["score"] == 0.0
    assert _reasons(report)["ex1_square"].startswith("AssertionError")


def test_instructor_notebook_is_out_of_reach_and_unchanged(instructor, write, tmp_path):
    before = instructor.read_bytes()
    attack = REWRITE_INSTRUCTOR.replace("*TARGETS", "")
    first = grade(write(_submission(instructor, {}, extra=[attack]), "a.ipynb"), instructor,
                  **LIMITS)
    assert instructor.read_bytes() == before
    assert first["score"] == 0.0 and first["error"] == ""
    # The hidden tests are still there for the next, wrong, submission.
    second = grade(write(_submission(instructor, WRONG), "b.ipynb"), instructor, **LIMITS)
    assert second["score"] == 0.0


def test_changing_the_instructor_notebook_scores_zero(instructor, write):
    attack = REWRITE_INSTRUCTOR.replace("*TARGETS", repr(str(instructor)) + ",")
    nb = _submission(instructor, {
        "ex1_square_solution": "def square(x):\n    return x * x\n",
        "ex2_log_sum_exp_solution": "import math\ndef log_sum_exp(values):\n"
                                    "    top = max(values)\n"
                                    "    return top + math.log(sum(math.exp(v - top) "
                                    "for v in values))\n"}, extra=[attack])
    report = grade(write(nb), instructor, **LIMITS)
    assert report["score"] == 0.0
    assert "changed on disk while this submission ran" in report["error"]
    assert all("changed on disk" in r for r in _reasons(report).values())


DETACHED = """\
import os, subprocess, sys, time

def square(x):
    return 9

def log_sum_exp(values):
    return 0.0

_forge = '''
import json, os, sys, time
open(sys.argv[1], "w").write(str(os.getpid()))
time.sleep(float(sys.argv[3]))
json.dump({"score": 5.0, "forged": True}, open(sys.argv[2], "w"))
'''
_daemon = '''
import os, subprocess, sys
if os.fork() == 0:
    os.setsid()
    subprocess.Popen([sys.executable, "-c", sys.argv[1], *sys.argv[2:]])
os._exit(0)
'''
subprocess.Popen([sys.executable, "-c", _forge, PIDS[0], REPORT, "3"], start_new_session=True)
subprocess.Popen([sys.executable, "-c", _daemon, _forge, PIDS[1], REPORT, "3"]).wait()
while not all(os.path.exists(p) and open(p).read() for p in PIDS):
    time.sleep(0.05)
"""


def test_detached_children_end_with_the_run_and_cannot_forge_the_report(
        instructor, write, tmp_path):
    report_path, pids = tmp_path / "report.json", [tmp_path / "pid1", tmp_path / "pid2"]
    report_path.write_text("{}")  # an old report: replaced, not appended to
    source = DETACHED.replace("PIDS", repr([str(p) for p in pids])).replace(
        "REPORT", repr(str(report_path)))
    report = grade(write(_submission(instructor, {}, extra=[source])), instructor,
                   report_path=report_path, **LIMITS)
    for pid in (int(p.read_text()) for p in pids):
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == "zombie", pid
    assert json.loads(report_path.read_text()) == report
    assert report["score"] == 0.0


# --------------------------------------------------------------------------------- limits


def _legacy(cells, path):
    nb = new_notebook(cells=[new_code_cell("import os, signal, time")])
    for grade_id, source in cells:
        meta = {"grade": True, "solution": False, "locked": True, "points": 1,
                "grade_id": grade_id, "schema_version": 3}
        nb.cells.append(new_code_cell(source, metadata={"nbgrader": meta}))
    nbformat.write(nb, path)
    return path


def test_a_kernel_that_ignores_interrupts_loses_the_rest_of_the_run(tmp_path):
    path = _legacy([("stuck", "signal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n"
                              "    pass"),
                    ("next", "assert True"), ("last", "assert True")], tmp_path / "stuck.ipynb")
    start = time.monotonic()
    report = grade(path, path, timeout=1, total_timeout=600)
    assert time.monotonic() - start < 30
    reasons = _reasons(report)
    assert reasons["stuck"] == "timed out: ran past the limit of 1 s per cell"
    assert reasons["next"] == reasons["last"] == (
        "not run: the kernel ignored the interrupt after cell 1 ran past its limit")


def test_total_time_limit(tmp_path):
    path = _legacy([("slow", "time.sleep(60)"), ("after", "assert True")],
                   tmp_path / "slow.ipynb")
    start = time.monotonic()
    report = grade(path, path, timeout=50, total_timeout=2)
    assert time.monotonic() - start < 30
    reasons = _reasons(report)
    assert reasons["slow"] == "timed out: the total time limit of 2 s was reached"
    assert reasons["after"] == "not run: the total time limit of 2 s was reached"


@pytest.mark.parametrize("limits", [{"timeout": 0}, {"timeout": -1}, {"total_timeout": 0},
                                    {"timeout": None}, {"total_timeout": float("inf")}])
def test_limits_must_be_positive(limits, instructor):
    with pytest.raises(ValueError, match="positive number of seconds"):
        grade(instructor, instructor, **limits)


@pytest.mark.parametrize("flag", ["--timeout", "--total-timeout"])
def test_cli_refuses_zero_limits(flag, instructor, capsys):
    assert grade_main([str(instructor), "--instructor", str(instructor), flag, "0"]) == 2
    assert "positive number of seconds" in capsys.readouterr().err


# ---------------------------------------------------------------------- malformed notebooks

MALFORMED = {
    "json_list": ("[1, 2, 3]", "got a JSON list"),
    "not_json": ("{\"cells\": [", "not UTF-8 JSON"),
    "no_cells": (json.dumps({"metadata": {}, "nbformat": 4, "nbformat_minor": 5}), "cells"),
    "no_cell_type": (json.dumps({"metadata": {}, "nbformat": 4, "nbformat_minor": 5,
                                 "cells": [{"source": "x = 1", "metadata": {}}]}),
                     "not a notebook"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_submission_gives_a_report_with_its_error(case, instructor, write, tmp_path,
                                                           capsys):
    text, message = MALFORMED[case]
    path, report_path = write(text), tmp_path / "report.csv"
    assert grade_main([str(path), "--instructor", str(instructor), "--report",
                       str(report_path)]) == 0
    assert "unreadable submission" in capsys.readouterr().err
    with report_path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["grade_id"] for r in rows] == ["ex1_square", "ex2_log_sum_exp", "TOTAL"]
    assert all(r["points"] == "0.0" and message in r["reason"] for r in rows), rows


# ------------------------------------------------------------------------------------ batch


def test_batch_grades_a_folder_into_one_csv(instructor, tmp_path, capsys):
    folder = tmp_path / "batch"
    (folder / "bob").mkdir(parents=True)
    (folder / ".ipynb_checkpoints").mkdir()
    nbformat.write(nbformat.read(instructor, as_version=4), folder / "alice.ipynb")
    nbformat.write(_submission(instructor, WRONG), folder / "bob" / "chapter.ipynb")
    (folder / "carol.ipynb").write_text("[]")
    shutil.copy(instructor, folder / ".ipynb_checkpoints" / "alice-checkpoint.ipynb")
    out = tmp_path / "grades.csv"

    assert grade_main(["--batch", str(folder), "--instructor", str(instructor),
                       "--csv", str(out), "--timeout", "30"]) == 0
    printed = capsys.readouterr().out
    assert "alice.ipynb: 5/5" in printed and "carol.ipynb: 0/5" in printed
    with out.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == list(BATCH_COLUMNS)
    totals = {r["submission"]: (float(r["points"]), r["reason"]) for r in rows
              if r["grade_id"] == "TOTAL"}
    assert list(totals) == ["alice.ipynb", "bob/chapter.ipynb", "carol.ipynb"]
    assert totals["alice.ipynb"] == (5.0, "") and totals["bob/chapter.ipynb"][0] == 0.0
    bob = {r["grade_id"]: r["reason"] for r in rows if r["submission"] == "bob/chapter.ipynb"}
    assert bob["ex1_square"].startswith("AssertionError")  # square(3) == 0: the visible test
    assert bob["ex2_log_sum_exp"].startswith(  # log_sum_exp gives 0.0 for everything
        "check 1 of 3 (line 1): 1 of 1 values differ from the instructor's (largest "
        "difference 0.693")
    assert totals["carol.ipynb"][1].startswith("unreadable submission: not a notebook")
    assert len(rows) == 3 * 3


def test_batch_argument_errors(instructor, tmp_path, capsys):
    assert grade_main(["--batch", str(tmp_path), "--instructor", str(instructor)]) == 2
    assert "--csv" in capsys.readouterr().err
    assert grade_main([str(instructor), "--batch", str(tmp_path), "--instructor",
                       str(instructor), "--csv", "x.csv"]) == 2
    assert grade_main(["--instructor", str(instructor)]) == 2
    with pytest.raises(FileNotFoundError, match="submission folder"):
        grade_batch(tmp_path / "nowhere", instructor, tmp_path / "x.csv")


def test_empty_batch_writes_a_header(instructor, tmp_path):
    assert grade_batch(tmp_path / "instructor", instructor, tmp_path / "none.csv") == []
    assert (tmp_path / "none.csv").read_text().strip() == ",".join(BATCH_COLUMNS)


def test_instructor_that_fails_its_own_checks_is_an_error(tmp_path, write):
    nb = nbformat.read(CHECKED, as_version=4)
    _cell(nb, "ex1_square_solution").source = _cell(nb, "ex1_square_solution").source.replace(
        "return x * x", "return x * x + (x == -4)")
    path = tmp_path / "broken.ipynb"
    nbformat.write(nb, path)
    from course_lib.course.exercises import InstructorRunError

    with pytest.raises(InstructorRunError, match=r"cell 4 \('ex1_square'\).*AssertionError"):
        grade(path, path, **LIMITS)


def test_a_nan_answer_is_named_as_nan_not_as_a_zero_difference():
    from course_lib.course.grading import _compare

    def record(values):
        return dict(kind="check", shape=[len(values)], dtype="f", data=values,
                    rtol=1e-7, atol=0.0)

    message = _compare(record([1.0, 2.0, 3.0]), record([1.0, float("nan"), 3.0]))
    assert "1 of 3 values differ" in message and "NaN on one side only" in message, message
    message = _compare(record([1.0, 2.0, 3.0]), record([1.0, 2.5, 3.0]))
    assert "largest difference 0.5" in message, message
    assert _compare(record([1.0, float("nan")]), record([1.0, float("nan")])) == ""
