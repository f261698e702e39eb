"""What the training commands print: true verdicts, a legend, option errors that name the
option, and progress lines when the output is not a terminal (CI, pipes, logs)."""

from __future__ import annotations

import re

from typer.testing import CliRunner

from flushcast.cli import app
from flushcast.common.progress import LINES, progress, ticker
from flushcast.simulator import simulate
from flushcast.training.cli import TABLE, edge_words, legend, run_name
from flushcast.training.config import load


def test_the_edge_reads_true_whatever_its_sign() -> None:
    assert edge_words(0.0123) == "champion beats it by 0.0123"
    assert edge_words(-0.0034) == "champion falls short of it by 0.0034"
    assert edge_words(0.0) == "champion ties it"
    assert "beat" not in edge_words(None)
    assert not re.search(r"by -", edge_words(-0.5))


def test_the_legend_explains_every_heading_of_the_table() -> None:
    text = legend(TABLE)
    assert "lift in fold: " in text and "event rec.: flush episodes warned" in text
    assert text.count(": ") == len(TABLE)


def test_an_option_error_names_the_option(tmp_path) -> None:
    simulate("default", ["BTCUSDT"], days=40, seed=5, bar="1d").write(tmp_path / "daily")
    result = CliRunner().invoke(
        app, ["evaluate", "--store", str(tmp_path / "daily"), "--horizons", "4,12"]
    )
    assert result.exit_code == 2
    assert "--horizons: horizon of 4 h is not a whole number of 1 d bars" in result.output
    assert "column" not in result.output


def test_progress_off_a_terminal_prints_lines(capsys, monkeypatch) -> None:
    assert list(progress(range(25), "building features")) == list(range(25))
    assert capsys.readouterr().err == ""  # a quick stage stays quiet: errors stay one line
    monkeypatch.setattr("flushcast.common.progress.QUIET_S", 0.0)  # as if every step were slow
    assert list(progress(range(25), "building features")) == list(range(25))
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith("building features: 3/25 done (")
    assert lines[-1].startswith("building features: 25/25 done (")
    assert len(lines) <= LINES
    with ticker("walk-forward folds", 3) as tick:
        for _ in range(3):
            tick()
    lines = capsys.readouterr().err.splitlines()
    assert [line.split(" (")[0] for line in lines] == [
        f"walk-forward folds: {i}/3 done" for i in (1, 2, 3)
    ]


def test_runs_are_named_by_store_label_and_horizons(tmp_path) -> None:
    config = load(None, {"label.horizons": [4, 12]})
    name = run_name("train", [tmp_path / "store-4h", tmp_path / "store-b"], config)
    assert name == f"train store-4h+store-b {config.label.name} 4/12h"
