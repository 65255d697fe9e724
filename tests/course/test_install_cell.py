"""The Colab install cell: every chapter notebook installs the one pinned requirement, the
requirement is a PEP 508 direct reference with a ref, and ``course-pin-install`` rewrites that
cell alone, once, and keeps it through ``course-release``.

When the first test fails, the notebooks are out of step with
``course_lib/course/install_cell.py``: run ``course-pin-install`` and commit the notebooks.
"""

import difflib
import json
import shutil
import subprocess
import sys
import types
from pathlib import Path

import nbformat
import pytest

from course_lib.course import install_cell
from course_lib.course.install_cell import (
    MARKER,
    REF,
    REPOSITORY,
    InstallCellError,
    install_cell_source,
    pin_notebooks,
    requirement,
)
from course_lib.course.release import release

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
STALE = install_cell_source(REPOSITORY, "stale-ref")


def _text(path):
    with open(path, encoding="utf-8", newline="") as f:
        return f.read()


@pytest.fixture
def stale_copy(tmp_path):
    """A chapter notebook copied to tmp_path, its install cell pinned to another ref."""
    path = tmp_path / NOTEBOOKS[0].name
    shutil.copyfile(NOTEBOOKS[0], path)
    pin_notebooks([path], source=STALE)
    return path


def test_every_chapter_notebook_installs_the_pinned_requirement():
    assert NOTEBOOKS and install_cell.chapter_notebooks() == NOTEBOOKS
    stale = pin_notebooks(NOTEBOOKS, check=True)
    assert stale == [], (f"install cell out of step with {requirement()!r} in "
                         f"{[p.name for p in stale]}; run course-pin-install and commit them")


def test_the_requirement_is_a_pep508_direct_reference_pinned_to_a_ref():
    # packaging comes with pytest, which depends on it.
    requirements = pytest.importorskip("packaging.requirements")
    req = requirements.Requirement(requirement())
    assert req.name == "course_lib"
    assert not req.extras and not str(req.specifier) and req.marker is None
    assert req.url == f"git+{REPOSITORY}@{REF}"
    assert req.url.startswith("git+https://")
    repository, ref = req.url.removeprefix("git+").rsplit("@", 1)
    assert repository == REPOSITORY and ref == REF and ref.strip()


def test_the_distribution_and_the_command_are_the_ones_pyproject_declares():
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        tomllib = pytest.importorskip("tomli")
    with open(ROOT / "pyproject.toml", "rb") as f:
        project = tomllib.load(f)["project"]
    assert install_cell.DISTRIBUTION == project["name"]
    assert project["scripts"]["course-pin-install"] == "course_lib.course.install_cell:main"


def test_the_cell_installs_the_requirement_in_colab_and_does_nothing_elsewhere(monkeypatch):
    calls = []
    monkeypatch.setattr(subprocess, "run", lambda *args, **kwargs: calls.append((args, kwargs)))
    code = compile(install_cell_source(), "<install cell>", "exec")
    exec(code, {})
    assert calls == []
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    exec(code, {})
    assert calls == [(([sys.executable, "-m", "pip", "install", "-q", requirement()],),
                      {"check": True})]


@pytest.mark.parametrize("repository, ref", [
    (REPOSITORY, ""), (REPOSITORY, "v1 0"), (REPOSITORY, "a@b"), (REPOSITORY, "-x"),
    (REPOSITORY, "a..b"), (REPOSITORY + "/", REF), ("http://example.org/x", REF),
    ("https://user@example.org/x", REF), ("github.com/course-lib/course_lib", REF),
])
def test_a_malformed_source_is_refused(repository, ref):
    with pytest.raises(InstallCellError, match="repository must|ref must"):
        requirement(repository, ref)


def test_the_writer_changes_only_the_install_cell_and_is_idempotent(stale_copy):
    before_text = _text(stale_copy)
    before = json.loads(before_text)
    assert pin_notebooks([stale_copy], check=True) == [stale_copy]
    assert _text(stale_copy) == before_text                     # --check writes nothing

    assert pin_notebooks([stale_copy]) == [stale_copy]
    after_text = _text(stale_copy)
    after = json.loads(after_text)
    assert "".join(after["cells"][0]["source"]) == install_cell_source()
    assert after["cells"][0] == {**before["cells"][0], "source": after["cells"][0]["source"]}
    assert after["cells"][1:] == before["cells"][1:]
    assert {k: v for k, v in after.items() if k != "cells"} == {
        k: v for k, v in before.items() if k != "cells"}

    # Byte for byte, the only lines that differ are lines of the cell's old and new source.
    old_lines, new_lines = before_text.splitlines(), after_text.splitlines()
    changed = [op for op in difflib.SequenceMatcher(a=old_lines, b=new_lines).get_opcodes()
               if op[0] != "equal"]
    assert changed
    for _, i1, i2, j1, j2 in changed:
        for line, source in [*((line, STALE) for line in old_lines[i1:i2]),
                             *((line, install_cell_source()) for line in new_lines[j1:j2])]:
            assert json.loads(line.strip().rstrip(",")) in source.splitlines(keepends=True)
    assert after_text.endswith("}\n") and before_text.endswith("}\n")

    mtime = stale_copy.stat().st_mtime_ns
    assert pin_notebooks([stale_copy]) == []                    # again: nothing to do
    assert _text(stale_copy) == after_text and stale_copy.stat().st_mtime_ns == mtime


def test_the_command_checks_writes_and_reports(stale_copy, capsys):
    assert install_cell.main(["--check", str(stale_copy)]) == 1
    assert f"out of step: {stale_copy}" in capsys.readouterr().out
    assert install_cell.main([str(stale_copy)]) == 0
    assert f"pinned {stale_copy}" in capsys.readouterr().out
    assert install_cell.main(["--check", str(stale_copy)]) == 0
    assert install_cell.main(["--check", str(stale_copy.with_name("missing.ipynb"))]) == 2
    assert "notebook not found" in capsys.readouterr().err


def test_a_notebook_without_the_cell_or_in_another_format_is_left_alone(stale_copy, capsys):
    nb = nbformat.read(stale_copy, as_version=4)
    nb.cells[0].source = nb.cells[0].source.replace(MARKER, "# Install the course package.")
    no_cell = stale_copy.with_name("no_cell.ipynb")
    nbformat.write(nb, no_cell)
    text = _text(no_cell)
    assert install_cell.main([str(no_cell)]) == 2
    assert "no install cell" in capsys.readouterr().err and _text(no_cell) == text

    nb = nbformat.read(stale_copy, as_version=4)
    nb.cells = [nb.cells[1], nb.cells[0], *nb.cells[2:]]
    second = stale_copy.with_name("second.ipynb")
    nbformat.write(nb, second)
    with pytest.raises(InstallCellError, match="expected it first"):
        pin_notebooks([second])

    indented = stale_copy.with_name("indented.ipynb")
    indented.write_text(json.dumps(json.loads(_text(stale_copy)), indent=2), encoding="utf-8")
    text, other = _text(indented), _text(stale_copy)
    with pytest.raises(InstallCellError, match="not stored as nbformat writes it"):
        pin_notebooks([stale_copy, indented])                   # all or nothing
    assert _text(indented) == text and _text(stale_copy) == other


def test_student_versions_keep_the_pinned_cell(stale_copy, tmp_path):
    pin_notebooks([stale_copy])
    released = release(stale_copy, tmp_path / "student.ipynb")
    student = nbformat.read(released, as_version=4)
    instructor = nbformat.read(stale_copy, as_version=4)
    assert student.cells[0].source == install_cell_source()
    assert student.cells[0].id == instructor.cells[0].id
    assert pin_notebooks([released], check=True) == []
