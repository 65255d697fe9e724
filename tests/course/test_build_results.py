"""docs/build_results.py: the committed-tree rule, no errors let through, the stamp, the notes'
placeholders, and no number in docs/notes that no code produces."""

import importlib.util
import json
import re
import shutil
import subprocess
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTES = sorted((ROOT / "docs" / "notes").glob("*.md"))


def _load_build_results():
    # docs/ is not a package: load the script by path.
    path = ROOT / "docs" / "build_results.py"
    spec = importlib.util.spec_from_file_location("build_results", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


br = _load_build_results()

STAMP = dict(commit="0123456789abcdef0123456789abcdef01234567", date="2030-01-02 03:04 UTC",
             machine=dict(cpu_count=16, cpu_model="Test CPU 9000", python="3.11.7",
                          tensorflow="2.99.0", keras="3.99.0", tensorflow_probability="0.99.0"))


def _record(**extra):
    rows = [dict(name="RBM, CD-1", value=-101.234, published=-86.34, source="S & M 2008",
                 convention=None, evaluation="AIS", seconds=12.6, note=None),
            dict(name="  same, reverse AIS", value=-102.5, published=None, source=None,
                 convention=None, evaluation="reverse AIS", seconds=None, note=None),
            dict(name="RBM, PCD", value=-99.0, published="ordering PCD > CD-1", source=None,
                 convention=None, evaluation="AIS", seconds=None, note=None),
            dict(name="  same, reverse AIS", value=-99.5, published=None, source=None,
                 convention=None, evaluation="reverse AIS", seconds=None, note=None)]
    return dict(chapter="99_fixture", mode="full", rows=rows, timings={"train CD-1": 41.7},
                figures=[dict(file="99_fixture_fig.png", caption="A figure")],
                written="2030-01-02 03:04", notebook_seconds=1234.4, **extra)


# ------------------------------------------------------------------------- committed tree

@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_dirty_paths_in_a_temporary_repository_allow_only_the_builders_outputs(tmp_path):
    def git(*args):
        subprocess.run(["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t",
                        *args], check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "docs" / "results").mkdir(parents=True)
    for name in ("lib.py", "docs/results/01_x.json", "docs/RESULTS.md", ".gitignore"):
        (tmp_path / name).write_text("first\n")
    (tmp_path / ".gitignore").write_text("*.executed.ipynb\n")
    git("add", ".")
    git("commit", "-q", "-m", "first")
    assert br.dirty_paths(tmp_path) == []
    assert re.fullmatch(r"[0-9a-f]{40}", br.head_commit(tmp_path))

    # The builder's own outputs (a chapter already run) and ignored files are not changes ...
    (tmp_path / "docs/results/01_x.json").write_text("second\n")
    (tmp_path / "docs/results/01_x_fig.png").write_text("new\n")
    (tmp_path / "docs/results/01_x.executed.ipynb").write_text("{}\n")
    (tmp_path / "docs/RESULTS.md").write_text("second\n")
    assert br.dirty_paths(tmp_path) == []
    # ... an edited tracked file and untracked files elsewhere (notes included) are.
    (tmp_path / "lib.py").write_text("edited\n")
    (tmp_path / "docs/notes").mkdir()
    (tmp_path / "docs/notes/01_x.md").write_text("new\n")
    (tmp_path / "new file.py").write_text("new\n")
    assert sorted(br.dirty_paths(tmp_path)) == [" M lib.py", "?? docs/notes/01_x.md",
                                                "?? new file.py"]
    with pytest.raises(SystemExit, match="refusing to run") as refused:
        br.require_clean_tree(tmp_path)
    assert "lib.py" in str(refused.value) and "new file.py" in str(refused.value)


def test_a_run_refuses_a_dirty_tree_and_names_the_files(monkeypatch):
    monkeypatch.setattr(br, "dirty_paths", lambda root=None: [" M course_lib/x.py", "?? y.py"])
    monkeypatch.setattr(br, "run_chapter", lambda *a, **k: pytest.fail("ran on a dirty tree"))
    monkeypatch.setattr(br, "render", lambda *a, **k: pytest.fail("rendered"))
    with pytest.raises(SystemExit) as refused:
        br.main(["01_rbm"])
    message = str(refused.value.code)
    assert "refusing to run" in message and "course_lib/x.py" in message and "y.py" in message
    assert "--render-only" in message


def test_render_only_runs_on_a_dirty_tree(monkeypatch, tmp_path):
    monkeypatch.setattr(br, "dirty_paths", lambda root=None: [" M course_lib/x.py"])
    monkeypatch.setattr(br, "run_chapter", lambda *a, **k: pytest.fail("ran a chapter"))
    monkeypatch.setattr(br, "render", lambda *a, **k: tmp_path / "RESULTS.md")
    assert br.main(["--render-only"]) == 0


# ---------------------------------------------------------------------- no errors through

def _fixture_notebook(path, *, fails):
    """A chapter that writes its json and a figure like ResultsLog.save, then maybe fails."""
    record = _record()
    record.pop("notebook_seconds")
    write = ("import json, os, pathlib\n"
             "assert os.environ['COURSE_LIB_SMOKE'] == '0'\n"
             "out = pathlib.Path(os.environ['COURSE_LIB_RESULTS_DIR'])\n"
             "(out / '99_fixture_fig.png').write_bytes(b'new figure')\n"
             f"(out / '99_fixture.json').write_text(json.dumps({record!r}))\n")
    cells = [nbformat.v4.new_code_cell(write)]
    if fails:
        cells.append(nbformat.v4.new_code_cell("raise RuntimeError('deliberate failure')"))
    cells.append(nbformat.v4.new_code_cell("print('the end')"))
    nbformat.write(nbformat.v4.new_notebook(cells=cells), path)
    return path


def _previous_results(results):
    results.mkdir()
    (results / "99_fixture.json").write_text('{"previous": true}')
    (results / "99_fixture_fig.png").write_bytes(b"old figure")


def test_cell_errors_lists_every_error_output():
    ok = nbformat.v4.new_code_cell("1")
    ok.outputs = [nbformat.v4.new_output("stream", name="stdout", text="1\n")]
    bad = nbformat.v4.new_code_cell("boom")
    bad.outputs = [nbformat.v4.new_output("error", ename="NameError", evalue="boom",
                                          traceback=[])]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# x"), ok, bad])
    assert br.cell_errors(nb) == ["cell 2: NameError: boom"]


def test_a_failing_cell_stops_the_chapter_and_keeps_the_previous_results(tmp_path):
    notebook = _fixture_notebook(tmp_path / "99_fixture.ipynb", fails=True)
    results = tmp_path / "results"
    _previous_results(results)
    with pytest.raises(br.ChapterFailed, match="RuntimeError: deliberate failure"):
        br.run_chapter(notebook, results, STAMP, timeout=120)
    assert json.loads((results / "99_fixture.json").read_text()) == {"previous": True}
    assert (results / "99_fixture_fig.png").read_bytes() == b"old figure"
    executed = nbformat.read(results / "99_fixture.executed.ipynb", as_version=4)
    assert br.cell_errors(executed) == ["cell 1: RuntimeError: deliberate failure"]
    assert executed.cells[2].outputs == []          # nothing ran after the failing cell


def test_a_chapter_that_runs_to_the_end_is_stamped_and_moved_into_place(tmp_path):
    notebook = _fixture_notebook(tmp_path / "99_fixture.ipynb", fails=False)
    results = tmp_path / "results"
    _previous_results(results)
    (results / "99_fixture_dropped.png").write_bytes(b"a figure the chapter no longer makes")
    seconds = br.run_chapter(notebook, results, STAMP, timeout=120)
    record = json.loads((results / "99_fixture.json").read_text())
    assert record["stamp"] == STAMP and record["notebook_seconds"] == pytest.approx(seconds)
    assert record["rows"][0]["value"] == -101.234
    assert (results / "99_fixture_fig.png").read_bytes() == b"new figure"
    assert not (results / "99_fixture_dropped.png").exists()


def test_a_failed_chapter_makes_the_run_exit_non_zero_without_rendering(monkeypatch, tmp_path):
    (tmp_path / "99_fixture.ipynb").write_text("{}")
    monkeypatch.setattr(br, "NOTEBOOKS", tmp_path)
    monkeypatch.setattr(br, "dirty_paths", lambda root=None: [])
    monkeypatch.setattr(br, "make_stamp", lambda root=None: STAMP)

    def fail(*args, **kwargs):
        raise br.ChapterFailed("cell 3: ValueError: nope")

    monkeypatch.setattr(br, "run_chapter", fail)
    monkeypatch.setattr(br, "render", lambda *a, **k: pytest.fail("rendered after a failure"))
    assert br.main(["99_fixture"]) == 1


def test_a_tree_that_changes_during_the_run_fails_the_chapter(monkeypatch, tmp_path):
    (tmp_path / "99_fixture.ipynb").write_text("{}")
    monkeypatch.setattr(br, "NOTEBOOKS", tmp_path)
    monkeypatch.setattr(br, "dirty_paths", lambda root=None: [])
    monkeypatch.setattr(br, "make_stamp", lambda root=None: STAMP)
    monkeypatch.setattr(br, "head_commit", lambda root=None: "f" * 40)   # a commit mid-run
    monkeypatch.setattr(br, "render", lambda *a, **k: pytest.fail("rendered after a failure"))

    def run(*args, before_promote, **kwargs):
        before_promote()
        pytest.fail("promoted results of a changed tree")

    monkeypatch.setattr(br, "run_chapter", run)
    assert br.main(["99_fixture"]) == 1


# ------------------------------------------------------------------------------ the stamp

def test_cpu_model_reads_proc_cpuinfo(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: Test CPU 9000\nflags\t: fpu\n")
    assert br.cpu_model(cpuinfo) == "Test CPU 9000"
    assert br.cpu_model(tmp_path / "absent") is None
    info = br.machine_info()
    assert set(info) >= {"cpu_count", "cpu_model", "python", "tensorflow", "keras"}


def test_gpu_names_reads_nvidia_smi_and_says_none_without_it(monkeypatch):
    class Listing:
        stdout = ("GPU 0: NVIDIA H200 (UUID: GPU-1234)\n"
                  "GPU 1: Tesla T4 (UUID: GPU-5678)\n")
    monkeypatch.setattr(br.shutil, "which", lambda name: "/usr/bin/nvidia-smi")
    assert br.gpu_names(run=lambda *a, **k: Listing()) == ["NVIDIA H200", "Tesla T4"]
    monkeypatch.setattr(br.shutil, "which", lambda name: None)
    assert br.gpu_names() == []
    assert "gpus" in br.machine_info()


def test_render_names_the_gpu_or_none(tmp_path):
    stamp = {"commit": "abc", "date": "2026-01-01 00:00 UTC",
             "machine": {"cpu_count": 2, "cpu_model": "X", "gpus": ["NVIDIA H200"]}}
    lines = br.stamp_lines({"stamp": stamp, "mode": "full", "chapter": "01_rbm"})
    assert "GPU: NVIDIA H200" in "\n".join(lines)
    stamp["machine"]["gpus"] = []
    assert "GPU: none" in "\n".join(br.stamp_lines({"stamp": stamp, "mode": "full"}))
    del stamp["machine"]["gpus"]
    assert "GPU" not in "\n".join(br.stamp_lines({"stamp": stamp, "mode": "full"}))


def test_render_shows_the_stamp_and_marks_an_unstamped_chapter(tmp_path):
    results, notes = tmp_path / "results", tmp_path / "notes"
    results.mkdir(), notes.mkdir()
    (results / "98_old.json").write_text(json.dumps(dict(_record(), chapter="98_old")))
    (results / "99_fixture.json").write_text(json.dumps(_record(stamp=STAMP)))
    (notes / "99_fixture.md").write_text("CD-1 reaches {{rows:RBM, CD-1|.1f}} nats.")
    text = br.render(results, notes, tmp_path / "RESULTS.md").read_text()
    old, new = text.split("## 99_fixture")
    assert "**Unstamped (stale)" in old and "2030-01-02 03:04" in old
    assert "**Unstamped" not in new
    assert f"Commit `{STAMP['commit']}`, run 2030-01-02 03:04 UTC" in new
    assert "16 CPU cores (Test CPU 9000)" in new
    assert "Python 3.11.7, TensorFlow 2.99.0, Keras 3.99.0, TFP 0.99.0" in new
    assert "CD-1 reaches −101.2 nats." in new
    assert "](results/99_fixture_fig.png)" in new


def test_render_fails_on_a_placeholder_the_json_lacks(tmp_path):
    results, notes = tmp_path / "results", tmp_path / "notes"
    results.mkdir(), notes.mkdir()
    (results / "99_fixture.json").write_text(json.dumps(_record(stamp=STAMP)))
    (notes / "99_fixture.md").write_text("See {{timings:train CD-25}} s.")
    with pytest.raises(ValueError, match="no timing named 'train CD-25'"):
        br.render(results, notes, tmp_path / "RESULTS.md")
    assert not (tmp_path / "RESULTS.md").exists()


# ------------------------------------------------------------------------- placeholders

@pytest.mark.parametrize("placeholder, expected", [
    ("{{rows:RBM, CD-1}}", "−101.23"),
    ("{{rows:RBM, CD-1|.1f}}", "−101.2"),
    ("{{ rows : RBM,\n   CD-1 | .0f }}", "−101"),                    # wrapped across lines
    ("{{rows:RBM, PCD / same, reverse AIS|.1f}}", "−99.5"),          # an indented row
    ("{{published:RBM, CD-1}}", "−86.34"),
    ("{{published:RBM, PCD}}", "ordering PCD > CD-1"),
    ("{{seconds:RBM, CD-1}}", "13"),
    ("{{timings:train CD-1}}", "42"),
    ("{{record:notebook_seconds}}", "1234"),
])
def test_placeholders_are_filled_from_the_record(placeholder, expected):
    assert br.resolve_placeholders(f"x {placeholder} y", _record()) == f"x {expected} y"


@pytest.mark.parametrize("placeholder, message", [
    ("{{rows:RBM, CD-25}}", "no row named 'RBM, CD-25'"),
    ("{{rows:same, reverse AIS}}", "2 rows are named 'same, reverse AIS'"),
    ("{{published:RBM, CD-1 / same, reverse AIS}}", "has no published value"),
    ("{{timings:train PCD}}", "no timing named 'train PCD'"),
    ("{{record:written}}", "no number 'written'"),
    ("{{table:RBM, CD-1}}", "unknown placeholder kind 'table'"),
    ("{{rows:RBM, CD-1|.1q}}", "Unknown format code"),
])
def test_a_placeholder_that_cannot_be_filled_is_an_error(placeholder, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        br.resolve_placeholders(f"x {placeholder} y", _record())


# -------------------------------------------------------------------------------- notes

# Measurement-like numbers: a fraction, a sign or "≈" in front, or a unit of the results
# behind. Plain integers (layer sizes, epochs, k, numbers of distributions, years of
# citations) are settings and pass; an integer result without a unit is not caught here.
MEASUREMENT = re.compile("|".join([
    r"\d\.\d",                                        # 103.2, 0.3
    r"\d[eE][−+-]?\d",                                # 1e-3
    r"(?<![\w)\]])[−+-]\d",                           # −86.34, +355.5 (not CD-1, 784-500)
    r"[≈~]\s*\d",                                     # ≈ 1,040
    r"\d[\d,]*(?:\s*[–-]\s*\d[\d,]*)?\s*"             # 20 s, 44–52 s, 38%, 8 times
    r"(?:nats?|s|seconds?|min|minutes?|hours?|%|percent|times)(?!\w)",
]))
EQUATION = re.compile(r"\bEqs?\.\s*\(?\d+\.\d+\)?")
CODE_SPAN = re.compile(r"`([^`]+)`")
# Published figures quoted from papers that no results row carries (the json's "published"
# field covers the others through {{published:...}}): number -> the citation that must stand
# in the same bullet.
PUBLISHED = {
    "02_dbn.md": {"−84.55": "Murray & Salakhutdinov"},   # the range's other end; (R)
    "03_dbm.md": {"356.18": "Salakhutdinov & Hinton 2009"},  # their log Z, not comparable
    "04_vae.md": {"85.33": "Burda et al. 2016",           # Table 1, two stochastic layers, VAE
                  "82.90": "Burda et al. 2016"},          # Table 1, two stochastic layers, IWAE
}


def _notebook_code(stem):
    nb = nbformat.read(ROOT / "notebooks" / f"{stem}.ipynb", as_version=4)
    return "\n".join(c.source for c in nb.cells if c.cell_type == "code")


def test_there_are_notes_to_check():
    assert [p.stem for p in NOTES] == ["01_rbm", "02_dbn", "03_dbm", "04_vae", "05_gan",
                                       "06_flows", "07_gmmn_gsn_ebm", "08_cyclegan_unit"]


@pytest.mark.parametrize("path", NOTES, ids=lambda p: p.name)
def test_notes_introduce_no_number_that_no_code_produces(path):
    text = br.PLACEHOLDER.sub(" ", path.read_text())
    code = _notebook_code(path.stem)
    misquoted = [s for s in CODE_SPAN.findall(text) if re.search(r"\d", s) and s not in code]
    assert not misquoted, f"code spans with numbers must quote notebooks/{path.stem}.ipynb"
    text = EQUATION.sub(" ", CODE_SPAN.sub(" ", text))
    for number, citation in PUBLISHED.get(path.name, {}).items():
        bullets = [b for b in text.split("\n- ") if number in b]
        assert bullets and all(citation in b for b in bullets), (number, citation)
        text = text.replace(number, " ")
    bare = [line.strip() for line in text.splitlines() if MEASUREMENT.search(line)]
    assert not bare, (f"{path.name}: numbers that are neither placeholders, equation "
                      f"references, quoted code nor cited published figures: {bare}")


@pytest.mark.parametrize("path", NOTES, ids=lambda p: p.name)
def test_notes_placeholders_resolve_against_the_committed_json(path):
    record = json.loads((ROOT / "docs" / "results" / f"{path.stem}.json").read_text())
    text = br.resolve_placeholders(path.read_text(), record)
    assert "{{" not in text and "}}" not in text


def test_the_scanner_catches_measured_numbers():
    for line in ("reaches −103.2 nats", "took 44–52 s", "on 38% of the time", "≈ 1,040",
                 "agree to 1e-3", "about 20 nats", "8 times more", "+2,902.3"):
        assert MEASUREMENT.search(line), line
    for line in ("784-500-500, CD-1, 10 epochs", "Tieleman (2008)", "k = 5,000", "2^20 states",
                 "Σ softplus(b_A) + 1,500 log 2", "−log 30", "7×7 grid, 5 passes"):
        assert not MEASUREMENT.search(line), line
