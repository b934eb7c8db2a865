"""Reading and parsing a scanner file: bytes to an ``ast`` tree, with clear errors.

Bad input is refused here, before any analysis, with an error that names the file and
(where there is one) the line: a binary file, text that is not UTF-8, or Python that does
not parse. The analysis works on Python's own ``ast`` (positions, scopes, by the
language's rules) and writes isolated files by copying source text, so formatting and
comments are kept byte for byte; libcst's scope analysis is the cross-check, see
:mod:`tapereader.core.scanning.crosscheck` (it is several times too slow for the 1-second
budget on a 1,500-line file).
"""

import ast
import bisect
import hashlib
import re
from pathlib import Path

import msgspec

# A scanner file bigger than this is not a hand-written scanner file.
MAX_BYTES = 5_000_000


class ScannerInputError(Exception):
    """The file cannot be analysed; the message names the file and the line."""

    def __init__(self, path: str, message: str, line: int | None = None) -> None:
        where = f"{path}:{line}" if line is not None else path
        super().__init__(f"{where}: {message}")
        self.path = path
        self.line = line
        self.reason = message


class SourceFile(msgspec.Struct, frozen=True):
    """A scanner file's text and identity."""

    path: str
    text: str
    sha256: str
    size_bytes: int
    line_count: int


def read_source(path: str | Path) -> SourceFile:
    """Read ``path`` as a UTF-8 Python source file, refusing binary and oversized files."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise ScannerInputError(str(p), f"cannot read file: {exc.strerror or exc}") from exc
    return source_from_bytes(str(p), data)


def source_from_bytes(path: str, data: bytes) -> SourceFile:
    """Build a :class:`SourceFile` from raw bytes (``path`` is used in messages only)."""
    if len(data) > MAX_BYTES:
        raise ScannerInputError(path, f"file is {len(data)} bytes, more than {MAX_BYTES}")
    if b"\x00" in data:
        line = data[: data.index(b"\x00")].count(b"\n") + 1
        raise ScannerInputError(path, "binary file (NUL byte), not Python source", line)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ScannerInputError(path, f"not UTF-8 text ({exc.reason})", line) from exc
    return SourceFile(
        path=path,
        text=text,
        sha256=hashlib.sha256(data).hexdigest(),
        size_bytes=len(data),
        line_count=text.count("\n") + (0 if text.endswith("\n") or not text else 1),
    )


_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$")


def split_lines(text: str, keepends: bool = False) -> list[str]:
    """Lines as Python's tokenizer counts them (``str.splitlines`` also breaks at form
    feeds and other separators, which would shift every line number after them)."""
    raw = _LINE.findall(text)
    return raw if keepends else [ln.rstrip("\r\n") for ln in raw]


class ParsedModule:
    """A parsed file: the ``ast`` tree, its lines, and position arithmetic on the text."""

    def __init__(self, source: SourceFile) -> None:
        self.source = source
        try:
            self.tree = ast.parse(source.text, filename=source.path)
        except SyntaxError as exc:
            raise ScannerInputError(
                source.path, f"not valid Python: {exc.msg}", exc.lineno
            ) from exc
        except (ValueError, RecursionError, MemoryError) as exc:
            raise ScannerInputError(source.path, f"not valid Python: {exc}") from exc
        self.text = source.text
        self.raw_lines = split_lines(source.text, keepends=True)
        self.lines = [ln.rstrip("\r\n") for ln in self.raw_lines]
        self._starts = [0]
        for ln in self.raw_lines:
            self._starts.append(self._starts[-1] + len(ln))

    def offset(self, line: int, col_bytes: int) -> int:
        """Character offset in the text of an ``ast`` position (its column counts bytes)."""
        raw = self.raw_lines[line - 1] if line - 1 < len(self.raw_lines) else ""
        return self._starts[line - 1] + len(raw.encode()[:col_bytes].decode(errors="replace"))

    def segment(self, node: ast.AST) -> str:
        """Exact source text of a node."""
        a = self.offset(node.lineno, node.col_offset)  # type: ignore[attr-defined]
        b = self.offset(node.end_lineno, node.end_col_offset)  # type: ignore[attr-defined]
        return self.text[a:b]

    def line_span_text(self, start: int, end: int) -> str:
        """Whole lines ``start``..``end`` (1-based, inclusive), newlines kept."""
        text = "".join(self.raw_lines[start - 1 : end])
        return text if text.endswith("\n") else text + "\n"

    def line_offset(self, line: int) -> int:
        """Character offset where a line starts."""
        return self._starts[min(line - 1, len(self._starts) - 1)]

    def line_at(self, offset: int) -> int:
        """1-based line holding a character offset."""
        return bisect.bisect_right(self._starts, offset)


def parse_file(path: str | Path) -> ParsedModule:
    """Read and parse a scanner file."""
    return ParsedModule(read_source(path))
