"""Exercise conventions and student versions: ``course-release``.

What it does: checks an instructor notebook's exercise markers and nbgrader metadata, and
writes the student version (solutions replaced by stubs, hidden tests removed).

Markers (nbgrader's; each alone on its line, at any indentation, spelled exactly so):
    ``### BEGIN SOLUTION`` / ``### END SOLUTION`` wrap solution code or a markdown answer;
    students get ``# YOUR CODE HERE`` + ``raise NotImplementedError()`` at the marker's
    indentation (markdown: ``YOUR ANSWER HERE``).
    ``### BEGIN HIDDEN TESTS`` / ``### END HIDDEN TESTS`` sit in graded cells; removed for
    students, run again when grading.
A line that nearly spells a marker (another case, a typo, a different number of ``#``, a
marker with text around it) is refused rather than released as it stands: a misspelled
``### BEGIN SOLUTON`` would otherwise hand students the solution. So is a solution cell
(``"solution": true``) with no marked region, which would be released whole.

Cell metadata (nbgrader schema 3): solution cells carry ``{"nbgrader": {"solution": true,
"grade": false, "locked": false, "grade_id": "ex1_free_energy_solution", "schema_version": 3}}``;
graded cells ``{"nbgrader": {"grade": true, "solution": false, "locked": true, "points": 2,
"grade_id": "ex1_free_energy", "schema_version": 3}}``.
"""

from __future__ import annotations

import argparse
import copy
import re
import sys
from pathlib import Path

import nbformat

SOLUTION_BEGIN = "### BEGIN SOLUTION"
SOLUTION_END = "### END SOLUTION"
HIDDEN_BEGIN = "### BEGIN HIDDEN TESTS"
HIDDEN_END = "### END HIDDEN TESTS"
STUDENT_STUB = "raise NotImplementedError()"
CODE_PROMPT = "# YOUR CODE HERE"
ANSWER_PROMPT = "YOUR ANSWER HERE"

_MARKERS = {SOLUTION_BEGIN: ("solution", True), SOLUTION_END: ("solution", False),
            HIDDEN_BEGIN: ("hidden", True), HIDDEN_END: ("hidden", False)}
_ENDS = {"solution": SOLUTION_END, "hidden": HIDDEN_END}
# What a near miss is measured against: the markers' words, upper case, with the last "S" of
# "TESTS" optional so that "### BEGIN HIDDEN TEST" counts as a near miss too.
_PHRASES = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TEST", "END HIDDEN TEST")
_LETTERS = tuple(phrase.replace(" ", "") for phrase in _PHRASES)


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


def _edits(a: str, b: str) -> int:
    """Levenshtein distance: insertions, deletions and substitutions turning a into b."""
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        diagonal, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            diagonal, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, diagonal + (ca != cb))
    return row[-1]


def _near_miss(line: str, cell_type: str) -> bool:
    """Whether a line that is not exactly a marker looks like an attempt at one.

    Three tests: the words of a marker appear in any case (``### begin solution``,
    ``## BEGIN SOLUTION``, ``x = 1  ### BEGIN SOLUTION``); a comment or heading whose letters
    are within two typos of a marker's (``### BEGIN SOLUTON``, ``#BEGINSOLUTION``); a short
    code comment with a BEGIN/END word and a SOLUTION/HIDDEN word (``# begin the solution``).
    Markdown headings such as ``### Solution`` or ``### Hidden tests`` pass.
    """
    upper = " ".join(line.upper().split())
    if any(re.search(rf"(^|[\s#]){phrase}", upper) for phrase in _PHRASES):
        return True
    if not line.lstrip().startswith("#"):
        return False
    letters = re.sub(r"[^A-Z]", "", upper)
    if len(letters) <= 20 and any(_edits(letters, target) <= 2 for target in _LETTERS):
        return True
    words = re.findall(r"[A-Z]+", upper)
    if cell_type != "code" or len(words) > 5:
        return False
    bound = any(w == "END" or (len(w) >= 4 and _edits(w, "BEGIN") <= 1) for w in words)
    what = any((len(w) >= 6 and _edits(w, "SOLUTION") <= 2) or _edits(w, "HIDDEN") <= 1
               for w in words)
    return bound and what


def _regions(cell, index: int) -> list[tuple[str, int, int, str]]:
    """Finds the marked regions of one cell as (kind, begin line, end line, indentation)."""
    label, regions, opened = _label(index, cell), [], None
    for n, line in enumerate(_source(cell).splitlines()):
        stripped = line.strip()
        if stripped not in _MARKERS:
            if _near_miss(line, cell.get("cell_type", "")):
                raise ExerciseFormatError(
                    f"{label}: line {n + 1} {stripped!r} looks like a marker but is not one; "
                    f"expected exactly one of {list(_MARKERS)} alone on its line (or reword it).")
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
        ExerciseFormatError: unbalanced, nested or near-miss markers, a solution cell without
            a solution region, hidden tests outside a graded cell, a solution in a graded
            code cell, a duplicate or missing grade_id, a graded cell without points. The
            message names the cell by index and grade_id.
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
        if meta.get("solution") and "solution" not in kinds and not (
                meta.get("grade") and cell.get("cell_type") == "code"):
            raise ExerciseFormatError(
                f"{label}: solution cell (nbgrader solution: true) has no {SOLUTION_BEGIN} / "
                f"{SOLUTION_END} region, so students would get it whole; expected the "
                "solution between those markers (or solution: false if it is not one).")
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
            if "solution" in kinds or meta.get("solution"):
                what = "solution region" if "solution" in kinds else "solution: true"
                raise ExerciseFormatError(f"{label}: {what} in a graded code cell; grading "
                                          "restores graded cells, so give it its own cell.")
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
