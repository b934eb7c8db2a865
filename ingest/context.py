"""What a loader needs besides the file: instruments, policies and user overrides."""

from dataclasses import dataclass, field

from tapereader.ingest.instruments import InstrumentRegistry, InstrumentSpec
from tapereader.ingest.options import IngestOptions
from tapereader.ingest.report import IngestError


@dataclass
class LoadContext:
    """Shared inputs of every loader.

    ``venue`` and ``instrument_id`` override what a loader would infer from the file name
    (needed where the file does not say, e.g. a generic bar CSV).
    """

    registry: InstrumentRegistry
    options: IngestOptions = field(default_factory=IngestOptions)
    venue: str | None = None
    instrument_id: str | None = None
    extra: dict[str, object] = field(default_factory=dict)

    def instrument(
        self, source: str, venue: str, raw_symbol: str, line: int | None = None
    ) -> InstrumentSpec:
        """The declared instrument for a raw symbol; an undeclared one is an error."""
        if self.instrument_id:
            spec = self.registry.get(self.instrument_id)
            if spec is None:
                raise IngestError(source, f"unknown instrument {self.instrument_id!r}")
            return spec
        spec = self.registry.resolve(venue, raw_symbol)
        if spec is None:
            raise IngestError(
                source,
                f"unknown symbol {raw_symbol!r} on {venue}: declare it in an instruments "
                "TOML file (--instruments FILE)",
                line,
            )
        return spec
