"""Builds docs/RESULTS.md: runs chapter notebooks in full mode and collects what they record.

    python docs/build_results.py                 # run every chapter, then render
    python docs/build_results.py 01_rbm          # run one chapter, then render
    python docs/build_results.py --render-only   # re-render from docs/results/*.json

Each notebook keeps a ``course_lib.course.results.ResultsLog``; with ``COURSE_LIB_RESULTS_DIR``
set (done here) its ``save()`` writes ``<chapter>.json`` and the figures.

What a run guarantees:

- **A committed tree.** A run refuses to start (exit status 1, naming the files) while
  ``git status`` shows changes to tracked files or untracked files, except this script's own
  outputs: everything under ``docs/results/`` and ``docs/RESULTS.md``, so that a second chapter
  can run after the first has written its results. The check is repeated before each chapter
  and after it (a chapter takes up to an hour; the tree must not change under it).
  ``--render-only`` runs on any tree.
- **No errors let through.** Cells run with ``allow_errors=False``: the first failing cell
  (an exception, a timeout, a dead kernel) stops the chapter and the script exits with status 1
  without running the remaining chapters or rendering. The notebook writes its results into a
  staging folder, and only a chapter that ran to the end has its json and figures moved into
  ``docs/results/``; a failed chapter keeps its previous json (stamped with the commit that
  produced it), so no partial record replaces a good one. The executed notebook, with the
  traceback, is kept as ``docs/results/<chapter>.executed.ipynb`` (not committed) either way.
- **A stamp.** Each chapter's json gets ``stamp``: the commit (``git rev-parse HEAD``), the
  date it ran, and the machine (CPU count and model, Python, TensorFlow, Keras and TFP
  versions), and ``notebook_seconds``. The render prints the stamp at the top of the chapter's
  section and marks a json without one as unstamped, in bold, above its numbers.

The hand-written notes ``docs/notes/<chapter>.md`` follow the chapter's table. They discuss the
numbers and may quote them only through placeholders that the render fills from the chapter's
json, so that every number in ``docs/`` is written by code:

    {{rows:NAME}}         value of the row named NAME (".2f" unless a format is given)
    {{published:NAME}}    that row's published figure, as the notebook recorded it
    {{seconds:NAME}}      that row's time in seconds (".0f")
    {{timings:NAME}}      a ``ResultsLog.timer`` entry in seconds (".0f")
    {{record:FIELD}}      a number at the top of the json, e.g. notebook_seconds (".0f")
    {{rows:NAME|.1f}}     any of them with a Python format spec after "|"

A row whose name starts with spaces ("  same, reverse-AIS ...") belongs to the row above it and
is named "PARENT / same, reverse-AIS ..." (or by its own name where that is unique). Whitespace
inside a placeholder is collapsed, so a placeholder may wrap across lines. Negative numbers are
written with the typographic minus of the prose. A placeholder that names a value the json
lacks stops the render.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import functools
import importlib.metadata
import importlib.util
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "docs" / "results"
NOTES = ROOT / "docs" / "notes"
NOTEBOOKS = ROOT / "notebooks"
OUTPUT = ROOT / "docs" / "RESULTS.md"
# What a run writes itself (repo-relative, as git prints them): allowed to differ from HEAD.
OWN_OUTPUTS = ("docs/results/", "docs/RESULTS.md")


# ---------------------------------------------------------------------------------- git

def git(root: Path, *args: str) -> str:
    """Output of ``git -C root args``; a failing git command stops the script with its message."""
    try:
        done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True,
                              check=True)
    except FileNotFoundError as exc:
        raise SystemExit("git is needed to stamp results with their commit; it was not "
                         "found on PATH (use --render-only to render without running).") from exc
    except subprocess.CalledProcessError as exc:
        raise SystemExit(f"'git {' '.join(args)}' failed in {root}: {exc.stderr.strip()}") from exc
    return done.stdout


def head_commit(root: Path = ROOT) -> str:
    """The full hash of the commit checked out at ``root``."""
    return git(root, "rev-parse", "HEAD").strip()


def dirty_paths(root: Path = ROOT, allowed: tuple[str, ...] = OWN_OUTPUTS) -> list[str]:
    """``"XY path"`` for every uncommitted change (tracked or untracked) outside ``allowed``.

    ``allowed`` holds repo-relative paths; one ending in "/" allows everything under it.
    Ignored files (the executed notebooks, caches) are not changes."""
    fields = git(root, "status", "--porcelain", "-z", "--untracked-files=all").split("\0")
    dirty, i = [], 0
    while i < len(fields):
        entry, i = fields[i], i + 1
        if not entry:
            continue
        status, path = entry[:2], entry[3:]
        if "R" in status or "C" in status:
            i += 1      # with -z a rename or copy is followed by its source path
        if not any(path == a or (a.endswith("/") and path.startswith(a)) for a in allowed):
            dirty.append(f"{status} {path}")
    return dirty


def require_clean_tree(root: Path = ROOT) -> None:
    """Stops the script when the tree differs from HEAD outside this script's own outputs."""
    dirty = dirty_paths(root)
    if dirty:
        raise SystemExit(
            "refusing to run: results must come from a committed tree, and these files differ "
            "from HEAD:\n  " + "\n  ".join(dirty) + "\nCommit or remove them (changes under "
            + " and ".join(OWN_OUTPUTS) + " are this script's outputs and allowed), or use "
            "--render-only to re-render from the existing json.")


# -------------------------------------------------------------------------------- stamp

def cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str | None:
    """The first "model name" in ``cpuinfo`` (Linux), else None."""
    with contextlib.suppress(OSError):
        for line in cpuinfo.read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and value.strip():
                return value.strip()
    return None


def package_version(*names: str) -> str | None:
    """Installed version of the first of ``names`` that is installed, read without importing."""
    for name in names:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            return importlib.metadata.version(name)
    return None


def gpu_names(run=subprocess.run) -> list[str]:
    """The NVIDIA GPUs ``nvidia-smi -L`` lists (what TensorFlow's CUDA build would use), or
    an empty list: no driver, no GPU."""
    if shutil.which("nvidia-smi") is None:
        return []
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        listing = run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30).stdout
        return [line.split(":", 1)[1].split("(UUID")[0].strip()
                for line in listing.splitlines() if line.startswith("GPU ") and ":" in line]
    return []


def machine_info() -> dict:
    """What the numbers ran on. Versions are those of this interpreter's environment, which is
    the kernel's when the notebook kernel is this environment's ``python3``."""
    return dict(cpu_count=os.cpu_count(), cpu_model=cpu_model() or platform.processor() or None,
                gpus=gpu_names(),
                python=platform.python_version(),
                tensorflow=package_version("tensorflow", "tensorflow-cpu", "tf-nightly"),
                keras=package_version("keras"),
                tensorflow_probability=package_version("tensorflow-probability", "tfp-nightly"))


def make_stamp(root: Path = ROOT) -> dict:
    """Commit, date (UTC) and machine of a run starting now."""
    return dict(commit=head_commit(root),
                date=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                machine=machine_info())


# ---------------------------------------------------------------------------------- run

class ChapterFailed(Exception):
    """A chapter did not run to the end; its previous results were left as they were."""


def cell_errors(nb) -> list[str]:
    """``"cell i: Name: message"`` for every error output in an executed notebook."""
    return [f"cell {i}: {out.get('ename')}: {out.get('evalue')}"
            for i, cell in enumerate(nb.cells) if cell.cell_type == "code"
            for out in cell.get("outputs", []) if out.get("output_type") == "error"]


@contextlib.contextmanager
def _environment(values: dict):
    """Sets environment variables (the kernel inherits them) and restores them afterwards."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _promote(record: dict, staging: Path, results_dir: Path, stem: str) -> Path:
    """Moves a finished chapter's figures and json from ``staging`` into ``results_dir``;
    figures of the chapter that the new record no longer lists are removed."""
    keep = {fig["file"] for fig in record["figures"]}
    for old in results_dir.glob(f"{stem}_*.png"):
        if old.name not in keep:
            old.unlink()
    for name in keep:
        shutil.move(staging / name, results_dir / name)
    path = results_dir / f"{stem}.json"
    tmp = path.with_suffix(".partial")
    tmp.write_text(json.dumps(record, indent=1))
    os.replace(tmp, path)
    return path


def run_chapter(notebook: Path, results_dir: Path, stamp: dict, timeout: int = 7200,
                kernel_name: str = "python3", before_promote=None) -> float:
    """Runs ``notebook`` in full mode and stores its stamped results in ``results_dir``.

    Returns the notebook's wall-clock seconds. Raises :class:`ChapterFailed` when a cell fails,
    when the notebook saves no full-mode json, or when ``before_promote()`` (called after the
    run, before anything is moved into ``results_dir``) raises it; ``results_dir`` then keeps
    its previous json and figures, and only ``<stem>.executed.ipynb`` (with the traceback) is
    replaced."""
    import nbformat
    from nbclient import NotebookClient

    if not notebook.is_file():
        raise ChapterFailed(f"no notebook '{notebook}'")
    stem = notebook.stem
    nb = nbformat.read(notebook, as_version=4)
    results_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"results-{stem}-") as tmp:
        staging = Path(tmp)
        env = {"COURSE_LIB_SMOKE": "0", "COURSE_LIB_RESULTS_DIR": str(staging),
               "TF_CPP_MIN_LOG_LEVEL": "3", "MPLBACKEND": "Agg"}
        failure = None
        start = time.perf_counter()
        try:
            with _environment(env):
                NotebookClient(nb, timeout=timeout, kernel_name=kernel_name, allow_errors=False,
                               force_raise_errors=True,
                               resources={"metadata": {"path": str(notebook.parent)}}).execute()
        except Exception as exc:  # a failing cell, a timeout, a dead kernel: all stop the chapter
            failure = cell_errors(nb) or [f"{type(exc).__name__}: {exc}"]
        finally:
            seconds = time.perf_counter() - start
            nbformat.write(nb, results_dir / f"{stem}.executed.ipynb")
        failure = failure or cell_errors(nb)
        if failure:
            raise ChapterFailed("; ".join(failure))
        json_path = staging / f"{stem}.json"
        if not json_path.is_file():
            raise ChapterFailed(f"the notebook ran but saved no '{stem}.json' (does it call "
                                f"results.save() with ResultsLog('{stem}', ...)?)")
        record = json.loads(json_path.read_text())
        if record.get("mode") != "full":
            raise ChapterFailed(f"the notebook saved mode '{record.get('mode')}', not 'full'")
        if before_promote is not None:
            before_promote()
        record.pop("errors", None)
        record.update(notebook_seconds=seconds, stamp=stamp)
        _promote(record, staging, results_dir, stem)
    return seconds


# ------------------------------------------------------------------------------- render

PLACEHOLDER = re.compile(r"\{\{\s*(\w+)\s*:(.*?)(?:\|([^{}|]*))?\}\}", re.DOTALL)
_DEFAULT_FORMAT = {"rows": ".2f", "published": "", "seconds": ".0f", "timings": ".0f",
                   "record": ".0f"}


def _squash(text: str) -> str:
    return " ".join(text.split())


def row_index(rows: list[dict]) -> dict[str, list[dict]]:
    """Rows by name; an indented row is also listed as "PARENT / name"."""
    index, parent = {}, None
    for row in rows:
        name = _squash(row["name"])
        keys = [name]
        if row["name"][:1].isspace() and parent is not None:
            keys.insert(0, f"{parent} / {name}")
        else:
            parent = name
        for key in keys:
            index.setdefault(key, []).append(row)
    return index


def _lookup(kind: str, key: str, record: dict, index: dict):
    if kind in ("rows", "published", "seconds"):
        found = index.get(key, [])
        if len(found) > 1:
            raise LookupError(f"{len(found)} rows are named '{key}'; name it as "
                              "'PARENT / NAME' with the row above it")
        if not found:
            raise LookupError(f"no row named '{key}'")
        value = found[0][{"rows": "value"}.get(kind, kind)]
        if value is None:
            raise LookupError(f"row '{key}' has no {kind} value")
        return value
    if kind == "timings":
        if key not in record.get("timings", {}):
            raise LookupError(f"no timing named '{key}'")
        return record["timings"][key]
    if kind == "record":
        if not isinstance(record.get(key), int | float):
            raise LookupError(f"no number '{key}' at the top of the json")
        return record[key]
    raise LookupError(f"unknown placeholder kind '{kind}' (rows, published, seconds, timings, "
                      "record)")


def _format(value, spec: str) -> str:
    if isinstance(value, str):
        return value
    text = format(value, spec) if spec else f"{value:g}"
    return text.replace("-", "\u2212") if text.startswith("-") else text


def resolve_placeholders(text: str, record: dict) -> str:
    """``text`` with every ``{{kind:key|format}}`` replaced by the value from ``record`` (a
    chapter json). Raises ValueError listing every placeholder that cannot be filled."""
    index, problems = row_index(record.get("rows", [])), []

    def fill(match):
        kind, key, spec = match.group(1), _squash(match.group(2)), match.group(3)
        spec = _DEFAULT_FORMAT.get(kind, "") if spec is None else spec.strip()
        try:
            return _format(_lookup(kind, key, record, index), spec)
        except (LookupError, ValueError) as exc:
            problems.append(f"{_squash(match.group(0))}: {exc}")
            return match.group(0)

    filled = PLACEHOLDER.sub(fill, text)
    if problems:
        raise ValueError(f"{record.get('chapter', '?')}: placeholders that the json cannot "
                         "fill:\n  " + "\n  ".join(problems))
    return filled


def stamp_lines(record: dict) -> list[str]:
    """The lines under a chapter's heading: its stamp, or a loud mark where it has none."""
    seconds = record.get("notebook_seconds")
    whole = "" if seconds is None else f"; whole notebook {seconds:.0f} s"
    stamp = record.get("stamp")
    if not stamp or not stamp.get("commit"):
        return [f"> **Unstamped (stale): no commit is known to have produced these numbers.** "
                f"This json was written {record.get('written', 'at an unknown time')} "
                f"(mode {record.get('mode')}{whole}) by an earlier version of the builder that "
                "did not record the commit or the machine. Run "
                f"`python docs/build_results.py {record.get('chapter')}` on a committed tree "
                "to replace it."]
    m = stamp.get("machine", {})
    versions = ", ".join(f"{label} {m[key]}" for key, label in
                         (("python", "Python"), ("tensorflow", "TensorFlow"), ("keras", "Keras"),
                          ("tensorflow_probability", "TFP")) if m.get(key))
    cpu = f"{m.get('cpu_count', '?')} CPU cores" + (f" ({m['cpu_model']})"
                                                    if m.get("cpu_model") else "")
    if "gpus" in m:                  # stamps written before the builder looked for GPUs lack it
        cpu += "; GPU: " + (", ".join(m["gpus"]) if m["gpus"] else "none")
    return [f"Commit `{stamp['commit']}`, run {stamp.get('date', '(no date)')}; "
            f"mode {record.get('mode')}{whole}.", "",
            f"Machine: {cpu}; {versions}."]


@functools.cache
def _results_module():
    # course_lib/course/results.py needs only the standard library; loading it by path
    # renders without importing the package, which would start TensorFlow.
    path = ROOT / "course_lib" / "course" / "results.py"
    spec = importlib.util.spec_from_file_location("_course_results", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def render_chapter(record: dict, notes: str | None, figures_prefix: str = "results") -> list[str]:
    """Markdown lines of one chapter's section."""
    lines = [f"## {record['chapter']}", "", *stamp_lines(record), ""]
    if record.get("mode") != "full":
        lines += [f"> **Not a full-mode run (mode {record.get('mode')}):** these numbers are "
                  "not results.", ""]
    for error in record.get("errors", []):
        lines += [f"> **A cell failed in this run:** {error}", ""]
    lines.append(_results_module().markdown_table(record["rows"]))
    if record.get("timings"):
        lines += ["", "Wall-clock of the steps (s): " + ", ".join(
            f"{k} {v:.0f}" for k, v in record["timings"].items()) + "."]
    if notes:
        lines += ["", resolve_placeholders(notes.strip(), record)]
    for fig in record.get("figures", []):
        lines += ["", f"![{fig['caption']}]({figures_prefix}/{fig['file']})",
                  f"*{fig['caption']}*"]
    lines.append("")
    return lines


def render(results_dir: Path = RESULTS, notes_dir: Path = NOTES, out: Path = OUTPUT) -> Path:
    """Writes ``out`` from every ``<chapter>.json`` in ``results_dir`` and its notes."""
    lines = ["# Results", "",
             "Full-mode runs of the chapter notebooks, produced by `python docs/build_results.py`.",
             "Each section names the commit and the machine its numbers come from. Published",
             "numbers are quoted with their source; (R) marks a figure recalled from the paper",
             "and not re-checked. Data conventions differ between rows: compare only within",
             "one convention.", ""]
    prefix = Path(os.path.relpath(results_dir, out.parent)).as_posix()
    unstamped = []
    for path in sorted(results_dir.glob("*.json")):
        record = json.loads(path.read_text())
        notes = notes_dir / f"{record['chapter']}.md"
        lines += render_chapter(record, notes.read_text() if notes.is_file() else None, prefix)
        if not (record.get("stamp") or {}).get("commit"):
            unstamped.append(record["chapter"])
    if unstamped:
        print("unstamped (marked stale in the render):", ", ".join(unstamped), file=sys.stderr)
    out.write_text("\n".join(lines))
    return out


# --------------------------------------------------------------------------------- main

def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("chapters", nargs="*", help="notebook stems, e.g. 01_rbm (default: all)")
    parser.add_argument("--render-only", action="store_true",
                        help="only re-render docs/RESULTS.md (allowed on any tree)")
    parser.add_argument("--timeout", type=int, default=7200, help="seconds per cell")
    args = parser.parse_args(argv)
    if not args.render_only:
        stems = args.chapters or sorted(p.stem for p in NOTEBOOKS.glob("[0-9]*.ipynb"))
        missing = [s for s in stems if not (NOTEBOOKS / f"{s}.ipynb").is_file()]
        if missing:
            raise SystemExit(f"no notebook for {', '.join(missing)} in {NOTEBOOKS}")
        for stem in stems:
            require_clean_tree()
            stamp = make_stamp()

            def unchanged(commit=stamp["commit"]):
                if head_commit() != commit or dirty_paths():
                    raise ChapterFailed("the tree changed while the chapter ran (a commit or "
                                        "an edit), so its numbers belong to no single commit")

            try:
                seconds = run_chapter(NOTEBOOKS / f"{stem}.ipynb", RESULTS, stamp, args.timeout,
                                      before_promote=unchanged)
            except ChapterFailed as exc:
                print(f"{stem}: FAILED, {exc}\n{stem}: its previous results were kept; the "
                      f"executed notebook is {RESULTS / f'{stem}.executed.ipynb'}. Nothing "
                      "rendered.", file=sys.stderr)
                return 1
            print(f"{stem}: {seconds:.0f} s, commit {stamp['commit'][:12]}")
    try:
        print("wrote", render())
    except ValueError as exc:       # a notes placeholder that the json cannot fill
        raise SystemExit(f"render failed: {exc}") from None
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
