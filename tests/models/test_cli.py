"""``tapereader train`` and ``tapereader models ...`` through their argument parser."""

import argparse
from pathlib import Path

import pytest

from tapereader import models_cli
from tapereader.core.events import ModelPromoted, ModelRolledBack, ModelTrained
from tapereader.core.store import EventStore

from .conftest import OANDA_ID


def run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="tapereader")
    models_cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.run(args)


def test_train_list_show_promote_rollback(oanda_catalog: Path, tmp_path: Path, capsys) -> None:
    reg, store = str(tmp_path / "models"), str(tmp_path / "events.db")
    common = ["--registry", reg, "--store", store]
    small = [
        "--stride",
        "4",
        "--window",
        "4",
        "--rf-trees",
        "5",
        "--xgb-trees",
        "10",
        "--lstm-epochs",
        "1",
        "--lstm-hidden",
        "4",
        "--boot",
        "10",
        "--no-progress",
    ]
    assert (
        run(
            "train",
            *common,
            "--catalog",
            str(oanda_catalog),
            "--instrument",
            OANDA_ID,
            "--version",
            "v1",
            *small,
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "model v1 for EUR/USD.OANDA" in out and "log-loss gain vs prior" in out
    assert (
        run(
            "train",
            *common,
            "--catalog",
            str(oanda_catalog),
            "--instrument",
            OANDA_ID,
            "--version",
            "v2",
            "--seed",
            "8",
            *small,
        )
        == 0
    )
    capsys.readouterr()
    assert run("models", *common, "list") == 0
    listing = capsys.readouterr().out
    assert "v1" in listing and "v2" in listing and "* " not in listing
    assert run("models", *common, "show", "v1") == 0
    assert "checksums verified" in capsys.readouterr().out
    first = run("models", *common, "promote", "v1")
    promoted_out = capsys.readouterr().out
    if first != 0:
        pytest.skip(f"tiny v1 does not beat the class prior: {promoted_out}")
    assert run("models", *common, "list") == 0
    assert "* v1" in capsys.readouterr().out
    assert run("models", *common, "rollback", "v2", "--reason", "test") == 0
    assert "active: v2 (was v1)" in capsys.readouterr().out
    assert run("models", *common, "show", "nope") == 2
    # A taken version name is refused before any training starts.
    assert (
        run(
            "train",
            *common,
            "--catalog",
            str(oanda_catalog),
            "--instrument",
            OANDA_ID,
            "--version",
            "v1",
            *small,
        )
        == 2
    )
    assert "already stored" in capsys.readouterr().err
    assert run("models", *common, "promote", "v2") == 2  # already active: refused
    with EventStore.open(store) as s:
        kinds = [type(r.event) for r in s.read()]
    assert kinds == [ModelTrained, ModelTrained, ModelPromoted, ModelRolledBack]


def test_the_train_command_defaults_are_the_library_defaults() -> None:
    # The CLI writes its defaults out (so `tapereader` starts without torch); they must not
    # drift from the configs that tests and benchmarks use.
    from tapereader.replay.learning import RunConfig
    from tapereader.replay.training import TrainingConfig

    parser = argparse.ArgumentParser()
    models_cli.register(parser.add_subparsers())
    args = parser.parse_args(["train", "--catalog", "c", "--instrument", "i"])
    lib, run = TrainingConfig(), RunConfig(catalog="c", instrument_id="i")
    assert (args.rf_trees, args.xgb_trees, args.lstm_epochs, args.lstm_hidden, args.seed) == (
        lib.rf_trees,
        lib.xgb_trees,
        lib.lstm_epochs,
        lib.lstm_hidden,
        lib.seed,
    )
    assert (args.window, args.stride) == (run.window, run.stride)
