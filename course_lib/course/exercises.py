"""Exercises: release student notebooks from instructor notebooks, and grade submissions.

What it does: ``release`` turns an instructor chapter notebook (solutions and hidden tests
in) into the student version; ``grade`` runs a submission with the instructor's tests put
back, scores each exercise and writes a JSON or CSV report.

Markers (nbgrader's; each alone on its line, at any indentation):
    ``### BEGIN SOLUTION`` / ``### END SOLUTION`` wrap solution code or a markdown answer;
    students get ``# YOUR CODE HERE`` + ``raise NotImplementedError()`` at the marker's
    indentation (markdown: ``YOUR ANSWER HERE``).
    ``### BEGIN HIDDEN TESTS`` / ``### END HIDDEN TESTS`` sit in graded cells; removed for
    students, run again when grading.

Cell metadata (nbgrader schema 3): solution cells carry ``{"nbgrader": {"solution": true,
"grade": false, "locked": false, "grade_id": "ex1_free_energy_solution", "schema_version": 3}}``;
graded cells ``{"nbgrader": {"grade": true, "solution": false, "locked": true, "points": 2,
"grade_id": "ex1_free_energy", "schema_version": 3}}``.

How instructors use it::

    course-release notebooks/01_rbm.ipynb --out student/
    course-grade alice/01_rbm.ipynb --instructor notebooks/01_rbm.ipynb --report a.json

(or ``python -m course_lib.course.exercises release|grade ...``). Grading runs in smoke mode
(``COURSE_LIB_SMOKE=1``) unless ``--full`` is given, in the instructor notebook's folder so
relative paths behave as in the course. nbgrader itself (the ``instructor`` extra) reads the
same notebooks; this module needs only nbformat and nbclient.
"""

from __future__ import annotations

import argparse
import copy
import csv
import json
import os
import sys
from pathlib import Path

import nbformat

from course_lib.course.config import SMOKE_ENV_VAR

SOLUTION_BEGIN = "### BEGIN SOLUTION"
SOLUTION_END = "### END SOLUTION"
HIDDEN_BEGIN = "### BEGIN HIDDEN TESTS"
HIDDEN_END = "### END HIDDEN TESTS"
STUDENT_STUB = "raise NotImplementedError()"
CODE_PROMPT = "# YOUR CODE HERE"
ANSWER_PROMPT = "YOUR ANSWER HERE"
MISSING_CELL = "missing cell"
REPORT_COLUMNS = ("grade_id", "points", "max_points", "passed", "reason")

_MARKERS = {SOLUTION_BEGIN: ("solution", True), SOLUTION_END: ("solution", False),
            HIDDEN_BEGIN: ("hidden", True), HIDDEN_END: ("hidden", False)}
_ENDS = {"solution": SOLUTION_END, "hidden": HIDDEN_END}
_MARKER_PHRASES = tuple(marker.lstrip("# ") for marker in _MARKERS)
_TIMEOUT_ENAME = "CellTimeout"


class ExerciseFormatError(ValueError):
    """An instructor notebook breaks the exercise conventions (markers or nbgrader metadata)."""


def _meta(cell) -> dict:
    meta = cell.get("metadata", {}).get("nbgrader")
    return meta if isinstance(meta, dict) else {}


def _label(index: int, cell) -> str:
    grade_id = _meta(cell).get("grade_id")
    return f"cell {index} (grade_id {grade_id!r})" if grade_id else f"cell {index} (no grade_id)"


def _source(cell) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def _regions(cell, index: int) -> list[tuple[str, int, int, str]]:
    """Finds the marked regions of one cell as (kind, begin line, end line, indentation)."""
    label, regions, opened = _label(index, cell), [], None
    for n, line in enumerate(_source(cell).splitlines()):
        stripped = line.strip()
        if stripped not in _MARKERS:
            if any(phrase in line for phrase in _MARKER_PHRASES):
                raise ExerciseFormatError(f"{label}: line {n + 1} {stripped!r} looks like a "
                                          f"marker; expected one of {list(_MARKERS)} alone.")
            continue
        kind, begins = _MARKERS[stripped]
        if begins and opened is not None:
            raise ExerciseFormatError(f"{label}: {stripped} on line {n + 1} is nested in the "
                                      f"{opened[0]} region opened on line {opened[1] + 1}.")
        if begins:
            opened = (kind, n, line[: len(line) - len(line.lstrip())])
        elif opened is None or opened[0] != kind:
            found = "no region is open" if opened is None else f"the open region is {opened[0]}"
            raise ExerciseFormatError(f"{label}: {stripped} on line {n + 1} has no matching "
                                      f"BEGIN ({found}).")
        else:
            regions.append((kind, opened[1], n, opened[2]))
            opened = None
    if opened is not None:
        raise ExerciseFormatError(f"{label}: the {opened[0]} region opened on line "
                                  f"{opened[1] + 1} has no matching {_ENDS[opened[0]]}.")
    return regions


def exercises(nb) -> list[dict]:
    """Lists the graded cells of a notebook, checking markers and metadata of every cell.

    Args:
        nb: an nbformat v4 notebook (instructor version).

    Returns:
        One ``{"grade_id", "points", "cell_index"}`` dict per graded cell, in notebook order.

    Raises:
        ExerciseFormatError: unbalanced or nested markers, hidden tests outside a graded cell,
            a solution in a graded code cell, a duplicate or missing grade_id, a graded cell
            without points. The message names the cell by index and grade_id.
    """
    seen: dict[str, int] = {}
    graded = []
    for index, cell in enumerate(nb["cells"]):
        label, meta = _label(index, cell), _meta(cell)
        kinds = {kind for kind, *_ in _regions(cell, index)}
        grade_id = meta.get("grade_id")
        if grade_id is not None:
            if not isinstance(grade_id, str) or not grade_id.strip():
                raise ExerciseFormatError(f"{label}: grade_id must be a non-empty string.")
            if grade_id in seen:
                raise ExerciseFormatError(f"{label}: duplicate grade_id {grade_id!r}, already "
                                          f"used by cell {seen[grade_id]}.")
            seen[grade_id] = index
        if not meta.get("grade"):
            if "hidden" in kinds:
                raise ExerciseFormatError(f"{label}: hidden tests in a cell that is not graded "
                                          "(nbgrader grade: true); they would never run.")
            continue
        if not grade_id:
            raise ExerciseFormatError(f"{label}: graded cell has no grade_id.")
        points = meta.get("points")
        if isinstance(points, bool) or not isinstance(points, (int, float)) or points < 0:
            got = "no 'points' key" if "points" not in meta else repr(points)
            raise ExerciseFormatError(f"{label}: graded cell needs 'points' (a number >= 0) "
                                      f"in its nbgrader metadata; got {got}.")
        if cell.get("cell_type") == "code":
            if "solution" in kinds:
                raise ExerciseFormatError(f"{label}: solution region in a graded code cell; "
                                          "grading restores graded cells, so give it its own.")
            if not _source(cell).strip():
                raise ExerciseFormatError(f"{label}: graded cell is empty; expected tests.")
        graded.append({"grade_id": grade_id, "points": points, "cell_index": index})
    return graded


def _student_source(source: str, regions, cell_type: str) -> str:
    lines, out, pos = source.splitlines(keepends=True), [], 0
    for kind, begin, end, indent in regions:
        out.extend(lines[pos:begin])
        if kind == "solution":
            ending = lines[end][len(lines[end].rstrip("\r\n")) :]
            if cell_type == "code":
                out += [f"{indent}{CODE_PROMPT}\n", f"{indent}{STUDENT_STUB}{ending}"]
            else:
                out.append(f"{indent}{ANSWER_PROMPT}{ending}")
        pos = end + 1
    out.extend(lines[pos:])
    text = "".join(out)
    return text.rstrip() if any(kind == "hidden" for kind, *_ in regions) else text


def make_student_version(nb) -> nbformat.NotebookNode:
    """Builds the student version of an instructor notebook, leaving the input untouched.

    Solution regions become ``# YOUR CODE HERE`` + ``raise NotImplementedError()`` (code) or
    ``YOUR ANSWER HERE`` (markdown); hidden tests go; code cells lose outputs and execution
    counts; nbgrader metadata stays.

    Args:
        nb: an nbformat v4 notebook (instructor version).

    Returns:
        A new notebook.

    Raises:
        ExerciseFormatError: as for :func:`exercises`, checked before anything is built.
    """
    exercises(nb)
    student = nbformat.from_dict(copy.deepcopy(nb))
    for index, cell in enumerate(student.cells):
        regions = _regions(cell, index)
        if regions:
            cell.source = _student_source(_source(cell), regions, cell.cell_type)
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
            cell.metadata.pop("execution", None)  # timings from an instructor run
    return student


def _existing(path, what: str) -> Path:
    path = Path(path)
    if not path.is_file():
        problem = "is a folder, not a notebook" if path.is_dir() else "not found"
        raise FileNotFoundError(f"{what} {problem}: {path}")
    return path


def _read(path, what: str) -> nbformat.NotebookNode:
    path = _existing(path, what)
    try:
        return nbformat.read(path, as_version=4)
    except ValueError as exc:  # not JSON, not UTF-8, not a notebook
        raise ValueError(f"{what} {path} is not a readable notebook: {exc}") from exc


def release(src_path, dest_path) -> Path:
    """Writes the student version of an instructor notebook.

    Args:
        src_path: the instructor notebook.
        dest_path: where to write; a folder means ``folder/<source name>``. Parents are made.

    Returns:
        The path written.

    Raises:
        FileNotFoundError: ``src_path`` is not a file.
        FileExistsError: ``dest_path`` is the instructor notebook itself.
        ExerciseFormatError: the instructor notebook breaks the exercise conventions.
    """
    src, dest = _existing(src_path, "instructor notebook"), Path(dest_path)
    if dest.is_dir():
        dest = dest / src.name
    if dest.resolve() == src.resolve():
        raise FileExistsError(f"refusing to overwrite the instructor notebook {src} with its "
                              "student version; expected another destination.")
    student = make_student_version(_read(src, "instructor notebook"))
    dest.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(student, dest)
    return dest


def _restore_tests(submission, instructor, graded):
    """Copies the submission with every graded code cell replaced by the instructor's cell."""
    nb = nbformat.from_dict(copy.deepcopy(submission))
    where: dict[str, list[int]] = {ex["grade_id"]: [] for ex in graded}
    for index, cell in enumerate(nb.cells):
        grade_id = _meta(cell).get("grade_id")
        if isinstance(grade_id, str) and grade_id in where:
            where[grade_id].append(index)
    for ex in graded:
        original = instructor.cells[ex["cell_index"]]
        if original.cell_type != "code":
            continue  # a markdown answer stays the student's own
        for index in where[ex["grade_id"]]:
            fresh = nbformat.from_dict(copy.deepcopy(original))
            fresh.pop("id", None)
            if "id" in nb.cells[index]:
                fresh["id"] = nb.cells[index]["id"]
            nb.cells[index] = fresh
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    return nb, where


def _execute(nb, *, cwd: Path, timeout, env, kernel_name: str):
    """Runs ``nb`` in place; returns the execute replies by cell index and any abort reason."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    replies: dict[int, dict] = {}

    def record(cell, cell_index, execute_reply):
        replies[cell_index] = (execute_reply or {}).get("content", {})

    client = NotebookClient(
        nb, timeout=timeout, kernel_name=kernel_name, allow_errors=True,
        interrupt_on_timeout=True, on_cell_executed=record,
        error_on_timeout={"ename": _TIMEOUT_ENAME, "evalue": f"ran past {timeout} s"},
        resources={"metadata": {"path": str(cwd)}},
    )
    try:
        # The kernel gets its own environment; os.environ of this process is never changed.
        client.execute(**({} if env is None else {"env": env}))
    except (CellTimeoutError, DeadKernelError) as exc:
        return replies, f"{type(exc).__name__}: {str(exc).strip().splitlines()[0]}"
    return replies, None


def _error_text(ename, evalue) -> str:
    return f"{ename}: {evalue}" if evalue else str(ename)


def _cell_failure(cell, reply, aborted) -> str | None:
    if reply is None:
        return f"not run: {aborted or 'execution stopped before this cell'}"
    if reply.get("ename") == _TIMEOUT_ENAME:
        return f"timed out: {reply.get('evalue', '')}"
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            return _error_text(output.get("ename"), output.get("evalue"))
    if reply.get("status", "ok") != "ok":
        return _error_text(reply.get("ename", reply["status"]), reply.get("evalue"))
    return None


def _write_report(report: dict, path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() != ".csv":
        path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        return
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=REPORT_COLUMNS)
        writer.writeheader()
        writer.writerows(report["exercises"])
        passed = all(row["passed"] for row in report["exercises"])
        writer.writerow({"grade_id": "TOTAL", "points": report["score"],
                         "max_points": report["max_score"], "passed": passed, "reason": ""})


def _score(ex, instructor, nb, indices, replies, aborted) -> dict:
    row = {"grade_id": ex["grade_id"], "points": 0.0, "max_points": float(ex["points"]),
           "passed": False, "reason": ""}
    if not indices:
        row["reason"] = MISSING_CELL
    elif instructor.cells[ex["cell_index"]].cell_type != "code":
        row["reason"] = "needs manual grading (markdown answer)"
    else:
        failures = [_cell_failure(nb.cells[i], replies.get(i), aborted) for i in indices]
        row["reason"] = next((failure for failure in failures if failure), "")
        if not row["reason"]:
            row.update(points=row["max_points"], passed=True)
    return row


def grade(submission_path, instructor_path, *, report_path=None, executed_path=None,
          timeout=1200, env=None, kernel_name="python3") -> dict:
    """Grades a submission: restores the instructor's graded cells, runs it, scores each one.

    Graded cells are matched by grade_id and replaced by the instructor's cell, hidden tests
    included, so edited or deleted tests do not count; solution cells keep the student's code.
    A graded cell scores its points when it ran without an error output.

    Args:
        submission_path: the student's notebook.
        instructor_path: the instructor notebook; the kernel starts in its folder.
        report_path: optional report, CSV (with a TOTAL row) if it ends in ``.csv``, else JSON.
        executed_path: optional path for the executed, restored notebook.
        timeout: seconds allowed per cell; a cell that runs longer is interrupted and fails.
        env: variables added to the kernel's environment (str to str).
        kernel_name: the Jupyter kernel to run.

    Returns:
        ``{"notebook", "score", "max_score", "exercises": [{"grade_id", "points",
        "max_points", "passed", "reason"}]}``; ``reason`` is ``""`` for a pass.

    Raises:
        FileNotFoundError: either notebook is missing.
        ExerciseFormatError: the instructor notebook breaks the exercise conventions.
        TypeError: ``env`` holds something other than strings.
    """
    instructor_path = _existing(instructor_path, "instructor notebook")
    instructor = _read(instructor_path, "instructor notebook")
    submission = _read(submission_path, "submission")
    graded = exercises(instructor)
    if env is not None:
        bad = {k: v for k, v in env.items() if not (isinstance(k, str) and isinstance(v, str))}
        if bad:
            raise TypeError(f"env must map strings to strings; got {bad!r}")
        env = {**os.environ, **env}

    nb, where = _restore_tests(submission, instructor, graded)
    replies, aborted = _execute(nb, cwd=instructor_path.resolve().parent, timeout=timeout,
                                env=env, kernel_name=kernel_name)
    rows = [_score(ex, instructor, nb, where[ex["grade_id"]], replies, aborted) for ex in graded]
    report = {"notebook": str(submission_path), "score": sum(row["points"] for row in rows),
              "max_score": sum(row["max_points"] for row in rows), "exercises": rows}
    if report_path is not None:
        _write_report(report, report_path)
    if executed_path is not None:
        Path(executed_path).parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, executed_path)
    return report


def _parse(parser: argparse.ArgumentParser, argv):
    try:
        return parser.parse_args(argv), None
    except SystemExit as exc:  # --help or a usage error
        return None, exc.code if isinstance(exc.code, int) else 2


def release_main(argv=None) -> int:
    """``course-release SRC [SRC...] --out DIR``: writes ``DIR/<name>.ipynb`` per source.

    Returns:
        0 when every notebook was written, 2 on a usage, file or format error.
    """
    parser = argparse.ArgumentParser(prog="course-release",
                                     description="Write student versions of instructor notebooks.")
    parser.add_argument("sources", nargs="+", metavar="SRC", help="instructor notebooks")
    parser.add_argument("--out", required=True, metavar="DIR", help="folder for the releases")
    args, code = _parse(parser, argv)
    if args is None:
        return code
    names = [Path(src).name for src in args.sources]
    if len(set(names)) != len(names):
        print(f"error: two sources share a file name, expected distinct names: {names}",
              file=sys.stderr)
        return 2
    for src in args.sources:
        try:
            dest = release(src, Path(args.out) / Path(src).name)
        except (OSError, ValueError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print(f"wrote {dest}")
    return 0


def _print_table(report: dict) -> None:
    rows = report["exercises"]
    width = max([len("grade_id")] + [len(row["grade_id"]) for row in rows])
    print(f"{'grade_id':<{width}}  {'points':>6}  {'max':>6}  result")
    for row in rows:
        result = "pass" if row["passed"] else f"FAIL  {row['reason']}"
        print(f"{row['grade_id']:<{width}}  {row['points']:>6g}  {row['max_points']:>6g}  {result}")
    print(f"{'total':<{width}}  {report['score']:>6g}  {report['max_score']:>6g}")


def grade_main(argv=None) -> int:
    """``course-grade SUBMISSION --instructor NB [--report PATH] [--smoke|--full] [--timeout S]``.

    Returns:
        0 when grading ran (whatever the score), 2 on a usage, file or format error.
    """
    from jupyter_client.kernelspec import NoSuchKernel

    parser = argparse.ArgumentParser(prog="course-grade",
                                     description="Grade a submission against the instructor's.")
    parser.add_argument("submission", help="the student's notebook")
    parser.add_argument("--instructor", required=True, metavar="NB", help="instructor notebook")
    parser.add_argument("--report", metavar="PATH", help="report file: .json, or .csv")
    parser.add_argument("--executed", metavar="PATH", help="also write the executed notebook")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--smoke", dest="smoke", action="store_true", default=True,
                      help=f"run small: {SMOKE_ENV_VAR}=1 in the kernel (the default)")
    mode.add_argument("--full", dest="smoke", action="store_false",
                      help=f"run full size: {SMOKE_ENV_VAR}=0 in the kernel")
    parser.add_argument("--timeout", type=int, default=1200, metavar="S",
                        help="seconds allowed per cell (default 1200)")
    parser.add_argument("--kernel", default="python3", help="Jupyter kernel name")
    args, code = _parse(parser, argv)
    if args is None:
        return code
    try:
        report = grade(args.submission, args.instructor, report_path=args.report,
                       executed_path=args.executed, timeout=args.timeout,
                       env={SMOKE_ENV_VAR: "1" if args.smoke else "0"}, kernel_name=args.kernel)
    except (OSError, ValueError, NoSuchKernel) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    _print_table(report)
    if args.report:
        print(f"report written to {args.report}")
    return 0


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
