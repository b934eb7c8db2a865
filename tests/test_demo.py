"""``tapereader demo`` (what ``make demo`` runs) on the real data."""

import re
from pathlib import Path

import pytest

from tapereader.cli import main
from tapereader.core.events import (
    DataIngested,
    ModelPromoted,
    ModelTrained,
    RunCompleted,
    RunStarted,
    ScannerGenerated,
    SignalGenerated,
)
from tapereader.core.models.registry import PRIOR_METRIC
from tapereader.core.store import EventStore


@pytest.mark.timeout(900)  # training and a day of backtest: minutes on two shared cores
def test_the_demo_runs_every_built_step_and_records_it(
    market_data: Path, tmp_path: Path, capsys
) -> None:
    store = tmp_path / "events.db"
    argv = [
        "demo",
        "--store",
        str(store),
        "--catalog",
        str(tmp_path / "catalog"),
        "--data",
        str(market_data),
    ]
    assert main(argv) == 0
    with EventStore.open(store) as s:
        events = [r.event for r in s.read()]
    assert isinstance(events[0], RunStarted) and isinstance(events[-1], RunCompleted)
    assert events[-1].status == "succeeded"
    runs = [e for e in events if isinstance(e, RunStarted)]
    (backtest,) = [r for r in runs if r.source.component == "tapereader.backtest"]
    assert backtest.parameters["in_sample"] == "no"  # trained before the backtested day
    (done,) = [e for e in events if isinstance(e, RunCompleted) and e.source == backtest.source]
    assert done.status == "succeeded" and done.summary["signals"] > 50_000
    signals = [e for e in events if isinstance(e, SignalGenerated)]
    assert len(signals) == done.summary["signals"]
    out = capsys.readouterr().out
    # Every signal reached a ZeroMQ subscriber, but those sent before it had joined.
    (zmq_line,) = [line for line in out.splitlines() if "ZeroMQ subscriber on" in line]
    got = re.search(r"([\d,]+) SignalGenerated; lost 0; (\d+) sent before it joined", zmq_line)
    assert got, zmq_line
    received, early = int(got[1].replace(",", "")), int(got[2])
    assert received + early >= len(signals) and early < 1_000, zmq_line
    report = tmp_path / "reports" / backtest.source.run_id / "report.html"
    assert report.is_file() and str(report) in out
    ingested = [e for e in events if isinstance(e, DataIngested)]
    assert sum(e.rows_written.get("trades", 0) for e in ingested) == 21_313
    assert sum(e.rows_written.get("quotes", 0) for e in ingested) == 66_089 + 532_903
    assert sum(isinstance(e, ScannerGenerated) for e in events) == 3
    (trained,) = [e for e in events if isinstance(e, ModelTrained)]
    (promoted,) = [e for e in events if isinstance(e, ModelPromoted)]
    assert promoted.model_version == trained.model_version
    # The first model of an instrument must beat the class prior on its held-out rows.
    assert promoted.previous_version is None
    assert promoted.candidate_score < trained.metrics[PRIOR_METRIC]


def test_the_demo_without_data_says_where_it_looked(tmp_path: Path, capsys) -> None:
    argv = ["demo", "--store", str(tmp_path / "e.db"), "--data", str(tmp_path / "no")]
    assert main([*argv, "--no-download"]) == 2
    assert "real market data not found" in capsys.readouterr().out
