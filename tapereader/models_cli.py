"""``tapereader train`` and ``tapereader models list|show|promote|rollback``."""

import argparse
import datetime as dt
import os
import shutil
import sys
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import msgspec

from tapereader.core.models.bundle import BundleError, load_bundle
from tapereader.core.models.registry import Registry, RegistryError
from tapereader.core.store import EventStore, EventStoreError

DEFAULT_REGISTRY = "var/models"
DEFAULT_STORE = "var/events.db"


def register(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Add ``train`` and ``models`` with their options."""
    train = subparsers.add_parser("train", help="train, export, evaluate and register an ensemble")
    _common(train)
    train.add_argument("--catalog", required=True, help="Nautilus ParquetDataCatalog folder")
    train.add_argument("--instrument", required=True, help="instrument id, e.g. EUR/USD.OANDA")
    train.add_argument("--horizon-events", type=int, default=50, help="label horizon in quotes")
    train.add_argument(
        "--horizon-seconds",
        type=float,
        default=0.0,
        help="label horizon in exchange time (overrides --horizon-events)",
    )
    train.add_argument("--fee-rate", type=float, default=0.0, help="fee per side, fraction")
    train.add_argument("--cost-multiplier", type=float, default=1.0, help="dead zone x costs")
    train.add_argument("--window", type=int, default=8, help="LSTM window, rows")
    train.add_argument("--stride", type=int, default=1, help="keep every n-th sample row")
    train.add_argument("--start", help="first UTC time (ISO), default: all")
    train.add_argument("--end", help="end UTC time (ISO, exclusive), default: all")
    train.add_argument("--embargo-seconds", type=float, default=0.0, help="gap after each split")
    train.add_argument("--boot", type=int, default=200, help="bootstrap resamples")
    train.add_argument("--seed", type=int, default=7)
    # The library's defaults (RunConfig, TrainingConfig), written out so that `tapereader`
    # starts without importing torch; tests/models/test_cli.py keeps the two equal.
    train.add_argument("--rf-trees", type=int, default=20)
    train.add_argument("--xgb-trees", type=int, default=200)
    train.add_argument("--lstm-epochs", type=int, default=6)
    train.add_argument("--lstm-hidden", type=int, default=16)
    train.add_argument("--threads", type=int, default=2)
    train.add_argument(
        "--device",
        choices=["auto", "cpu", "cuda"],
        default="auto",
        help="LSTM training device (cuda only when torch sees a GPU)",
    )
    train.add_argument("--version", default="", help="version name (default: instrument-time)")
    train.add_argument("--promote", action="store_true", help="try to promote it afterwards")
    train.add_argument(
        "--walk-forward",
        type=int,
        default=0,
        metavar="FOLDS",
        help="also score logistic regression on this many walk-forward folds",
    )
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    train.set_defaults(run=_guarded(_train))

    models = subparsers.add_parser("models", help="the model registry")
    _common(models)
    sub = models.add_subparsers(dest="models_command", required=True, metavar="ACTION")
    sub.add_parser("list", help="stored versions, the active one marked").set_defaults(
        run=_guarded(_list)
    )
    show = sub.add_parser("show", help="a version's manifest and checksum verification")
    show.add_argument("version")
    show.set_defaults(run=_guarded(_show))
    promote = sub.add_parser("promote", help="activate a version if it beats the active one")
    promote.add_argument("version")
    promote.set_defaults(run=_guarded(_promote))
    rollback = sub.add_parser("rollback", help="make an earlier version active again")
    rollback.add_argument("version")
    rollback.add_argument("--reason", default="manual rollback")
    rollback.set_defaults(run=_guarded(_rollback))


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--registry",
        default=os.environ.get("TAPEREADER_MODELS", DEFAULT_REGISTRY),
        help="registry folder (default: $TAPEREADER_MODELS or %(default)s)",
    )
    p.add_argument(
        "--store",
        default=os.environ.get("TAPEREADER_STORE", DEFAULT_STORE),
        help="event store for model events (default: $TAPEREADER_STORE or %(default)s)",
    )
    p.add_argument("--no-events", action="store_true", help="do not append model events")


def _guarded(fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        try:
            return fn(args)
        except (RegistryError, BundleError, EventStoreError, FileNotFoundError, ValueError) as exc:
            print(f"tapereader {args.command}: {exc}", file=sys.stderr)
            return 2

    return run


def _registry(args: argparse.Namespace, store: EventStore | None) -> Registry:
    return Registry(args.registry, store)


def _store(args: argparse.Namespace) -> Any:
    return nullcontext(None) if args.no_events else EventStore.open(args.store)


def _ns(text: str | None) -> int:
    if not text:
        return 0
    moment = dt.datetime.fromisoformat(text)
    moment = moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
    return int(moment.timestamp() * 1_000_000) * 1000


def _train(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from tapereader.replay.dataset import LabelSpec
    from tapereader.replay.export import ExportParityError
    from tapereader.replay.learning import RunConfig, train_bundle
    from tapereader.replay.training import TrainingConfig

    if args.version and Registry(args.registry).path(args.version).exists():
        raise RegistryError(f"model version {args.version!r} is already stored")

    label = LabelSpec(
        horizon_events=args.horizon_events,
        horizon_ns=int(args.horizon_seconds * 1e9),
        fee_rate=args.fee_rate,
        cost_multiplier=args.cost_multiplier,
    )
    run = RunConfig(
        catalog=args.catalog,
        instrument_id=args.instrument,
        label=label,
        window=args.window,
        stride=args.stride,
        start_ns=_ns(args.start),
        end_ns=_ns(args.end),
        embargo_ns=int(args.embargo_seconds * 1e9),
        n_boot=args.boot,
    )
    cfg = TrainingConfig(
        seed=args.seed,
        rf_trees=args.rf_trees,
        xgb_trees=args.xgb_trees,
        lstm_epochs=args.lstm_epochs,
        lstm_hidden=args.lstm_hidden,
        threads=args.threads,
        device=args.device,
    )
    staging = Path(args.registry) / ".staging"
    bar = tqdm(
        total=9 + args.lstm_epochs,
        desc="train",
        unit="step",
        disable=args.no_progress,
        file=sys.stderr,
    )

    def progress(message: str) -> None:
        bar.update(1)
        (tqdm.write if not args.no_progress else print)(message, file=sys.stderr)

    try:
        result = train_bundle(run, cfg, staging, version=args.version, progress=progress)
    except ExportParityError as exc:
        print(f"tapereader train: export refused: {exc}", file=sys.stderr)
        return 3
    finally:
        bar.close()
    with _store(args) as store:
        registry = _registry(args, store)
        try:
            manifest = registry.add(result.path)
        finally:
            shutil.rmtree(result.path, ignore_errors=True)
        print(f"model {manifest.model_version} for {manifest.instrument_id}")
        print(f"label: {manifest.label_definition}")
        print(result.evaluation.table())
        print(f"stored in {registry.path(manifest.model_version)}")
        if args.promote:
            decision = registry.promote(manifest.model_version)
            print(("promoted: " if decision.promoted else "not promoted: ") + decision.reason)
    if args.walk_forward:
        from tapereader.replay.dataset import build_dataset
        from tapereader.replay.walkforward import table, walk_forward_baseline

        ds = build_dataset(
            run.catalog,
            run.instrument_id,
            label=label,
            window=run.window,
            stride=run.stride,
            start_ns=run.start_ns,
            end_ns=run.end_ns,
        )
        folds = walk_forward_baseline(
            ds, folds=args.walk_forward, embargo_ns=run.embargo_ns, n_boot=run.n_boot, lr_c=cfg.lr_c
        )
        print(f"walk-forward, logistic regression vs class prior ({args.walk_forward} folds):")
        print(table(folds))
    return 0


def _list(args: argparse.Namespace) -> int:
    registry = _registry(args, None)
    active = set(registry.active_versions().values())
    print(
        f"{'':2}{'version':<42} {'instrument':<22} {'spec':<17} "
        f"{'test log-loss':>13} {'gain vs prior':>13}"
    )
    for m in registry.versions():
        mark = "* " if m.model_version in active else "  "
        ll = m.metrics.get("test_log_loss", float("nan"))
        gain = m.metrics.get("test_log_loss_gain_vs_prior", float("nan"))
        print(
            f"{mark}{m.model_version:<42} {m.instrument_id:<22} {m.feature_spec_hash:<17} "
            f"{ll:>13.5f} {gain:>13.5f}"
        )
    return 0


def _show(args: argparse.Namespace) -> int:
    registry = _registry(args, None)
    path = registry.path(args.version)
    if not path.is_dir():
        raise RegistryError(f"no model version {args.version!r} in {registry.root}")
    try:
        bundle = load_bundle(path)
        verdict = "checksums verified"
    except BundleError as exc:
        print(f"NOT VERIFIED: {exc}")
        return 1
    print(msgspec.json.format(msgspec.json.encode(bundle.manifest), indent=2).decode())
    active = registry.active(bundle.manifest.instrument_id) == args.version
    print(f"{verdict}; active for {bundle.manifest.instrument_id}: {active}")
    return 0


def _promote(args: argparse.Namespace) -> int:
    with _store(args) as store:
        decision = _registry(args, store).promote(args.version)
    print(("promoted: " if decision.promoted else "not promoted: ") + decision.reason)
    return 0 if decision.promoted else 1


def _rollback(args: argparse.Namespace) -> int:
    with _store(args) as store:
        event = _registry(args, store).rollback(args.version, args.reason)
    print(f"active: {event.model_version} (was {event.from_version})")
    return 0
