"""How an ingest treats questionable rows, and how it writes: one explicit, documented config."""

from typing import Literal

import msgspec


class IngestOptions(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """Policies and limits for one ingest run.

    - ``crossed``: quotes with bid > ask are ``"drop"``ped (counted as rejected, reason
      ``crossed``) or ``"keep"``-and-flagged (written unchanged, counted in ``crossed``).
      Locked quotes (bid == ask) are always kept and counted.
    - ``excess_precision``: a price or size with more decimals than the instrument's
      precision is an ``"error"`` (nothing is written), ``"reject"``ed (row dropped,
      counted) or ``"round"``ed half-even to the precision (counted in ``rounded``).
    - ``gap_threshold_s``: tick data with no row for longer than this is reported as a gap;
      for bars a gap is any missing bar.
    - ``chunk_rows``: rows per catalog file; bounds the memory of the Arrow conversion.
    - ``batch_bytes``: text read and validated at a time from large files (raw feeds, Tardis,
      archive and generic CSVs); bounds memory. Batches change nothing in what is written.
    - ``fx_quote_size``: the size given to both sides of quotes from sources without sizes
      (Lean FX ticks), as Nautilus's own wranglers do with their default volume.
    """

    crossed: Literal["drop", "keep"] = "drop"
    excess_precision: Literal["error", "reject", "round"] = "error"
    gap_threshold_s: float = msgspec.field(default=300.0)
    max_gap_examples: int = 10
    chunk_rows: int = 1_000_000
    row_group_rows: int = 5_000
    batch_bytes: int = 8 * 2**20
    fx_quote_size: str = "1000000"
    progress: bool = False

    def __post_init__(self) -> None:
        if self.chunk_rows < 1 or self.row_group_rows < 1 or self.batch_bytes < 1:
            raise ValueError("chunk_rows, row_group_rows and batch_bytes must be positive")
        if self.gap_threshold_s <= 0:
            raise ValueError("gap_threshold_s must be positive")
