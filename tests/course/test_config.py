"""The smoke-mode switch and the results log."""

import json

import numpy as np
import pytest

from course_lib.course import config
from course_lib.course.results import RESULTS_ENV_VAR, ResultsLog


@pytest.mark.parametrize("raw, smoke", [("1", True), ("true", True), ("YES", True), ("on", True),
                                        ("0", False), ("", False), ("off", False)])
def test_smoke_mode_reads_the_variable(monkeypatch, raw, smoke):
    monkeypatch.setenv(config.SMOKE_ENV_VAR, raw)
    assert config.smoke_mode() is smoke
    assert config.choose(full="big", smoke="small") == ("small" if smoke else "big")
    assert config.mode_name() == ("smoke" if smoke else "full")


def test_full_mode_is_the_default(monkeypatch):
    monkeypatch.delenv(config.SMOKE_ENV_VAR, raising=False)
    assert not config.smoke_mode()


def test_a_garbled_switch_is_an_error(monkeypatch):
    monkeypatch.setenv(config.SMOKE_ENV_VAR, "maybe")
    with pytest.raises(ValueError, match="maybe"):
        config.smoke_mode()


def test_results_log_writes_nothing_without_a_folder(monkeypatch, tmp_path):
    monkeypatch.delenv(RESULTS_ENV_VAR, raising=False)
    log = ResultsLog("99_test", "smoke")
    log.add("x", 1.0)
    assert log.save() is None


def test_results_log_saves_rows_timings_and_figures(monkeypatch, tmp_path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    monkeypatch.setenv(RESULTS_ENV_VAR, str(tmp_path))
    log = ResultsLog("99_test", "full")
    with log.timer("step"):
        sum(range(1000))
    log.add("test LL", -90.5, published=-86.34, source="paper", convention="fixed")
    fig, ax = plt.subplots()
    ax.set_title("t")
    log.add_figure(fig, "curve", "a caption")
    path = log.save()
    payload = json.loads(path.read_text())
    assert payload["rows"][0]["value"] == -90.5 and payload["rows"][0]["published"] == -86.34
    assert payload["timings"]["step"] >= 0
    assert (tmp_path / "99_test_curve.png").stat().st_size > 0
    assert "| test LL | -90.50 | -86.34 |" in log.table()
    plt.close(fig)


def test_results_log_refuses_non_finite_numbers():
    with pytest.raises(ValueError, match="not finite"):
        ResultsLog("99_test", "smoke").add("broken", np.nan)


def test_results_log_returns_nothing_a_cell_would_echo():
    """A notebook cell that ends in results.add(...) or results.add_figure(fig, ...) must not
    echo the number or show the figure a second time as the cell's value."""
    import matplotlib.pyplot as plt

    log = ResultsLog("99_test", "smoke")
    fig = plt.figure()
    assert log.add("a number", 1.5) is None
    assert log.add_figure(fig, "name", "caption") is None
    assert log.rows[0]["value"] == 1.5 and log.figures[0][0] is fig
    plt.close(fig)


def test_a_smoke_table_says_its_numbers_are_not_comparable():
    smoke, full = ResultsLog("99_test", "smoke"), ResultsLog("99_test", "full")
    for log in (smoke, full):
        log.add("RBM test log-likelihood", -90.0, published=-86.34, source="paper")
    assert "not comparable" in smoke.table() and "| here (smoke run) |" in smoke.table()
    assert "not comparable" not in full.table() and "| here |" in full.table()
    assert full.table().splitlines()[2] == smoke.table().splitlines()[-1]   # same row
