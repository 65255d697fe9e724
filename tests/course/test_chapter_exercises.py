"""Round trip of every chapter's exercises: release a student version (checked statically for
every chapter), grade it with the solutions filled back in (full marks), and grade it bare
(zero).

The default run executes each chapter notebook once, through nbval: the instructor version
holds the solutions and the hidden tests inline, so that run already checks every hidden test
against the reference solution. Each grading runs a chapter twice more in smoke mode (the
instructor's reference run, then the submission), so the gradings of the chapters are marked
slow: ``pytest -m slow`` grades all four both ways (about half an hour on two cores). The
grader's own machinery (reference run, sandbox, scoring) is tested on small fixture notebooks
in ``test_grading.py``."""

import ast
from pathlib import Path

import nbformat
import pytest

from course_lib.course import exercises

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("[0-9]*.ipynb"))
SMOKE = {"COURSE_LIB_SMOKE": "1", "TF_CPP_MIN_LOG_LEVEL": "3", "MPLBACKEND": "Agg"}


def _solution_lines(nb):
    """The lines between solution markers, stripped, in the instructor notebook."""
    lines, inside = [], False
    for cell in nb.cells:
        for line in cell.source.splitlines():
            if line.strip() == exercises.SOLUTION_BEGIN:
                inside = True
            elif line.strip() == exercises.SOLUTION_END:
                inside = False
            elif inside and line.strip():
                lines.append(line.strip())
    return lines


def _fill_in(student, instructor):
    """A student notebook whose solution cells hold the instructor's code (markers removed)."""
    solutions = {c.metadata["nbgrader"]["grade_id"]: c.source for c in instructor.cells
                 if c.metadata.get("nbgrader", {}).get("solution")}
    for cell in student.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if cell.metadata.get("nbgrader", {}).get("solution"):
            cell.source = "\n".join(line for line in solutions[grade_id].splitlines()
                                    if line.strip() not in (exercises.SOLUTION_BEGIN,
                                                            exercises.SOLUTION_END))
    return student


def _defined_names(source):
    """Names a cell binds at its top level (functions, classes, assignments)."""
    tree = ast.parse(source)
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        for target in getattr(node, "targets", []) + [getattr(node, "target", None)]:
            for leaf in ast.walk(target) if target is not None else []:
                if isinstance(leaf, ast.Name):
                    names.add(leaf.id)
    return names


def _hidden_region(source):
    return source.split(exercises.HIDDEN_BEGIN, 1)[1].split(exercises.HIDDEN_END, 1)[0]


PARAMS = dict(argnames="notebook", argvalues=NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])


@pytest.mark.parametrize(**PARAMS)
def test_release_hides_the_solutions_and_tests(notebook, tmp_path):
    instructor = nbformat.read(notebook, as_version=4)
    graded = exercises.exercises(instructor)
    assert len(graded) >= 3, f"{notebook.name} has {len(graded)} graded exercises; want >= 3"
    student_text = exercises.release(notebook, tmp_path / notebook.name).read_text()
    for line in _solution_lines(instructor):
        if len(line) > 12:  # skip short generic lines such as "return x"
            assert line not in student_text, f"solution text leaked: {line!r}"
    assert exercises.HIDDEN_BEGIN not in student_text
    assert student_text.count(exercises.STUDENT_STUB) >= len(graded)


@pytest.mark.parametrize(**PARAMS)
def test_every_hidden_test_checks_numbers_from_the_students_code(notebook):
    """What makes a stubbed exercise score 0 without running the chapter: each graded cell
    calls something a solution cell defines, and its hidden tests compare numbers with
    check_answer (the grader checks them against the instructor's own run). The executed
    proof is test_student_version_scores_zero, run with ``pytest -m slow``."""
    instructor = nbformat.read(notebook, as_version=4)
    solutions = set()
    for cell in instructor.cells:
        if cell.metadata.get("nbgrader", {}).get("solution") and cell.cell_type == "code":
            solutions |= _defined_names(cell.source)
    for exercise in exercises.exercises(instructor):
        cell = instructor.cells[exercise["cell_index"]]
        used = {n.id for n in ast.walk(ast.parse(cell.source)) if isinstance(n, ast.Name)}
        assert used & solutions, (exercise["grade_id"], "uses nothing the student writes")
        assert "check_answer(" in _hidden_region(cell.source), exercise["grade_id"]


@pytest.mark.slow
@pytest.mark.parametrize(**PARAMS)
def test_student_version_scores_zero(notebook, tmp_path):
    student_path = exercises.release(notebook, tmp_path / notebook.name)
    report = exercises.grade(student_path, notebook, report_path=tmp_path / "student.json",
                             env=SMOKE, timeout=900)
    assert report["score"] == 0, report
    assert all("NotImplementedError" in e["reason"] for e in report["exercises"]), report


@pytest.mark.slow
@pytest.mark.parametrize(**PARAMS)
def test_filled_in_version_scores_full_marks(notebook, tmp_path):
    instructor = nbformat.read(notebook, as_version=4)
    graded = exercises.exercises(instructor)
    student_path = exercises.release(notebook, tmp_path / notebook.name)
    filled_path = tmp_path / "filled" / notebook.name
    filled_path.parent.mkdir()
    nbformat.write(_fill_in(nbformat.read(student_path, as_version=4), instructor), filled_path)
    report = exercises.grade(filled_path, notebook, report_path=tmp_path / "filled.csv",
                             env=SMOKE, timeout=900)
    assert report["score"] == report["max_score"] == sum(e["points"] for e in graded), report
