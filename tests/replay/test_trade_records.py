"""Deferred trade records build exactly the Series Nautilus's analyzer builds itself."""

import pandas as pd
import pytest
from nautilus_trader.analysis.analyzer import PortfolioAnalyzer
from nautilus_trader.model.currencies import EUR, USD
from nautilus_trader.model.identifiers import PositionId
from nautilus_trader.model.objects import Money

from tapereader.replay.trade_records import DeferredTradeRecords

RECORDS = [
    (f"P-{i}", Money(i * 1.5 - 3, USD if i % 3 else EUR), 1_000 + i if i % 4 else None)
    for i in range(12)
]


def _record(analyzer: PortfolioAnalyzer, records) -> None:
    for pid, money, ts in records:
        analyzer.record_trade(PositionId(pid), money, ts)


def test_the_analyzer_ends_with_the_same_series_and_statistics() -> None:
    reference, deferred = PortfolioAnalyzer(), PortfolioAnalyzer()
    _record(reference, RECORDS)
    _record(deferred, RECORDS[:3])  # records made before the takeover are kept in front
    records = DeferredTradeRecords(deferred)
    _record(deferred, RECORDS[3:])
    assert deferred._recorded_realized_pnls[USD].size == 2  # the rest held back until the end
    assert records.materialize() == len(RECORDS) - 3
    for currency in (USD, EUR):
        pd.testing.assert_series_equal(
            deferred._recorded_realized_pnls[currency], reference._recorded_realized_pnls[currency]
        )
        pd.testing.assert_series_equal(
            deferred._recorded_realized_pnl_timestamps[currency],
            reference._recorded_realized_pnl_timestamps[currency],
        )
        assert deferred.realized_pnls(currency).equals(reference.realized_pnls(currency))


def test_after_materialize_the_analyzer_records_by_itself_again() -> None:
    analyzer = PortfolioAnalyzer()
    DeferredTradeRecords(analyzer).materialize()
    _record(analyzer, RECORDS[:2])
    assert analyzer._recorded_realized_pnls[USD].tolist() == pytest.approx([-1.5])
    assert analyzer._recorded_realized_pnls[EUR].tolist() == pytest.approx([-3.0])


def test_an_analyzer_without_the_method_is_refused_by_name() -> None:
    class Other:
        pass

    with pytest.raises(TypeError, match="_append_pnl_record is gone"):
        DeferredTradeRecords(Other())  # type: ignore[arg-type]
