"""Grading submissions: ``course-grade``.

What it does: puts the instructor's graded cells (hidden tests included) back into a
submission, runs it in a throw-away kernel, scores each graded cell and writes a report;
``--batch`` grades a folder of submissions into one CSV.

How a submission is run:
    * In a new temporary folder that holds nothing (not the instructor notebook, not even
      the restored notebook, whose hidden tests would be readable), with ``HOME`` and
      ``TMPDIR`` inside it and an environment reduced to :data:`PASSED_VARIABLES` plus the
      ``env`` the caller gives. Course data is found through the installed package
      (``course_lib.data``), so nothing is copied in.
    * The kernel starts under a small supervisor that, on Linux, adopts every orphaned
      descendant (``PR_SET_CHILD_SUBREAPER``). When the run ends the grader kills the
      supervisor's whole process tree, then every process still carrying this run's random
      environment tag, then deletes the folder; only then is a report written (atomically:
      a temporary file renamed over the old one). Nothing about the report reaches the
      kernel.
    * A per-cell limit and a total limit (seconds, both positive). A cell past its limit is
      interrupted; a kernel that ignores the interrupt loses the rest of the run instead of
      costing every remaining cell its full limit.
    * The instructor notebook is read once, before anything runs, and never written; if it
      changes on disk during a run, that submission scores 0 and the report says why.

How answers are compared: hidden tests call :func:`check_answer` on the student's result.
In a graded run each call sends the value as plain numbers (JSON) on an output whose MIME
type carries a random token that exists only in that graded cell's source at run time; the
grader compares them, in its own process, with the values the same calls produce in a run
of the instructor notebook (solutions in) made before any submission runs, with the
tolerances written in that call. So an object that claims to equal everything, a patched
``np.testing`` or library method, or hidden tests emptied by an input transformer cannot
pass: the submission has to produce the instructor's numbers. Values must therefore depend
only on the student's code and inputs built from fixed seeds inside the graded cell. Graded
cells without ``check_answer`` pass when they run to their end without an error; before each
graded cell the kernel's input transformers, event hooks, ``np.testing`` and builtins are put
back as they were before the first notebook cell, but a submission can still fool plain
``assert`` tests (see the README).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import csv
import functools
import hashlib
import inspect
import json
import math
import os
import queue
import secrets
import shutil
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import numpy as np

from course_lib.course.config import SMOKE_ENV_VAR
from course_lib.course.release import _existing, _meta, _parse, _source, exercises

MISSING_CELL = "missing cell"
REPORT_COLUMNS = ("grade_id", "points", "max_points", "passed", "reason")
BATCH_COLUMNS = ("submission",) + REPORT_COLUMNS
# What the kernel may see of the grader's environment (besides ``env`` and its own HOME,
# TMPDIR): the program path, the course switches and data, and the GPU libraries.
PASSED_VARIABLES = ("PATH", "PYTHONPATH", SMOKE_ENV_VAR, "COURSE_LIB_DATA", "KERAS_HOME",
                    "MPLBACKEND", "CUDA_VISIBLE_DEVICES", "LD_LIBRARY_PATH")
_RUN_TAG = "COURSE_GRADE_RUN"
_CHECK_MIME = "application/x-course-check-"
_TIMEOUT_ENAME = "CellTimeout"
_INTERRUPT_GRACE_S = 30.0  # the most an interrupted kernel may take to answer again
_REFERENCES: dict[str, dict] = {}  # instructor runs, by notebook bytes, env and kernel

# The kernel's parent: ignores the interrupts meant for the kernel, adopts orphans (Linux),
# and when the kernel ends or it is told to stop, ends every process below it.
_SUPERVISOR = r"""
import os, signal, subprocess, sys
def end_all():
    try:
        import psutil
        me = psutil.Process()
    except Exception:
        return
    def live(p):
        try:
            return p.status() != psutil.STATUS_ZOMBIE
        except psutil.Error:
            return False
    for _ in range(50):
        alive = [p for p in me.children(recursive=True) if live(p)]
        if not alive:
            break
        for p in alive:
            try:
                p.kill()
            except psutil.Error:
                pass
        psutil.wait_procs(alive, timeout=1)
    while True:
        try:
            if os.waitpid(-1, os.WNOHANG)[0] == 0:
                break
        except ChildProcessError:
            break
def stop(*_):
    end_all()
    os._exit(143)
signal.signal(signal.SIGINT, lambda *_: None)
signal.signal(signal.SIGTERM, stop)
try:
    import ctypes
    ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
except Exception:
    pass
code = subprocess.call(sys.argv[1:])
end_all()
sys.exit(code)
"""


class SubmissionError(ValueError):
    """A submission that cannot be graded as it stands (not a readable notebook)."""


class InstructorRunError(ValueError):
    """The instructor notebook fails its own graded cells when run for grading."""


# ---------------------------------------------------------------------------- check_answer


def _as_numbers(value):
    """``value`` as a numpy array of plain numbers (bool, int or float); TypeError otherwise.

    Also runs inside grading kernels (sent as source), so it imports what it uses.
    """
    import numpy

    try:
        array = numpy.asarray(value)
    except Exception as exc:  # an object whose __array__ or __len__ misbehaves
        raise TypeError(f"check_answer needs numbers; a {type(value).__name__} could not be "
                        f"read as an array ({type(exc).__name__}: {exc})") from None
    if array.dtype.kind not in "biuf":
        raise TypeError(f"check_answer needs numbers (bool, int or float); got "
                        f"{type(value).__name__} with dtype {array.dtype}")
    return array


def _kernel_support(mode, as_numbers, mime_prefix):
    """The grader's helper inside the kernel, built by the first cell of a graded run.

    Sent as source, so it uses only the standard library, numpy and IPython. ``reset``
    puts back what the kernel had before any notebook cell ran (input transformers, event
    hooks, shell methods, builtins, ``numpy.testing``); ``begin``/``end`` frame a graded
    cell; ``check`` sends one value. In ``mode == "reference"`` (the instructor's run) a
    ``check`` also asserts ``value`` against ``expected``.
    """
    import builtins
    import json
    import sys
    import types

    import numpy.testing
    from IPython import get_ipython
    from IPython.display import publish_display_data

    shell = get_ipython()
    methods = ("run_cell", "run_cell_async", "should_run_async", "transform_cell",
               "transform_ast", "run_ast_nodes", "run_code")
    manager = shell.input_transformer_manager
    saved = {
        "manager": manager,
        "static": [list(manager.cleanup_transforms), list(manager.line_transforms),
                   list(manager.token_transformers)],
        "post": list(shell.input_transformers_post),
        "ast": list(shell.ast_transformers),
        "events": shell.events,
        "callbacks": {name: list(hooks) for name, hooks in shell.events.callbacks.items()},
        "methods": {name: shell.__dict__[name] for name in methods if name in shell.__dict__},
        "builtins": dict(vars(builtins)),
        "testing": {name: (f, f.__code__ if isinstance(f, types.FunctionType) else None)
                    for name, f in vars(numpy.testing).items() if callable(f)},
    }

    def plain(value, expected, rtol, atol):
        numbers = as_numbers(value)
        if expected is not None:
            numpy.testing.assert_allclose(numbers, as_numbers(expected), rtol=rtol, atol=atol)

    class Grader:
        token, count, clean = None, 0, False

        def reset(self):
            self.clean = False
            shell.input_transformer_manager = manager
            manager.cleanup_transforms, manager.line_transforms, manager.token_transformers = (
                list(transforms) for transforms in saved["static"])
            shell.input_transformers_post = list(saved["post"])
            shell.ast_transformers = list(saved["ast"])
            shell.events = saved["events"]
            shell.events.callbacks.clear()
            shell.events.callbacks.update(
                {name: list(hooks) for name, hooks in saved["callbacks"].items()})
            for name in methods:
                shell.__dict__.pop(name, None)
            shell.__dict__.update(saved["methods"])
            vars(builtins).update(saved["builtins"])
            for name, (function, code) in saved["testing"].items():
                setattr(numpy.testing, name, function)
                if code is not None:
                    function.__code__ = code
            sys.settrace(None)
            sys.setprofile(None)
            self.clean = True

        def begin(self, token):
            if not self.clean:
                raise RuntimeError("the grader could not restore the kernel before this cell")
            self.token, self.count, self.clean = token, 0, False

        def end(self, token):
            self.send(token, {"kind": "end", "count": self.count})
            self.token = None

        def check(self, value, expected=None, *, rtol=1e-7, atol=0.0, _depth=1):
            if self.token is None:  # outside a graded cell: as in a plain notebook run
                return plain(value, expected, rtol, atol)
            self.count += 1
            record = {"kind": "check", "line": sys._getframe(_depth).f_lineno - 1,
                      "rtol": float(rtol), "atol": float(atol)}
            try:
                numbers = as_numbers(value)
            except TypeError as exc:
                if mode == "reference":
                    raise
                record["error"] = str(exc)
            else:
                record.update(dtype=numbers.dtype.kind, shape=list(numbers.shape),
                              data=numbers.ravel().tolist())
            self.send(self.token, record)
            if mode == "reference":
                plain(value, expected, rtol, atol)

        def send(self, token, record):
            publish_display_data({mime_prefix + token: json.dumps(record)})

    return Grader()


def _active_grader():
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return None if shell is None else shell.user_ns.get("__course_grade__")


def check_answer(value, expected=None, *, rtol=1e-7, atol=0.0) -> None:
    """Checks an exercise answer; in hidden tests, the check that grading relies on.

    In a notebook run: ``value`` must be numbers (a number, an array, a tensor, nested
    lists) and, when ``expected`` is given, close to it as in
    ``np.testing.assert_allclose(value, expected, rtol=rtol, atol=atol)``.

    When ``course-grade`` runs a submission, ``value`` goes to the grader as plain numbers,
    which compares it with the value the same call gives in a run of the instructor notebook:
    same shape, numbers (booleans where the reference has booleans), and
    ``|value - reference| <= atol + rtol * |reference|`` everywhere. ``expected`` is then
    only used in the instructor's run, to check the solution itself.

    Args:
        value: the student's result.
        expected: optional reference computed in the notebook (a library method, say).
        rtol: relative tolerance; 0 with ``atol=0`` asks for exact equality.
        atol: absolute tolerance.

    Raises:
        TypeError: ``value`` is not numbers (outside grading).
        AssertionError: ``value`` is not close to ``expected`` (outside grading).

    Example:
        >>> check_answer(free_energy(_v, _W, _b, _c), _m.free_energy(_v).numpy(), atol=1e-4)
    """
    grader = _active_grader()
    if grader is not None:
        return grader.check(value, expected, rtol=rtol, atol=atol, _depth=2)
    numbers = _as_numbers(value)
    if expected is not None:
        np.testing.assert_allclose(numbers, _as_numbers(expected), rtol=rtol, atol=atol)


def _support_source(mode: str) -> str:
    return (f"{inspect.getsource(_as_numbers)}\n{inspect.getsource(_kernel_support)}\n"
            f"__course_grade__ = _kernel_support({mode!r}, _as_numbers, {_CHECK_MIME!r})\n"
            "check_answer = __course_grade__.check\n"
            "del _kernel_support, _as_numbers\n")


# ---------------------------------------------------------------------- notebooks and limits


@dataclass(frozen=True)
class _Limits:
    per_cell: float
    total: float

    def __post_init__(self):
        for name, value in (("timeout", self.per_cell), ("total_timeout", self.total)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not math.isfinite(value) or value <= 0:
                raise ValueError(f"{name} must be a positive number of seconds (there is no "
                                 f"'no limit'); got {value!r}.")


@dataclass
class _Instructor:
    path: Path
    raw: bytes
    nb: nbformat.NotebookNode
    graded: list[dict]

    def changed(self) -> bool:
        try:
            return self.path.read_bytes() != self.raw
        except OSError:
            return True


def _load_instructor(path) -> _Instructor:
    path = _existing(path, "instructor notebook")
    raw = path.read_bytes()
    try:
        nb = nbformat.reads(raw.decode("utf-8"), as_version=4)
    except Exception as exc:  # not UTF-8, not JSON, not a notebook
        raise ValueError(f"instructor notebook {path} is not a readable notebook: {exc}") \
            from exc
    return _Instructor(path, raw, nb, exercises(nb))


def _parse_submission(raw: bytes) -> nbformat.NotebookNode:
    """The submission as an nbformat v4 notebook, or SubmissionError saying what is wrong."""
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise SubmissionError(f"not a notebook (not UTF-8 JSON: {exc})") from None
    if not isinstance(data, dict):
        raise SubmissionError(f"not a notebook: expected a JSON object with 'cells', got a "
                              f"JSON {type(data).__name__}")
    try:
        with warnings.catch_warnings():  # the submission's flaws are reported below, or moot
            warnings.simplefilter("ignore")
            nb = nbformat.reads(json.dumps(data), as_version=4)
    except Exception as exc:
        raise SubmissionError(f"not a notebook nbformat can read ({type(exc).__name__}: "
                              f"{str(exc).splitlines()[0] if str(exc) else ''})") from None
    cells = nb.get("cells")
    if not isinstance(cells, list):
        raise SubmissionError(f"not a notebook: 'cells' should be a list, got "
                              f"{type(cells).__name__}")
    for index, cell in enumerate(cells):
        problem = None
        if not isinstance(cell, dict):
            problem = f"is a {type(cell).__name__}, not a cell"
        elif cell.get("cell_type") not in ("code", "markdown", "raw"):
            problem = f"has cell_type {cell.get('cell_type')!r}; expected code, markdown or raw"
        elif not isinstance(cell.get("source", ""), (str, list)) or (
                isinstance(cell.get("source"), list)
                and not all(isinstance(line, str) for line in cell["source"])):
            problem = "has a source that is not text"
        elif not isinstance(cell.get("metadata", {}), dict):
            problem = "has metadata that is not an object"
        if problem:
            raise SubmissionError(f"not a notebook: cell {index} {problem}")
    return nb


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
        cell.source = _source(cell)
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    return nb, where


# ------------------------------------------------------------------------------- the sandbox


@dataclass
class _Outcome:
    replies: dict[int, dict] = field(default_factory=dict)  # notebook cell -> execute reply
    timed_out: dict[int, str] = field(default_factory=dict)
    records: dict[int, list] = field(default_factory=dict)  # graded cell -> check records
    stopped: str | None = None  # why the run ended before the last cell


@functools.lru_cache(maxsize=1)
def _supervised_manager():
    from jupyter_client.manager import AsyncKernelManager

    class SupervisedKernelManager(AsyncKernelManager):
        """Starts the kernel command under ``_SUPERVISOR``."""

        def format_kernel_cmd(self, extra_arguments=None):
            return [sys.executable, "-c", _SUPERVISOR,
                    *super().format_kernel_cmd(extra_arguments)]

    return SupervisedKernelManager


def _kill(processes) -> None:
    import psutil

    for process in processes:
        with contextlib.suppress(psutil.Error):
            process.kill()
    psutil.wait_procs(processes, timeout=2)


def _alive(process) -> bool:
    import psutil

    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _end_tree(pid) -> None:
    """Kills every live descendant of ``pid`` (not ``pid``), until none is left."""
    import psutil

    try:
        root = psutil.Process(pid)
    except (psutil.Error, TypeError, ValueError):
        return
    for _ in range(50):
        try:
            alive = [p for p in root.children(recursive=True) if _alive(p)]
        except psutil.Error:
            return
        if not alive:
            return
        _kill(alive)


def _end_tagged(tag: str) -> None:
    """Kills every process whose environment carries this run's tag (escapees included)."""
    import psutil

    for _ in range(10):
        tagged = []
        for process in psutil.process_iter():
            with contextlib.suppress(psutil.Error):
                if process.pid != os.getpid() and process.environ().get(_RUN_TAG) == tag \
                        and _alive(process):
                    tagged.append(process)
        if not tagged:
            return
        _kill(tagged)


def _remove(root: Path) -> None:
    """Deletes the sandbox folder, first making every folder in it (no link) writable."""
    for folder, names, _ in os.walk(root):
        for name in names:
            path = os.path.join(folder, name)
            if not os.path.islink(path):
                with contextlib.suppress(OSError):
                    os.chmod(path, 0o700)
    shutil.rmtree(root, ignore_errors=True)


def _kernel_env(extra, root: Path, tag: str) -> dict:
    env = {name: os.environ[name] for name in PASSED_VARIABLES if name in os.environ}
    env.update(extra or {})
    env.update({"HOME": str(root / "home"), "TMPDIR": str(root / "tmp"), _RUN_TAG: tag})
    return env


async def _responsive(kc, wait: float) -> bool:
    """Whether the kernel answers an empty request within ``wait`` seconds."""
    from jupyter_core.utils import ensure_async

    msg_id = kc.execute("", silent=True, store_history=False)
    end = time.monotonic() + wait
    while (left := end - time.monotonic()) > 0:
        try:
            msg = await ensure_async(kc.shell_channel.get_msg(timeout=left))
        except queue.Empty:
            return False
        if msg.get("parent_header", {}).get("msg_id") == msg_id:
            return True
    return False


async def _drive(nb, origin, limits: _Limits, env: dict, root: Path, kernel_name: str):
    """Runs the cells of ``nb`` (``origin``: their indices in the notebook graded)."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    outcome, limit = _Outcome(), {"s": limits.per_cell}

    def record(cell, cell_index, execute_reply):
        outcome.replies[cell_index] = (execute_reply or {}).get("content", {})

    client = NotebookClient(
        nb, kernel_name=kernel_name, allow_errors=True, interrupt_on_timeout=True,
        timeout_func=lambda cell: limit["s"], on_cell_executed=record,
        error_on_timeout={"ename": _TIMEOUT_ENAME, "evalue": ""},
        iopub_timeout=max(1, min(4, int(limits.per_cell))),
        kernel_manager_class=_supervised_manager(), shutdown_kernel="immediate")
    client.km = client.create_kernel_manager()
    client.km.connection_file = str(root / "kernel.json")
    total = f"the total time limit of {limits.total:g} s was reached"
    async with client.async_setup_kernel(cwd=str(root / "work"), env=env):
        try:
            count, deadline = 0, math.inf  # counted from the end of the support cell
            for index, cell in enumerate(nb.cells):
                if cell.cell_type != "code" or not cell.source.strip():
                    continue
                left = deadline - time.monotonic()
                if left <= 0:
                    outcome.stopped = total
                    break
                own = limits.per_cell if origin[index] is not None else max(limits.per_cell, 30)
                limit["s"], count = min(own, left), count + 1
                try:
                    await client.async_execute_cell(cell, index, execution_count=count)
                except (DeadKernelError, CellTimeoutError) as exc:
                    outcome.stopped = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0]}"
                    break
                if deadline == math.inf:
                    deadline = time.monotonic() + limits.total
                if outcome.replies.get(index, {}).get("ename") != _TIMEOUT_ENAME:
                    continue
                if limit["s"] < own:
                    outcome.timed_out[index] = outcome.stopped = total
                    break
                outcome.timed_out[index] = f"ran past the limit of {limits.per_cell:g} s per cell"
                grace = min(max(limits.per_cell, 5), _INTERRUPT_GRACE_S,
                            deadline - time.monotonic())
                if grace <= 0 or not await _responsive(client.kc, grace):
                    what = "a grader cell" if origin[index] is None else f"cell {origin[index]}"
                    outcome.stopped = (f"the kernel ignored the interrupt after {what} ran "
                                       "past its limit")
                    break
        finally:
            _end_tree(getattr(client.km.provisioner, "pid", None))
    return outcome


def _plan(nb, graded: dict[int, str], mode: str):
    """The notebook to run: support cell first, each graded cell reset and framed."""
    from nbformat.v4 import new_code_cell

    cells, origin, tokens = [new_code_cell(_support_source(mode))], [None], {}
    for index, cell in enumerate(nb.cells):
        cell = copy.deepcopy(cell)
        if index in graded:
            token = tokens[index] = secrets.token_hex(16)
            cells.append(new_code_cell("__course_grade__.reset()"))
            origin.append(None)
            cell.source = (f'__course_grade__.begin("{token}")\n{cell.source}\n'
                           f'__course_grade__.end("{token}")\n')
        cells.append(cell)
        origin.append(index)
    run_nb = nbformat.v4.new_notebook(cells=cells, metadata=copy.deepcopy(nb.metadata))
    return run_nb, origin, tokens


def _read_records(outputs, token: str) -> tuple[list, list]:
    """Splits a cell's outputs into (check records for ``token``, everything else)."""
    records, others = [], []
    for output in outputs:
        data = output.get("data", {}) if output.get("output_type") == "display_data" else {}
        if not any(key.startswith(_CHECK_MIME) for key in data):
            others.append(output)
            continue
        text = data.get(_CHECK_MIME + token)
        with contextlib.suppress(Exception):  # malformed or forged records are dropped
            record = json.loads("".join(text) if isinstance(text, list) else text)
            if isinstance(record, dict):
                records.append(record)
    return records, others


def _run(nb, graded: dict[int, str], *, mode, limits, env, kernel_name) -> _Outcome:
    """Runs ``nb`` in a sandbox; fills its cells' outputs; returns replies and records."""
    run_nb, origin, tokens = _plan(nb, graded, mode)
    root, tag = Path(tempfile.mkdtemp(prefix="course-grade-")), secrets.token_hex(16)
    from jupyter_core.utils import run_sync

    try:
        for name in ("work", "home", "tmp"):
            (root / name).mkdir()
        ran = run_sync(_drive)(run_nb, origin, limits, _kernel_env(env, root, tag), root,
                               kernel_name)
    finally:
        _end_tagged(tag)
        _remove(root)
    outcome = _Outcome(stopped=ran.stopped)
    for position, index in enumerate(origin):
        if index is None:
            continue
        cell = run_nb.cells[position]
        if position in ran.replies:
            outcome.replies[index] = ran.replies[position]
        if position in ran.timed_out:
            outcome.timed_out[index] = ran.timed_out[position]
        if nb.cells[index].cell_type == "code":
            records, others = _read_records(cell.get("outputs", []), tokens.get(index, ""))
            nb.cells[index].outputs = others
            nb.cells[index].execution_count = cell.get("execution_count")
            if index in graded:
                outcome.records[index] = records
    return outcome


# ------------------------------------------------------------------------------- comparison


def _numbers(record) -> np.ndarray | str:
    """A check record's value as a float64 array (booleans as 0 and 1), or what is wrong."""
    if "error" in record:
        return str(record["error"])[:300]
    shape, data, kind = record.get("shape"), record.get("data"), record.get("dtype")
    try:
        if kind not in ("b", "i", "u", "f") or not isinstance(data, list) \
                or not all(type(n) is int and n >= 0 for n in shape) \
                or len(data) != math.prod(shape) \
                or not all(type(x) in (bool, int, float) for x in data):
            raise ValueError
        return np.asarray(data, dtype=np.float64).reshape(shape)
    except Exception:
        return "the value reached the grader malformed"


def _compare(reference: dict, got) -> str:
    """'' when ``got`` matches the instructor's check record, else what differs."""
    if not isinstance(got, dict) or got.get("kind") != "check":
        return "did not run"
    actual = _numbers(got)
    if isinstance(actual, str):
        return actual
    desired = _numbers(reference)
    if actual.shape != desired.shape:
        return f"shape {actual.shape}, expected {desired.shape}"
    rtol, atol = reference["rtol"], reference["atol"]
    close = np.isclose(actual, desired, rtol=rtol, atol=atol, equal_nan=True)
    if close.all():
        return ""
    wrong_nan = ~close & (np.isnan(actual) != np.isnan(desired))
    if wrong_nan.any():
        return (f"{np.count_nonzero(~close)} of {close.size} values differ from the "
                f"instructor's ({np.count_nonzero(wrong_nan)} are NaN on one side only)")
    with np.errstate(invalid="ignore"):
        worst = np.nanmax(np.where(close, 0.0, np.abs(actual - desired)))
    return (f"{np.count_nonzero(~close)} of {close.size} values differ from the instructor's "
            f"(largest difference {worst:.3g}; allowed: {atol:g} + {rtol:g} x |reference|)")


def _compare_checks(reference: list, got: list) -> str:
    for n, ref in enumerate(reference, 1):
        problem = _compare(ref, got[n - 1] if n <= len(got) else None)
        if problem:
            return f"check {n} of {len(reference)} (line {ref.get('line')}): {problem}"
    if len(got) > len(reference):
        return f"{len(got)} checks ran where the instructor's solution runs {len(reference)}"
    return ""


def _failure(index, nb, outcome: _Outcome, reference) -> str:
    """'' when the graded cell ``index`` passed, else why not."""
    if index in outcome.timed_out:
        return f"timed out: {outcome.timed_out[index]}"
    reply = outcome.replies.get(index)
    if reply is None:
        return f"not run: {outcome.stopped or 'execution stopped before this cell'}"
    for output in nb.cells[index].get("outputs", []):
        if output.get("output_type") == "error":
            return _error_text(output.get("ename"), output.get("evalue"))
    if reply.get("status", "ok") != "ok":
        return _error_text(reply.get("ename", reply["status"]), reply.get("evalue"))
    records = outcome.records.get(index, [])
    if not any(r.get("kind") == "end" for r in records):
        return "the tests did not run to their end (their completion record is missing)"
    if reference:
        return _compare_checks(reference, [r for r in records if r.get("kind") == "check"])
    return ""


def _error_text(ename, evalue) -> str:
    return f"{ename}: {evalue}" if evalue else str(ename)


# ------------------------------------------------------------------------------------ grading


def _reference(instructor: _Instructor, limits, env, kernel_name) -> dict[str, list]:
    """Check records of the instructor's own run, by grade_id ({} without check_answer)."""
    code = [ex for ex in instructor.graded
            if instructor.nb.cells[ex["cell_index"]].cell_type == "code"]
    if not any("check_answer" in _source(instructor.nb.cells[ex["cell_index"]]) for ex in code):
        return {}
    key = hashlib.sha256(instructor.raw + json.dumps([env, kernel_name], sort_keys=True)
                         .encode()).hexdigest()
    if key in _REFERENCES:
        return _REFERENCES[key]
    nb = nbformat.from_dict(copy.deepcopy(instructor.nb))
    nb.cells = nb.cells[: max(ex["cell_index"] for ex in code) + 1]
    for cell in nb.cells:
        cell.source = _source(cell)
    graded = {ex["cell_index"]: ex["grade_id"] for ex in code}
    outcome = _run(nb, graded, mode="reference", limits=limits, env=env,
                   kernel_name=kernel_name)
    records = {}
    for index, grade_id in graded.items():
        failure = _failure(index, nb, outcome, None)
        if failure:
            raise InstructorRunError(
                f"the instructor notebook {instructor.path} fails its own graded cell {index} "
                f"({grade_id!r}) when run for grading: {failure}")
        records[grade_id] = [r for r in outcome.records[index] if r.get("kind") == "check"]
    _REFERENCES[key] = records
    return records


def _rows(instructor: _Instructor, reason_of) -> list[dict]:
    rows = []
    for ex in instructor.graded:
        reason = reason_of(ex)
        rows.append({"grade_id": ex["grade_id"], "points": 0.0 if reason else float(ex["points"]),
                     "max_points": float(ex["points"]), "passed": not reason, "reason": reason})
    return rows


def _report(name: str, rows: list[dict], error: str = "") -> dict:
    return {"notebook": name, "score": sum(row["points"] for row in rows),
            "max_score": sum(row["max_points"] for row in rows), "error": error,
            "exercises": rows}


def _failed(name: str, instructor: _Instructor, error: str) -> dict:
    """The report of a submission that failed as a whole: every exercise carries ``error``."""
    return _report(name, _rows(instructor, lambda ex: error), error)


def _grade_raw(raw: bytes, name: str, instructor: _Instructor, reference, *, limits, env,
               kernel_name):
    """Grades one submission's bytes; returns (report, executed notebook or None)."""
    try:
        submission = _parse_submission(raw)
    except SubmissionError as exc:
        return _failed(name, instructor, f"unreadable submission: {exc}"), None
    checks = reference()
    nb, where = _restore_tests(submission, instructor.nb, instructor.graded)
    graded = {index: ex["grade_id"] for ex in instructor.graded for index in where[ex["grade_id"]]
              if instructor.nb.cells[ex["cell_index"]].cell_type == "code"}
    outcome = _run(nb, graded, mode="submission", limits=limits, env=env,
                   kernel_name=kernel_name)
    if instructor.changed():
        return _failed(name, instructor, f"the instructor notebook {instructor.path} changed "
                       "on disk while this submission ran; scored 0 (check that file, e.g. "
                       "against version control)"), nb

    def reason_of(ex):
        if not where[ex["grade_id"]]:
            return MISSING_CELL
        if instructor.nb.cells[ex["cell_index"]].cell_type != "code":
            return "needs manual grading (markdown answer)"
        reasons = [_failure(i, nb, outcome, checks.get(ex["grade_id"]))
                   for i in where[ex["grade_id"]]]
        return next((reason for reason in reasons if reason), "")

    return _report(name, _rows(instructor, reason_of)), nb


def _settings(timeout, total_timeout, env):
    limits = _Limits(timeout, total_timeout)
    if env is not None:
        bad = {k: v for k, v in env.items() if not (isinstance(k, str) and isinstance(v, str))}
        if bad:
            raise TypeError(f"env must map strings to strings; got {bad!r}")
        env = dict(env)
    return limits, env


def _write_atomic(path, write) -> None:
    """Writes through ``write(handle)`` to a temporary file, then renames it over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=f".{path.name}.",
                                         suffix=".tmp", delete=False, newline="",
                                         encoding="utf-8")
    try:
        with handle:
            write(handle)
        os.replace(handle.name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(handle.name)
        raise


def _csv_rows(report: dict, with_name: bool) -> list[dict]:
    passed = all(row["passed"] for row in report["exercises"])
    total = {"grade_id": "TOTAL", "points": report["score"], "max_points": report["max_score"],
             "passed": passed, "reason": report.get("error", "")}
    rows = [dict(row) for row in report["exercises"]] + [total]
    if with_name:
        rows = [{"submission": report["notebook"], **row} for row in rows]
    return rows


def _write_report(report: dict, path) -> None:
    if Path(path).suffix.lower() != ".csv":
        _write_atomic(path, lambda handle: handle.write(json.dumps(report, indent=2) + "\n"))
        return

    def write(handle):
        writer = csv.DictWriter(handle, fieldnames=REPORT_COLUMNS)
        writer.writeheader()
        writer.writerows({k: row[k] for k in REPORT_COLUMNS}
                         for row in _csv_rows(report, with_name=False))

    _write_atomic(path, write)


def _write_batch(reports: list[dict], path) -> None:
    def write(handle):
        writer = csv.DictWriter(handle, fieldnames=BATCH_COLUMNS)
        writer.writeheader()
        for report in reports:
            writer.writerows(_csv_rows(report, with_name=True))

    _write_atomic(path, write)


def grade(submission_path, instructor_path, *, report_path=None, executed_path=None,
          timeout=1200, total_timeout=7200, env=None, kernel_name="python3") -> dict:
    """Grades a submission: restores the instructor's graded cells, runs it, scores each one.

    Graded cells are matched by grade_id and replaced by the instructor's cell, hidden tests
    included, so edited or deleted tests do not count; solution cells keep the student's code.
    A graded cell scores its points when it runs to its end without an error and, if it calls
    :func:`check_answer`, every checked value matches the instructor's run (made once per
    instructor notebook, environment and kernel, before the submission runs). How the
    submission is kept apart is described in the module docstring.

    Args:
        submission_path: the student's notebook.
        instructor_path: the instructor notebook, read once into memory, never written.
        report_path: optional report, CSV (with a TOTAL row) if it ends in ``.csv``, else
            JSON; written after every process of the run has ended, replacing any old file.
        executed_path: optional path for the executed, restored notebook.
        timeout: seconds allowed per cell (> 0); a cell that runs longer is interrupted.
        total_timeout: seconds allowed for the whole run (> 0); later cells are not run.
        env: variables for the kernel (str to str), on top of :data:`PASSED_VARIABLES`.
        kernel_name: the Jupyter kernel to run (a Python kernel).

    Returns:
        ``{"notebook", "score", "max_score", "error", "exercises": [{"grade_id", "points",
        "max_points", "passed", "reason"}]}``; ``reason`` is ``""`` for a pass, ``error`` is
        ``""`` unless the whole submission failed (unreadable, or it changed the instructor
        notebook), in which case every exercise carries it.

    Raises:
        FileNotFoundError: either notebook is missing.
        ExerciseFormatError: the instructor notebook breaks the exercise conventions.
        InstructorRunError: the instructor notebook fails its own graded cells.
        ValueError: a limit is not a positive number of seconds.
        TypeError: ``env`` holds something other than strings.
    """
    limits, env = _settings(timeout, total_timeout, env)
    instructor = _load_instructor(instructor_path)
    raw = _existing(submission_path, "submission").read_bytes()
    report, nb = _grade_raw(
        raw, str(submission_path), instructor,
        lambda: _reference(instructor, limits, env, kernel_name),
        limits=limits, env=env, kernel_name=kernel_name)
    if report_path is not None:
        _write_report(report, report_path)
    if executed_path is not None and nb is not None:
        _write_atomic(executed_path, lambda handle: nbformat.write(nb, handle))
    return report


def _submissions(folder: Path, skip: Path) -> list[Path]:
    found = []
    for path in sorted(folder.rglob("*.ipynb")):
        parts = path.relative_to(folder).parts
        if not any(part.startswith(".") for part in parts) and path.resolve() != skip:
            found.append(path)
    return found


def grade_batch(folder, instructor_path, csv_path, *, timeout=1200, total_timeout=7200,
                env=None, kernel_name="python3", progress=None) -> list[dict]:
    """Grades every ``*.ipynb`` under ``folder`` into one CSV.

    The CSV has one row per submission and exercise (``submission`` is the path relative to
    ``folder``) and a ``TOTAL`` row per submission, whose ``reason`` holds a whole-submission
    error. Every submission is read before the first one runs, and the instructor's run is
    made before any of them; an unreadable submission or a failure while grading it gives
    rows with the error, and the batch goes on. The CSV is rewritten (atomically) after
    each submission, so an interrupted batch keeps what it graded.

    Args:
        folder: the submissions; hidden folders (``.ipynb_checkpoints``) and the instructor
            notebook itself are skipped.
        instructor_path, timeout, total_timeout, env, kernel_name: as for :func:`grade`.
        csv_path: the CSV to write.
        progress: optional callable given each report as it is made.

    Returns:
        The reports, as :func:`grade` returns them, in file-name order.

    Raises:
        FileNotFoundError: ``folder`` or the instructor notebook is missing.
        ExerciseFormatError, InstructorRunError, ValueError, TypeError: as for :func:`grade`.
    """
    limits, env = _settings(timeout, total_timeout, env)
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"submission folder not found: {folder}")
    instructor = _load_instructor(instructor_path)
    raws = {}
    for path in _submissions(folder, instructor.path.resolve()):
        try:
            raws[path.relative_to(folder).as_posix()] = path.read_bytes()
        except OSError as exc:
            raws[path.relative_to(folder).as_posix()] = exc
    checks = _reference(instructor, limits, env, kernel_name)
    reports = []
    for name, raw in raws.items():
        try:
            if isinstance(raw, OSError):
                raise SubmissionError(f"unreadable submission: {raw}")
            report, _ = _grade_raw(raw, name, instructor, lambda: checks, limits=limits,
                                   env=env, kernel_name=kernel_name)
        except Exception as exc:  # this submission's problem only; the batch goes on
            report = _failed(name, instructor, str(exc) if isinstance(exc, SubmissionError)
                             else f"grading failed: {type(exc).__name__}: {exc}")
        reports.append(report)
        _write_batch(reports, csv_path)
        if progress is not None:
            progress(report)
    if not reports:
        _write_batch(reports, csv_path)
    return reports


# ----------------------------------------------------------------------------------------- CLI


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(
            f"expected a positive number of seconds (there is no 'no limit'), got {text!r}")
    return value


def _print_table(report: dict, out=None) -> None:
    out = out or sys.stdout
    rows = report["exercises"]
    width = max([len("grade_id")] + [len(row["grade_id"]) for row in rows])
    print(f"{'grade_id':<{width}}  {'points':>6}  {'max':>6}  result", file=out)
    for row in rows:
        result = "pass" if row["passed"] else f"FAIL  {row['reason']}"
        print(f"{row['grade_id']:<{width}}  {row['points']:>6g}  {row['max_points']:>6g}  "
              f"{result}", file=out)
    print(f"{'total':<{width}}  {report['score']:>6g}  {report['max_score']:>6g}", file=out)


def grade_main(argv=None) -> int:
    """``course-grade SUBMISSION --instructor NB [--report PATH]`` or
    ``course-grade --batch FOLDER --instructor NB --csv OUT.csv``, with ``[--smoke|--full]
    [--timeout S] [--total-timeout S] [--kernel NAME]``.

    Returns:
        0 when grading ran (whatever the scores), 2 on a usage, file or format error or an
        instructor notebook that fails its own tests.
    """
    from jupyter_client.kernelspec import NoSuchKernel

    parser = argparse.ArgumentParser(prog="course-grade",
                                     description="Grade submissions against the instructor's.")
    parser.add_argument("submission", nargs="?", help="the student's notebook")
    parser.add_argument("--batch", metavar="FOLDER", help="grade every notebook in FOLDER")
    parser.add_argument("--instructor", required=True, metavar="NB", help="instructor notebook")
    parser.add_argument("--report", metavar="PATH", help="report file: .json, or .csv")
    parser.add_argument("--csv", metavar="PATH", help="with --batch: the CSV to write")
    parser.add_argument("--executed", metavar="PATH", help="also write the executed notebook")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--smoke", dest="smoke", action="store_true", default=True,
                      help=f"run small: {SMOKE_ENV_VAR}=1 in the kernel (the default)")
    mode.add_argument("--full", dest="smoke", action="store_false",
                      help=f"run full size: {SMOKE_ENV_VAR}=0 in the kernel")
    parser.add_argument("--timeout", type=_seconds, default=1200, metavar="S",
                        help="seconds allowed per cell (default 1200)")
    parser.add_argument("--total-timeout", type=_seconds, default=7200, metavar="S",
                        help="seconds allowed per notebook run (default 7200)")
    parser.add_argument("--kernel", default="python3", help="Jupyter kernel name")
    args, code = _parse(parser, argv)
    if args is None:
        return code
    if (args.batch is None) == (args.submission is None):
        parser.print_usage(sys.stderr)
        print("error: give either a SUBMISSION or --batch FOLDER", file=sys.stderr)
        return 2
    if args.batch is not None and (args.csv is None or args.report or args.executed):
        print("error: --batch writes one CSV: give --csv PATH (not --report or --executed)",
              file=sys.stderr)
        return 2
    settings = dict(timeout=args.timeout, total_timeout=args.total_timeout,
                    env={SMOKE_ENV_VAR: "1" if args.smoke else "0"}, kernel_name=args.kernel)
    try:
        if args.batch is not None:
            reports = grade_batch(args.batch, args.instructor, args.csv, **settings,
                                  progress=lambda r: print(
                                      f"{r['notebook']}: {r['score']:g}/{r['max_score']:g}"
                                      + (f"  ({r['error']})" if r["error"] else "")))
            print(f"{len(reports)} submissions graded; CSV written to {args.csv}")
            return 0
        report = grade(args.submission, args.instructor, report_path=args.report,
                       executed_path=args.executed, **settings)
    except (OSError, ValueError, NoSuchKernel, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if report["error"]:
        print(f"error: {report['error']}", file=sys.stderr)
    _print_table(report)
    if args.report:
        print(f"report written to {args.report}")
    return 0

