"""Builds docs/RESULTS.md: runs chapter notebooks in full mode and collects what they record.

    python docs/build_results.py                 # run every chapter, then render
    python docs/build_results.py 01_rbm          # run one chapter, then render
    python docs/build_results.py --render-only   # re-render from docs/results/*.json

Each notebook keeps a ``course_lib.course.results.ResultsLog``; with ``COURSE_LIB_RESULTS_DIR`` set
(done here) its ``save()`` writes ``docs/results/<chapter>.json`` and the figures. The
executed notebook is kept as ``docs/results/<chapter>.executed.ipynb`` (not committed).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "docs" / "results"
NOTEBOOKS = ROOT / "notebooks"


def run_chapter(stem: str, timeout: int) -> float:
    import nbformat
    from nbclient import NotebookClient

    path = NOTEBOOKS / f"{stem}.ipynb"
    if not path.is_file():
        raise SystemExit(f"no notebook '{path}'")
    nb = nbformat.read(path, as_version=4)
    env = {"COURSE_LIB_SMOKE": "0", "COURSE_LIB_RESULTS_DIR": str(RESULTS),
           "TF_CPP_MIN_LOG_LEVEL": "2", "MPLBACKEND": "Agg"}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    start = time.perf_counter()
    try:
        NotebookClient(nb, timeout=timeout, kernel_name="python3", allow_errors=True,
                       resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        RESULTS.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, RESULTS / f"{stem}.executed.ipynb")
    errors = [f"cell {i}: {o.ename}: {o.evalue}" for i, c in enumerate(nb.cells)
              if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    for error in errors:
        print(f"{stem}: FAILED {error}")
    return time.perf_counter() - start, errors


def render() -> Path:
    from course_lib.course.results import markdown_table

    lines = ["# Results", "",
             "Full-mode runs of the chapter notebooks, produced by `python docs/build_results.py`.",
             "Published numbers are quoted with their source; (R) marks a figure recalled from the",
             "paper and not re-checked. Data conventions differ between rows: compare only within",
             "one convention.", ""]
    for path in sorted(RESULTS.glob("*.json")):
        chapter = json.loads(path.read_text())
        lines += [f"## {chapter['chapter']}", "",
                  f"Mode: {chapter['mode']}; written {chapter['written']}; whole notebook "
                  f"{chapter.get('notebook_seconds', float('nan')):.0f} s on the machine below.",
                  "",
                  markdown_table(chapter["rows"])]
        if chapter.get("timings"):
            lines += ["", "Wall-clock of the steps (s): " + ", ".join(
                f"{k} {v:.0f}" for k, v in chapter["timings"].items()) + "."]
        for error in chapter.get("errors", []):
            lines += ["", f"**A check failed in this run:** {error}"]
        notes = ROOT / "docs" / "notes" / f"{chapter['chapter']}.md"
        if notes.is_file():
            lines += ["", notes.read_text().strip()]
        for fig in chapter["figures"]:
            lines += ["", f"![{fig['caption']}](results/{fig['file']})", f"*{fig['caption']}*"]
        lines.append("")
    machine = f"{os.cpu_count()} CPU cores; Python {sys.version.split()[0]}"
    lines += ["## Machine", "", machine, ""]
    out = ROOT / "docs" / "RESULTS.md"
    out.write_text("\n".join(lines))
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("chapters", nargs="*", help="notebook stems, e.g. 01_rbm (default: all)")
    parser.add_argument("--render-only", action="store_true")
    parser.add_argument("--timeout", type=int, default=7200, help="seconds per cell")
    args = parser.parse_args(argv)
    if not args.render_only:
        stems = args.chapters or sorted(p.stem for p in NOTEBOOKS.glob("[0-9]*.ipynb"))
        for stem in stems:
            seconds, errors = run_chapter(stem, args.timeout)
            record = RESULTS / f"{stem}.json"
            if record.is_file():
                payload = json.loads(record.read_text())
                payload["notebook_seconds"] = seconds
                payload["errors"] = errors
                record.write_text(json.dumps(payload, indent=1))
            print(f"{stem}: {seconds:.0f} s")
    print("wrote", render())


if __name__ == "__main__":
    main()
