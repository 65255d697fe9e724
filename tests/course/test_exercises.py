"""Tests for course_lib.course.exercises: releasing student notebooks and grading submissions.

The grading tests start real Jupyter kernels on tiny notebooks (about a second each).
"""

from __future__ import annotations

import copy
import csv
import json
import os
import runpy
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from course_lib.course.exercises import (
    HIDDEN_BEGIN,
    HIDDEN_END,
    PASSED_VARIABLES,
    SOLUTION_BEGIN,
    SOLUTION_END,
    STUDENT_STUB,
    ExerciseFormatError,
    exercises,
    grade,
    grade_main,
    make_student_version,
    release,
    release_main,
)

FIXTURE = Path(__file__).parent / "fixtures" / "tiny_chapter.ipynb"
REPO_ROOT = Path(__file__).resolve().parents[2]
SOLUTION_TEXT = ["return x * x", "total += math.exp(v - top)", "overflows a float"]
HIDDEN_TEXT = ["square(-4)", "square(0.5)", "1000.0 + math.log", "log_sum_exp([-5.0])"]
RIGHT = {"ex1_square_solution": "return x * x",
         "ex2_log_sum_exp_solution": "total += math.exp(v - top)"}


def _cell(nb, grade_id):
    """The cell whose nbgrader grade_id is ``grade_id``."""
    matches = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id]
    assert len(matches) == 1, grade_id
    return matches[0]


def _answer(nb, answers):
    """Fills the student stubs the way a student would: the two stub lines become ``body``."""
    for grade_id, body in answers.items():
        cell = _cell(nb, grade_id)
        lines = cell.source.split("\n")
        at = next(n for n, line in enumerate(lines) if line.strip() == "# YOUR CODE HERE")
        assert lines[at + 1].strip() == STUDENT_STUB
        indent = lines[at][: len(lines[at]) - len(lines[at].lstrip())]
        lines[at : at + 2] = [indent + line for line in body.splitlines()]
        cell.source = "\n".join(lines)
    return nb


def _graded_notebook(cells):
    """A notebook of (grade_id, points, source) graded cells, after an ``import os`` cell."""
    nb = new_notebook(cells=[new_code_cell("import os")])
    for grade_id, points, source in cells:
        meta = {"grade": True, "solution": False, "locked": True, "points": points,
                "grade_id": grade_id, "schema_version": 3}
        nb.cells.append(new_code_cell(source, metadata={"nbgrader": meta}))
    return nb


def _by_id(report):
    return {row["grade_id"]: row for row in report["exercises"]}


@pytest.fixture
def instructor_nb():
    return nbformat.read(FIXTURE, as_version=4)


@pytest.fixture
def instructor_path(tmp_path):
    path = tmp_path / "instructor" / FIXTURE.name
    path.parent.mkdir()
    shutil.copy(FIXTURE, path)
    return path


@pytest.fixture
def submitted(tmp_path, instructor_nb):
    """Writes a submission notebook into its own folder and returns its path."""

    def write(nb, name="submission.ipynb"):
        path = tmp_path / "submitted" / name
        path.parent.mkdir(exist_ok=True)
        nbformat.write(nb, path)
        return path

    return write


# ------------------------------------------------------------------ exercises / student version


def test_fixture_is_stored_clean():
    nb = nbformat.read(FIXTURE, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None


def test_exercises_lists_graded_cells_in_order(instructor_nb):
    assert exercises(instructor_nb) == [
        {"grade_id": "ex1_square", "points": 2, "cell_index": 4},
        {"grade_id": "ex2_log_sum_exp", "points": 3, "cell_index": 7},
    ]


def test_student_version_strips_solutions_and_hidden_tests(instructor_nb):
    setup = instructor_nb.cells[1]
    setup.outputs = [nbformat.v4.new_output("stream", name="stdout", text="ran\n")]
    setup.execution_count = 7
    before = copy.deepcopy(instructor_nb)

    student = make_student_version(instructor_nb)

    assert instructor_nb == before, "the instructor notebook must not change"
    text = nbformat.writes(student)
    for line in SOLUTION_TEXT + HIDDEN_TEXT + [SOLUTION_BEGIN, SOLUTION_END, HIDDEN_BEGIN,
                                                HIDDEN_END]:
        assert line not in text, line
    assert _cell(student, "ex1_square_solution").source == (
        'def square(x):\n    """Returns the square of x."""\n'
        "    # YOUR CODE HERE\n    raise NotImplementedError()")
    ex2 = _cell(student, "ex2_log_sum_exp_solution").source
    assert "    for v in values:\n        # YOUR CODE HERE\n        raise NotImplementedError()\n" \
           "    return top + math.log(total)" in ex2
    assert _cell(student, "ex1_square").source == "assert square(3) == 9"
    assert _cell(student, "ex2_log_sum_exp").source.startswith("assert abs(log_sum_exp([0.0")
    assert _cell(student, "ex2_explain").source.endswith("\n\nYOUR ANSWER HERE")
    assert student.cells[0].source == instructor_nb.cells[0].source
    for old, new in zip(instructor_nb.cells, student.cells, strict=True):
        assert new.metadata == old.metadata
        assert new.get("id") == old.get("id")
        if new.cell_type == "code":
            assert new.outputs == [] and new.execution_count is None
            compile(new.source, "<cell>", "exec")  # the stub keeps the code valid Python
    nbformat.validate(student)


def test_top_level_stub_keeps_indentation_and_line_ending():
    nb = new_notebook(cells=[
        new_code_cell(f"x = 1\n{SOLUTION_BEGIN}\ny = 2\n{SOLUTION_END}"),
        new_code_cell(f"  {SOLUTION_BEGIN}\n  y = 2\n  {SOLUTION_END}\nz = 3\n"),
    ])
    student = make_student_version(nb)
    assert student.cells[0].source == f"x = 1\n# YOUR CODE HERE\n{STUDENT_STUB}"
    assert student.cells[1].source == f"  # YOUR CODE HERE\n  {STUDENT_STUB}\nz = 3\n"


def _drop_line(grade_id, line):
    def mutate(nb):
        cell = _cell(nb, grade_id)
        assert line in cell.source
        cell.source = cell.source.replace(line + "\n", "").replace("\n" + line, "")
    return mutate


def _insert_after_first_line(grade_id, text):
    def mutate(nb):
        cell = _cell(nb, grade_id)
        first, rest = cell.source.split("\n", 1)
        cell.source = f"{first}\n{text}\n{rest}"
    return mutate


def _set_meta(grade_id, key, value):
    def mutate(nb):
        meta = _cell(nb, grade_id).metadata.nbgrader
        if value is None:
            del meta[key]
        else:
            meta[key] = value
    return mutate


def _unmark(grade_id):
    def mutate(nb):
        cell = _cell(nb, grade_id)
        cell.source = "\n".join(line for line in cell.source.split("\n")
                                if line.strip() not in (SOLUTION_BEGIN, SOLUTION_END))
    return mutate


def _hidden_in_setup(nb):
    nb.cells[1].source += f"\n{HIDDEN_BEGIN}\nassert True\n{HIDDEN_END}"


FORMAT_ERRORS = {
    "begin without end": (_drop_line("ex1_square_solution", "    " + SOLUTION_END),
                          r"cell 3 \(grade_id 'ex1_square_solution'\).*no matching ### END SOL"),
    "end without begin": (_drop_line("ex2_log_sum_exp", HIDDEN_BEGIN),
                          r"cell 7 \(grade_id 'ex2_log_sum_exp'\).*### END HIDDEN TESTS on line 4"
                          r" has no matching BEGIN"),
    "nested": (_insert_after_first_line("ex1_square_solution", f"    {SOLUTION_BEGIN}"),
               r"cell 3 \(grade_id 'ex1_square_solution'\).*nested"),
    "duplicate grade_id": (_set_meta("ex2_log_sum_exp", "grade_id", "ex1_square"),
                           r"cell 7 \(grade_id 'ex1_square'\): duplicate grade_id.*cell 4"),
    "graded without points": (_set_meta("ex1_square", "points", None),
                              r"cell 4 \(grade_id 'ex1_square'\).*'points'.*no 'points' key"),
    "points not a number": (_set_meta("ex1_square", "points", "two"),
                            r"cell 4 \(grade_id 'ex1_square'\).*'points'.*'two'"),
    "hidden outside graded cell": (_hidden_in_setup, r"cell 1 \(no grade_id\).*hidden tests"),
    "solution in graded cell": (
        _insert_after_first_line("ex1_square", f"{SOLUTION_BEGIN}\nx = 1\n{SOLUTION_END}"),
        r"cell 4 \(grade_id 'ex1_square'\).*solution region"),
    "near-miss marker": (_insert_after_first_line("ex1_square_solution", "    # BEGIN SOLUTION"),
                         r"cell 3 .*looks like a marker"),
    "unmarked solution cell": (_unmark("ex1_square_solution"),
                               r"cell 3 \(grade_id 'ex1_square_solution'\): solution cell .*has "
                               r"no ### BEGIN SOLUTION / ### END SOLUTION region"),
    "unmarked markdown answer": (_unmark("ex2_explain"),
                                 r"cell 8 \(grade_id 'ex2_explain'\): solution cell"),
}
NEAR_MISSES = ["### begin solution", "### BEGIN SOLUTON", "## BEGIN SOLUTION",
               "### BEGIN HIDDEN TEST", "#### END HIDDEN TESTS", "### End Solution",
               "#BEGINSOLUTION", "### BEGIN SOLUTION ###", "x = 1  ### END SOLUTION",
               "# begin the solution"]


@pytest.mark.parametrize("case", sorted(FORMAT_ERRORS))
def test_format_errors_name_the_cell(instructor_nb, tmp_path, case):
    mutate, message = FORMAT_ERRORS[case]
    mutate(instructor_nb)
    with pytest.raises(ExerciseFormatError, match=message):
        make_student_version(instructor_nb)
    with pytest.raises(ExerciseFormatError, match=message):
        exercises(instructor_nb)
    src = tmp_path / "broken.ipynb"
    nbformat.write(instructor_nb, src)
    with pytest.raises(ExerciseFormatError):
        release(src, tmp_path / "student" / "broken.ipynb")
    assert not (tmp_path / "student").exists()


@pytest.mark.parametrize("line", NEAR_MISSES)
def test_near_miss_markers_are_refused(instructor_nb, line):
    _insert_after_first_line("ex1_square_solution", "    " + line)(instructor_nb)
    with pytest.raises(ExerciseFormatError, match=r"cell 3 \(grade_id 'ex1_square_solution'\):"
                       r" line 2 .* looks like a marker but is not one; expected exactly one of"):
        make_student_version(instructor_nb)


def test_headings_and_comments_that_are_not_markers_pass(instructor_nb):
    _cell(instructor_nb, "ex2_explain").source = (
        "### Solution\n\n### Hidden tests\n\n" + _cell(instructor_nb, "ex2_explain").source)
    _insert_after_first_line("ex1_square_solution", "    # the end of the hidden layer loop")(
        instructor_nb)
    make_student_version(instructor_nb)


def test_format_error_is_a_value_error():
    assert issubclass(ExerciseFormatError, ValueError)


# ------------------------------------------------------------------------------------- release


def test_release_writes_student_version_and_keeps_source(instructor_path, tmp_path):
    original = instructor_path.read_bytes()
    dest = release(instructor_path, tmp_path / "deep" / "student" / "ch.ipynb")
    assert dest == tmp_path / "deep" / "student" / "ch.ipynb"
    written = nbformat.read(dest, as_version=4)
    assert STUDENT_STUB in _cell(written, "ex1_square_solution").source
    assert "return x * x" not in dest.read_text()
    assert instructor_path.read_bytes() == original


def test_release_refuses_to_overwrite_the_source(instructor_path):
    original = instructor_path.read_bytes()
    for dest in (instructor_path, instructor_path.parent, instructor_path.parent / ".." /
                 "instructor" / instructor_path.name):
        with pytest.raises(FileExistsError, match="refusing to overwrite"):
            release(instructor_path, dest)
    assert instructor_path.read_bytes() == original


def test_release_missing_source_names_the_path(tmp_path):
    missing = tmp_path / "nope.ipynb"
    with pytest.raises(FileNotFoundError, match="nope.ipynb"):
        release(missing, tmp_path / "out.ipynb")


# ------------------------------------------------------------------------------------- grading


def test_grade_student_version_scores_zero(instructor_path, submitted, tmp_path):
    student = make_student_version(nbformat.read(instructor_path, as_version=4))
    report_path = tmp_path / "reports" / "student.json"
    report = grade(submitted(student), instructor_path, report_path=report_path, timeout=60)

    assert (report["score"], report["max_score"]) == (0.0, 5.0)
    for row in report["exercises"]:
        assert row["passed"] is False and row["points"] == 0.0
        assert row["reason"].startswith("NotImplementedError"), row
    assert json.loads(report_path.read_text()) == report


def test_grade_instructor_version_scores_full_marks(instructor_path, tmp_path):
    report_path = tmp_path / "instructor.csv"
    report = grade(instructor_path, instructor_path, report_path=report_path, timeout=60)

    assert (report["score"], report["max_score"]) == (5.0, 5.0)
    assert [(r["grade_id"], r["points"], r["passed"], r["reason"]) for r in report["exercises"]] \
        == [("ex1_square", 2.0, True, ""), ("ex2_log_sum_exp", 3.0, True, "")]
    with report_path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["grade_id", "points", "max_points", "passed", "reason"]
    assert [r["grade_id"] for r in rows] == ["ex1_square", "ex2_log_sum_exp", "TOTAL"]
    assert (float(rows[-1]["points"]), float(rows[-1]["max_points"])) == (5.0, 5.0)
    assert rows[-1]["passed"] == "True"


def test_grade_restores_hidden_tests_and_ignores_edited_tests(instructor_path, submitted,
                                                             tmp_path):
    student = make_student_version(nbformat.read(instructor_path, as_version=4))
    # Passes the visible assert (square(3) == 9) but not the hidden ones.
    _answer(student, {"ex1_square_solution": "return 9",
                      "ex2_log_sum_exp_solution": RIGHT["ex2_log_sum_exp_solution"]})
    _cell(student, "ex2_log_sum_exp").source = "pass  # tests deleted"
    _cell(student, "ex1_square").metadata.nbgrader["points"] = 100
    executed = tmp_path / "graded" / "executed.ipynb"
    report = grade(submitted(student), instructor_path, executed_path=executed, timeout=60)

    rows = _by_id(report)
    assert rows["ex1_square"]["points"] == 0.0 and not rows["ex1_square"]["passed"]
    assert rows["ex1_square"]["reason"].startswith("AssertionError")
    assert rows["ex2_log_sum_exp"]["points"] == 3.0 and rows["ex2_log_sum_exp"]["passed"]
    assert (report["score"], report["max_score"]) == (3.0, 5.0)
    ran = nbformat.read(executed, as_version=4)
    assert "assert square(-4) == 16" in _cell(ran, "ex1_square").source
    assert "log_sum_exp([-5.0])" in _cell(ran, "ex2_log_sum_exp").source
    assert "return 9" in _cell(ran, "ex1_square_solution").source  # student code kept


def test_grade_missing_graded_cell(instructor_path, submitted):
    student = _answer(make_student_version(nbformat.read(instructor_path, as_version=4)), RIGHT)
    student.cells.remove(_cell(student, "ex2_log_sum_exp"))
    report = grade(submitted(student), instructor_path, timeout=60)

    rows = _by_id(report)
    assert rows["ex1_square"]["passed"] and rows["ex1_square"]["points"] == 2.0
    assert rows["ex2_log_sum_exp"] == {"grade_id": "ex2_log_sum_exp", "points": 0.0,
                                       "max_points": 3.0, "passed": False,
                                       "reason": "missing cell"}
    assert report["score"] == 2.0


def test_grade_runs_in_an_empty_folder_with_a_reduced_environment(
        tmp_path, submitted, monkeypatch):
    monkeypatch.delenv("COURSE_LIB_SMOKE", raising=False)
    monkeypatch.setenv("INSTRUCTOR_SECRET", "not for students")
    instructor = tmp_path / "instructor" / "env.ipynb"
    checks = [
        ("smoke", 'assert os.environ.get("COURSE_LIB_SMOKE") == "1", '
                  'os.environ.get("COURSE_LIB_SMOKE")'),
        ("secret", 'assert "INSTRUCTOR_SECRET" not in os.environ'),
        ("only", f"leaked = {{k for k, v in os.environ.items() if {dict(os.environ)!r}.get(k) == v"
                 f" and not k.startswith('LC_')}} - {set(PASSED_VARIABLES)!r}\n"
                 "assert not leaked, leaked"),  # (ipykernel adds TERM, PAGER and a few more)
        ("empty", 'assert os.listdir(".") == [], os.listdir(".")'),
        ("home", f'assert os.path.expanduser("~") != {os.path.expanduser("~")!r}'),
        ("away", f'assert not any({str(instructor.parent)!r} in v for v in os.environ.values())'
                 f' and {str(instructor.parent)!r} not in os.getcwd()'),
    ]
    nb = _graded_notebook([(grade_id, 1, source) for grade_id, source in checks])
    instructor.parent.mkdir()
    nbformat.write(nb, instructor)
    (instructor.parent / "course_data.txt").write_text("instructor folder")
    environ_before = dict(os.environ)

    report = grade(submitted(nb), instructor, env={"COURSE_LIB_SMOKE": "1"}, timeout=60)

    assert _by_id(report) == {grade_id: {"grade_id": grade_id, "points": 1.0, "max_points": 1.0,
                                         "passed": True, "reason": ""}
                              for grade_id, _ in checks}
    assert dict(os.environ) == environ_before
    with pytest.raises(TypeError, match="strings"):
        grade(instructor, instructor, env={"COURSE_LIB_SMOKE": 1})


def test_grade_interrupts_a_cell_past_the_timeout(tmp_path):
    nb = _graded_notebook([("sleepy", 1, "import time\ntime.sleep(60)"),
                           ("after", 1, "assert 1 + 1 == 2")])
    path = tmp_path / "slow.ipynb"
    nbformat.write(nb, path)
    report = grade(path, path, timeout=2)
    rows = _by_id(report)
    assert not rows["sleepy"]["passed"] and rows["sleepy"]["reason"].startswith("timed out")
    assert rows["after"]["passed"]


def test_grade_survives_a_dead_kernel(tmp_path):
    nb = _graded_notebook([("fine", 1, "assert True"), ("dies", 1, "os._exit(1)"),
                           ("later", 1, "assert True")])
    path = tmp_path / "dies.ipynb"
    nbformat.write(nb, path)
    rows = _by_id(grade(path, path, timeout=30))
    assert rows["fine"]["passed"]
    for grade_id in ("dies", "later"):
        assert not rows[grade_id]["passed"]
        assert rows[grade_id]["reason"].startswith("not run: DeadKernelError")


def test_grade_missing_submission_names_the_path(instructor_path, tmp_path):
    with pytest.raises(FileNotFoundError, match="absent.ipynb"):
        grade(tmp_path / "absent.ipynb", instructor_path)


# ----------------------------------------------------------------------------------------- CLI


def test_release_main_writes_files(instructor_path, tmp_path, capsys):
    out = tmp_path / "student"
    assert release_main([str(instructor_path), "--out", str(out)]) == 0
    written = out / instructor_path.name
    assert written.is_file() and "return x * x" not in written.read_text()
    assert str(written) in capsys.readouterr().out


def test_release_main_errors_exit_2(instructor_path, tmp_path, capsys):
    missing = tmp_path / "missing_chapter.ipynb"
    assert release_main([str(missing), "--out", str(tmp_path / "out")]) == 2
    assert str(missing) in capsys.readouterr().err
    original = instructor_path.read_bytes()
    assert release_main([str(instructor_path), "--out", str(instructor_path.parent)]) == 2
    assert "refusing to overwrite" in capsys.readouterr().err
    assert instructor_path.read_bytes() == original
    assert release_main([str(instructor_path)]) == 2  # --out is required


def test_grade_main_writes_report_and_prints_table(instructor_path, tmp_path, capsys):
    report_path = tmp_path / "report.json"
    code = grade_main([str(instructor_path), "--instructor", str(instructor_path),
                       "--report", str(report_path), "--timeout", "60"])
    assert code == 0
    out = capsys.readouterr().out
    assert "ex1_square" in out and "ex2_log_sum_exp" in out and "total" in out
    assert json.loads(report_path.read_text())["score"] == 5.0


def test_grade_main_full_mode_and_failing_score_still_exit_0(tmp_path, capsys):
    nb = _graded_notebook([("smoke", 1, 'assert os.environ["COURSE_LIB_SMOKE"] == "1", '
                                        'os.environ["COURSE_LIB_SMOKE"]')])
    path = tmp_path / "env.ipynb"
    nbformat.write(nb, path)
    report_path = tmp_path / "full.json"
    assert grade_main([str(path), "--instructor", str(path), "--full",
                       "--report", str(report_path)]) == 0
    row = json.loads(report_path.read_text())["exercises"][0]
    assert row["passed"] is False and row["reason"] == "AssertionError: 0"
    assert "FAIL" in capsys.readouterr().out


def test_grade_main_bad_path_exit_2(instructor_path, tmp_path, capsys):
    missing = tmp_path / "no_such_submission.ipynb"
    assert grade_main([str(missing), "--instructor", str(instructor_path)]) == 2
    assert str(missing) in capsys.readouterr().err
    assert grade_main([str(instructor_path)]) == 2  # --instructor is required


def test_module_dispatches_to_release(instructor_path, tmp_path, monkeypatch, capsys):
    out = tmp_path / "student"
    run = subprocess.run(
        [sys.executable, "-m", "course_lib.course.exercises", "release", str(instructor_path),
         "--out", str(out)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=60,
    )
    assert run.returncode == 0, run.stderr
    assert (out / instructor_path.name).is_file()
    # An unknown command: the same __main__ block, run here as `python -m` runs it (a second
    # interpreter would only start TensorFlow again); its exit status must be main()'s 2.
    monkeypatch.setattr(sys, "argv", ["exercises", "publish"])
    monkeypatch.delitem(sys.modules, "course_lib.course.exercises")   # runpy's warning
    with pytest.raises(SystemExit) as bad:
        runpy.run_module("course_lib.course.exercises", run_name="__main__")
    assert bad.value.code == 2 and "release,grade" in capsys.readouterr().err
