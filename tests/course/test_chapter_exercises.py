"""Round trip of every chapter's exercises: release a student version, grade it, grade it
again with the solutions filled back in. Runs each chapter notebook twice in smoke mode."""

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


@pytest.mark.slow
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_student_round_trip(notebook, tmp_path):
    instructor = nbformat.read(notebook, as_version=4)
    graded = exercises.exercises(instructor)
    assert len(graded) >= 3, f"{notebook.name} has {len(graded)} graded exercises; want >= 3"

    student_path = exercises.release(notebook, tmp_path / notebook.name)
    student_text = student_path.read_text()
    for line in _solution_lines(instructor):
        if len(line) > 12:  # skip short generic lines such as "return x"
            assert line not in student_text, f"solution text leaked: {line!r}"
    assert exercises.HIDDEN_BEGIN not in student_text
    assert student_text.count(exercises.STUDENT_STUB) >= len(graded)

    report = exercises.grade(student_path, notebook, report_path=tmp_path / "student.json",
                             env=SMOKE, timeout=900)
    assert report["score"] == 0, report
    assert all("NotImplementedError" in e["reason"] for e in report["exercises"]), report

    filled_path = tmp_path / "filled" / notebook.name
    filled_path.parent.mkdir()
    nbformat.write(_fill_in(nbformat.read(student_path, as_version=4), instructor), filled_path)
    report = exercises.grade(filled_path, notebook, report_path=tmp_path / "filled.csv",
                             env=SMOKE, timeout=900)
    assert report["score"] == report["max_score"] == sum(e["points"] for e in graded), report
