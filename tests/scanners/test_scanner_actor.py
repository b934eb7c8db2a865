"""ScannerActor inside a real Nautilus BacktestEngine: watched folder, ZeroMQ, events."""

import json
import shutil
from pathlib import Path

import zmq
from nautilus_trader.backtest.engine import BacktestEngine, BacktestEngineConfig
from nautilus_trader.common.actor import Actor
from nautilus_trader.common.config import ActorConfig
from nautilus_trader.config import LoggingConfig
from nautilus_trader.model.currencies import USD
from nautilus_trader.model.data import QuoteTick
from nautilus_trader.model.enums import AccountType, OmsType
from nautilus_trader.model.identifiers import Venue
from nautilus_trader.model.objects import Money, Price, Quantity
from nautilus_trader.test_kit.providers import TestInstrumentProvider

from tapereader.actors.bus import EVENTS
from tapereader.actors.scanner_actor import ScannerActor, ScannerActorConfig
from tapereader.core.events import (
    ScannerBoundariesDetected,
    ScannerFileRejected,
    ScannerFileSubmitted,
    ScannerGenerated,
    ScannerParametersIsolated,
)
from tapereader.core.store import EventStore

from .scanner_corpus import CORPUS


class CollectorConfig(ActorConfig, frozen=True):
    """No settings: the collector only listens."""


class Collector(Actor):
    """Receives every scanner event from the message bus, as a downstream actor would."""

    def __init__(self) -> None:
        super().__init__(CollectorConfig(component_id="Collector"))
        self.events: list = []

    def on_start(self) -> None:
        self.msgbus.subscribe(topic=f"{EVENTS}.scanners.*", handler=self.events.append)


def _engine(actor: ScannerActor, seconds: int = 20) -> tuple[BacktestEngine, Collector]:
    engine = BacktestEngine(BacktestEngineConfig(logging=LoggingConfig(bypass_logging=True)))
    engine.add_venue(
        venue=Venue("SIM"),
        oms_type=OmsType.HEDGING,
        account_type=AccountType.MARGIN,
        base_currency=USD,
        starting_balances=[Money(1_000_000, USD)],
    )
    inst = TestInstrumentProvider.default_fx_ccy("EUR/USD")
    engine.add_instrument(inst)
    start = 1_704_186_000_000_000_000
    engine.add_data(
        [
            QuoteTick(
                inst.id,
                Price.from_str("1.10000"),
                Price.from_str("1.10010"),
                Quantity.from_int(1_000_000),
                Quantity.from_int(1_000_000),
                start + i * 1_000_000_000,
                start + i * 1_000_000_000,
            )
            for i in range(seconds)
        ]
    )
    collector = Collector()
    engine.add_actor(collector)
    engine.add_actor(actor)
    return engine, collector


def test_watched_directory_file_is_split_and_published(tmp_path: Path) -> None:
    watch = tmp_path / "inbox"
    watch.mkdir()
    shutil.copy(CORPUS / "momentum_trio.py", watch / "momentum_trio.py")
    (watch / "broken.py").write_text("def scan_x(df):\n    return (\n")
    actor = ScannerActor(
        ScannerActorConfig(
            output_dir=str(tmp_path / "out"),
            watch_dir=str(watch),
            second_opinion=False,
            store_path=str(tmp_path / "events.sqlite"),
            run_id="test-run",
        )
    )
    engine, collector = _engine(actor)
    try:
        engine.run()
    finally:
        engine.dispose()
    kinds = [type(e) for e in collector.events]
    # broken.py sorts first: refused with a reason, never submitted.
    assert kinds[:2] == [ScannerFileRejected, ScannerFileSubmitted]
    assert kinds.count(ScannerFileSubmitted) == 1
    (rejected,) = [e for e in collector.events if isinstance(e, ScannerFileRejected)]
    assert rejected.path.endswith("broken.py") and rejected.line is not None
    assert "not valid Python" in rejected.message
    assert ScannerBoundariesDetected in kinds and kinds.count(ScannerGenerated) == 3
    gen = [e for e in collector.events if isinstance(e, ScannerGenerated)]
    for e in gen:
        assert Path(e.output_path).is_file() and "momentum_trio" in e.output_path
    params = {
        e.scanner: e.parameters
        for e in collector.events
        if isinstance(e, ScannerParametersIsolated)
    }
    assert params["scan_volume_breakout"]["P.vol_mult"] == "2.5"
    assert all(e.source.run_id == "test-run" for e in collector.events)
    store = EventStore.open(tmp_path / "events.sqlite")
    try:
        stored = [r.event.event_id for r in store.read()]
    finally:
        store.close()
    assert stored == [e.event_id for e in collector.events]


def test_zeromq_requests_are_accepted_analysed_or_refused(tmp_path: Path) -> None:
    endpoint = f"ipc://{tmp_path}/scanner.sock"
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    actor = ScannerActor(
        ScannerActorConfig(
            output_dir=str(tmp_path / "out"),
            watch_dir=str(inbox),
            zmq_endpoint=endpoint,
            zmq_wait_ms=200,
            second_opinion=False,
        )
    )
    engine, collector = _engine(actor, seconds=12)
    requests = [
        {"name": "config_zoo.py", "source": (CORPUS / "config_zoo.py").read_text()},
        {"path": str(CORPUS / "momentum_trio.py")},  # outside the watched folder
        {"name": "broken.py", "source": "def scan_x(df):\n    return (\n"},
    ]
    # A DEALER queues all three requests at once; the actor's REP answers one per poll.
    client = zmq.Context.instance().socket(zmq.DEALER)
    client.setsockopt(zmq.LINGER, 0)
    client.connect(endpoint)
    for req in requests:
        client.send_multipart([b"", json.dumps(req).encode()])
    replies: list[dict] = []
    try:
        engine.run()
        while len(replies) < len(requests) and client.poll(5000, zmq.POLLIN):
            replies.append(json.loads(client.recv_multipart()[-1]))
    finally:
        client.close()
        engine.dispose()
    assert len(replies) == 3, replies
    assert replies[0]["accepted"] is True and len(replies[0]["file_sha256"]) == 64
    assert replies[1] == {
        "accepted": False,
        "error": f"{CORPUS / 'momentum_trio.py'} is outside the watched folder",
    }
    assert (
        replies[2]["accepted"] is False and "broken.py:2: not valid Python" in replies[2]["error"]
    )
    names = sorted(e.scanner for e in collector.events if isinstance(e, ScannerGenerated))
    assert names == ["ChannelBreakoutScanner", "scan_breadth", "scan_gap", "scan_reversal"]
    assert actor.published == len(collector.events)
