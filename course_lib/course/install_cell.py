"""The Colab install cell: which ``course_lib`` every chapter notebook installs, kept in one place.

Every chapter notebook opens with a code cell that, in Colab and only there, installs the course
package from its Git repository at a pinned ref, so that a notebook always meets the library
version it was written for. The source is :data:`REPOSITORY` at :data:`REF`, and this module is
the one place that says so; ``course-pin-install`` (or ``python -m
course_lib.course.install_cell``) writes the cell into every notebook, and ``--check`` lists the
notebooks out of step (``tests/course/test_install_cell.py`` runs the same check).

Why constants here, not a ``[tool.course_lib]`` table in ``pyproject.toml``: the package imports
them on every supported Python (``tomllib`` arrives only in 3.11, and the package supports 3.10
without a TOML parser), they travel with an installed ``course_lib``, and the writer and the test
read the same names without finding and parsing a file.

The requirement written is a PEP 508 direct reference,
``course_lib @ git+<REPOSITORY>@<REF>``; pip installs the package without replacing what the
environment already has inside the dependency ranges of ``pyproject.toml`` (Colab's TensorFlow,
Keras, TFP, tf_keras and numpy).

Hosting the course under another repository: set :data:`REPOSITORY` to it and :data:`REF` to a
tag (or commit) that exists there, run ``course-pin-install``, commit. The conventional tag is
``v`` + the version in ``pyproject.toml``: commit the pinned notebooks, tag that commit, push the
tag.

The cell is found by its first line, :data:`MARKER`; it must be the notebook's first cell. Only
its source is rewritten: the cell id, its metadata and every other cell stay as they are, and a
notebook stored as nbformat writes it (indent 1, sorted keys, as the repository stores them)
changes in that cell's source lines alone.
"""

from __future__ import annotations

import argparse
import io
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

import nbformat

#: The Git repository pip installs the course package from (no trailing ``/``, no ``.git`` needed).
REPOSITORY = "https://github.com/course-lib/course_lib"
#: The tag, branch or commit of :data:`REPOSITORY` that every notebook installs.
REF = "v0.1.0"
#: The distribution name in the requirement (``[project] name`` in ``pyproject.toml``).
DISTRIBUTION = "course_lib"
#: The first line of the install cell, by which the writer and the check find it.
MARKER = "# In Colab (and only there) the first cell installs the course package."

NOTEBOOKS_DIR = Path(__file__).resolve().parents[2] / "notebooks"

_REF = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]*")
_REPOSITORY = re.compile(r"https://[^\s@#?]+[^\s@#?/]")


class InstallCellError(ValueError):
    """A notebook's install cell cannot be found, or the pinned source is malformed."""


def requirement(repository: str = REPOSITORY, ref: str = REF) -> str:
    """The pip requirement the install cell passes: ``course_lib @ git+<repository>@<ref>``.

    Args:
        repository: an ``https://`` Git URL without user info, query or fragment.
        ref: a tag, branch or commit: letters, digits, ``.``, ``_``, ``/``, ``-``.

    Raises:
        InstallCellError: either is malformed (the message shows what arrived).
    """
    if not isinstance(repository, str) or not _REPOSITORY.fullmatch(repository):
        raise InstallCellError(f"repository must be an https:// Git URL without '@', '#', "
                               f"'?' or a trailing '/'; got {repository!r}.")
    if not isinstance(ref, str) or not _REF.fullmatch(ref) or ".." in ref:
        raise InstallCellError(f"ref must be a tag, branch or commit (letters, digits, '.', "
                               f"'_', '/', '-'); got {ref!r}.")
    return f"{DISTRIBUTION} @ git+{repository}@{ref}"


def install_cell_source(repository: str = REPOSITORY, ref: str = REF) -> str:
    """The source of the install cell that pins ``repository`` at ``ref``."""
    return (f"{MARKER}\n"
            "import sys, subprocess\n"
            'if "google.colab" in sys.modules:\n'
            '    subprocess.run([sys.executable, "-m", "pip", "install", "-q",\n'
            f'                    "{requirement(repository, ref)}"], check=True)')


def find_install_cell(nb) -> int:
    """The index of the install cell: the one code cell whose first line is :data:`MARKER`.

    Raises:
        InstallCellError: no such cell, more than one, or not the first cell.
    """
    found = [i for i, cell in enumerate(nb.cells) if cell.cell_type == "code"
             and cell.source.split("\n", 1)[0].rstrip() == MARKER]
    if not found:
        raise InstallCellError(f"no install cell: expected a first code cell whose first line "
                               f"is {MARKER!r}.")
    if len(found) > 1:
        raise InstallCellError(f"cells {found} all start with the install-cell line; expected "
                               "one.")
    if found[0] != 0:
        raise InstallCellError(f"the install cell is cell {found[0]}; expected it first, before "
                               "anything imports course_lib.")
    return found[0]


def _serialize(nb) -> str:
    buffer = io.StringIO()
    nbformat.write(nb, buffer)  # what nbformat.write(nb, path) puts in a file
    return buffer.getvalue()


def _read(path: Path):
    """Reads a notebook and finds its install cell: ``(text, notebook, cell index)``."""
    if not path.is_file():
        raise FileNotFoundError(f"notebook not found: {path}")
    with open(path, encoding="utf-8", newline="") as f:
        text = f.read()
    try:
        nb = nbformat.reads(text, as_version=4)
        return text, nb, find_install_cell(nb)
    except ValueError as exc:  # not JSON, not a notebook, no install cell
        raise InstallCellError(f"{path}: {exc}") from None


def _write(path: Path, nb) -> None:
    """Writes beside the notebook, then moves over it: a reader never sees half a file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(_serialize(nb))
        shutil.copymode(path, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def pin_notebooks(paths, *, check: bool = False, source: str | None = None) -> list[Path]:
    """Writes the pinned install cell into notebooks (or, with ``check``, only compares).

    Every notebook is read and checked before any is written, so an error leaves all of
    them as they were.

    Args:
        paths: the notebooks.
        check: compare only; never write.
        source: the cell source to write; :func:`install_cell_source` by default.

    Returns:
        The notebooks whose install cell differed from ``source`` (rewritten unless
        ``check``), in the order given.

    Raises:
        FileNotFoundError: a path is not a file.
        InstallCellError: a notebook is not readable or has no install cell in first place;
            or (when writing) a notebook to rewrite is not stored as nbformat writes it, so
            that rewriting it would change more than the one cell.
    """
    source = install_cell_source() if source is None else source
    stale = []
    for path in map(Path, paths):
        text, nb, index = _read(path)
        if nb.cells[index].source == source:
            continue
        if not check and _serialize(nb) != text:
            raise InstallCellError(
                f"{path} is not stored as nbformat writes it (indent 1, sorted keys), so "
                "rewriting it would change more than the install cell; nothing was written. "
                "Save it from Jupyter, or with nbformat.write, first.")
        nb.cells[index].source = source
        stale.append((path, nb))
    if not check:
        for path, nb in stale:
            _write(path, nb)
    return [path for path, _ in stale]


def chapter_notebooks() -> list[Path]:
    """The repository's chapter notebooks, ``notebooks/*.ipynb``, sorted."""
    return sorted(NOTEBOOKS_DIR.glob("*.ipynb"))


def main(argv=None) -> int:
    """``course-pin-install [NOTEBOOK...] [--check]``: pins the install cell of each notebook.

    Without notebooks, every ``notebooks/*.ipynb`` of the repository this package sits in.

    Returns:
        0 when every notebook is (now) in step; 1 with ``--check`` when some are not (each is
        listed); 2 on a usage, file or notebook error.
    """
    try:
        pinned = requirement()
    except InstallCellError as exc:
        print(f"error: {exc} (course_lib/course/install_cell.py)", file=sys.stderr)
        return 2
    parser = argparse.ArgumentParser(
        prog="course-pin-install",
        description=f"Write the Colab install cell, pinned to {pinned!r} "
                    "(course_lib/course/install_cell.py), into chapter notebooks.")
    parser.add_argument("notebooks", nargs="*", metavar="NOTEBOOK",
                        help=f"notebooks to pin (default: every {NOTEBOOKS_DIR}/*.ipynb)")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 listing the notebooks out of step")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help or a usage error
        return exc.code if isinstance(exc.code, int) else 2
    paths = [Path(p) for p in args.notebooks] or chapter_notebooks()
    if not paths:
        print(f"error: no notebooks found in {NOTEBOOKS_DIR}; pass their paths.", file=sys.stderr)
        return 2
    try:
        differing = pin_notebooks(paths, check=args.check)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.check:
        for p in differing:
            print(f"out of step: {p} (run course-pin-install)")
        if differing:
            print(f"{len(differing)} of {len(paths)} notebooks do not install {pinned!r}.",
                  file=sys.stderr)
        return 1 if differing else 0
    for p in differing:
        print(f"pinned {p}")
    print(f"{len(paths)} notebooks install {pinned!r} ({len(differing)} rewritten).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
