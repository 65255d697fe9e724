"""Numbers and figures a chapter reports, beside the published ones.

Each notebook keeps one :class:`ResultsLog`: ``add`` records a measured value with the
published figure it is compared with, the data convention and the wall-clock time;
``table()`` shows them in the notebook. When ``COURSE_LIB_RESULTS_DIR`` names a folder (the
results builder ``docs/build_results.py`` sets it while running a notebook in full mode),
``save()`` also writes ``<dir>/<chapter>.json`` and the figures as PNGs, from which
``docs/RESULTS.md`` is produced. Without it nothing is written to disk.
"""

from __future__ import annotations

import json
import math
import os
import time
from contextlib import contextmanager
from pathlib import Path

RESULTS_ENV_VAR = "COURSE_LIB_RESULTS_DIR"


class ResultsLog:
    """Collects a chapter's results.

    Args:
        chapter: file stem, e.g. ``"01_rbm"``.
        mode: ``"full"`` or ``"smoke"``, stored with the numbers.
        directory: where ``save`` writes; default ``$COURSE_LIB_RESULTS_DIR`` or nowhere.
    """

    def __init__(self, chapter, mode, directory=None):
        self.chapter, self.mode = chapter, mode
        directory = directory or os.environ.get(RESULTS_ENV_VAR) or None
        self.directory = Path(directory) if directory else None
        self.rows, self.figures, self.timings = [], [], {}

    def add(self, name, value, *, published=None, source=None, convention=None,
            evaluation=None, seconds=None, note=None):
        """Records one measured number (higher/lower-is-better is stated in ``note``).
        Returns None, so that a notebook cell ending in ``results.add(...)`` echoes nothing."""
        value = float(value)
        if not math.isfinite(value):
            raise ValueError(f"result '{name}' is not finite ({value}); fix the run first.")
        self.rows.append(dict(name=name, value=value, published=published, source=source,
                              convention=convention, evaluation=evaluation, seconds=seconds,
                              note=note))

    @contextmanager
    def timer(self, name):
        """``with log.timer("train CD-1"):`` stores the wall-clock seconds under ``name``."""
        start = time.perf_counter()
        yield
        self.timings[name] = time.perf_counter() - start

    def add_figure(self, fig, name, caption=""):
        """Keeps a figure; saved as ``<chapter>_<name>.png`` by :meth:`save`. Returns None:
        a cell ending in ``results.add_figure(fig, ...)`` would otherwise show the figure
        twice (once drawn by the inline backend, once as the cell's value)."""
        self.figures.append((fig, name, caption))

    def table(self):
        """The results as a Markdown table (display with ``IPython.display.Markdown``).

        Outside full mode the table says so above it and in its column header: smoke-size
        numbers are a quick check, not a result to set beside the published ones."""
        if self.mode == "full":
            return markdown_table(self.rows)
        return (f"**{self.mode.capitalize()} run:** tiny sizes for a quick check. These numbers "
                "are not comparable with the published column; run the notebook in full mode "
                "(the default) for that.\n\n"
                + markdown_table(self.rows, value_header=f"here ({self.mode} run)"))

    def save(self):
        """Writes JSON and PNGs to the results folder, if one is set. Returns the JSON path."""
        if self.directory is None:
            return None
        self.directory.mkdir(parents=True, exist_ok=True)
        figures = []
        for fig, name, caption in self.figures:
            filename = f"{self.chapter}_{name}.png"
            fig.savefig(self.directory / filename, dpi=110, bbox_inches="tight")
            figures.append(dict(file=filename, caption=caption))
        payload = dict(chapter=self.chapter, mode=self.mode, rows=self.rows,
                       timings=self.timings, figures=figures,
                       written=time.strftime("%Y-%m-%d %H:%M"))
        path = self.directory / f"{self.chapter}.json"
        tmp = path.with_suffix(".partial")
        tmp.write_text(json.dumps(payload, indent=1))
        os.replace(tmp, path)
        return path


def markdown_table(rows, value_header="here"):
    """Markdown table of result rows (dicts as stored by :meth:`ResultsLog.add`)."""
    lines = [f"| result | {value_header} | published | source | data | evaluation | time (s) |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        pub = "—" if r["published"] is None else f"{r['published']}"
        sec = "" if r["seconds"] is None else f"{r['seconds']:.0f}"
        lines.append(f"| {r['name']} | {r['value']:.2f} | {pub} | {r['source'] or ''} | "
                     f"{r['convention'] or ''} | {r['evaluation'] or ''} | {sec} |")
    return "\n".join(lines)
