"""Nautilus's per-trade P&L records, kept in lists during a backtest and built once after.

The portfolio hands every closed position to ``PortfolioAnalyzer.record_trade``, which
makes two one-element pandas Series and concatenates each onto the ones before: quadratic
in the number of trades, and on a run of the full chain 14% of the interpreter's time. The
same records are kept here in lists and turned into the same Series (same values, index,
dtypes and order) when the run ends, before anything reads them.
"""

from collections import defaultdict

import pandas as pd
from nautilus_trader.analysis.analyzer import PortfolioAnalyzer
from nautilus_trader.model.identifiers import PositionId
from nautilus_trader.model.objects import Currency, Money


class DeferredTradeRecords:
    """Takes over one analyzer's record appends until :meth:`materialize`."""

    def __init__(self, analyzer: PortfolioAnalyzer) -> None:
        if not callable(getattr(analyzer, "_append_pnl_record", None)):
            raise TypeError(
                "PortfolioAnalyzer._append_pnl_record is gone: this Nautilus version records "
                "trades differently; remove DeferredTradeRecords"
            )
        self._analyzer = analyzer
        # id() of the target dicts -> (the pnl dict, the timestamp dict, rows per currency)
        self._pending: dict[int, tuple[dict, dict, defaultdict[Currency, list]]] = {}
        analyzer._append_pnl_record = self._append  # type: ignore[method-assign]

    def _append(
        self,
        pnls: dict[Currency, pd.Series],
        timestamps: dict[Currency, pd.Series],
        position_id: PositionId,
        realized_pnl: Money,
        ts_event: int | None,
    ) -> None:
        entry = self._pending.get(id(pnls))
        if entry is None:
            entry = self._pending[id(pnls)] = (pnls, timestamps, defaultdict(list))
        ts = int(ts_event) if ts_event is not None else None
        entry[2][realized_pnl.currency].append((position_id.value, realized_pnl.as_double(), ts))

    def materialize(self) -> int:
        """Build the Series the analyzer would hold and give it its method back; returns
        the number of records."""
        n = 0
        for pnls, timestamps, rows in self._pending.values():
            for currency, records in rows.items():
                ids = [r[0] for r in records]
                pnl = pd.Series([r[1] for r in records], index=ids, dtype="float64")
                ts = pd.Series([r[2] for r in records], index=ids, dtype=object)
                if currency in pnls:
                    pnl = pd.concat([pnls[currency], pnl])
                    ts = pd.concat([timestamps[currency], ts])
                pnls[currency], timestamps[currency] = pnl, ts
                n += len(records)
        self._pending.clear()
        del self._analyzer._append_pnl_record  # the class's own method again
        return n
