"""Comment banners and docstring headers that divide a scanner file into sections.

Real files use many styles: ``# ==== Scanner 2: A+ ====``, ``# ─── Config ───``, boxes of
``#`` lines around a title, and bare string statements used as headers.
"""

import re
from dataclasses import dataclass
from typing import Literal

SectionKind = Literal["scanner", "shared", "unknown"]

_RULE_CHARS = r"=\-─━═#*~_+<>"
_INLINE = re.compile(
    rf"^#+\s*[{_RULE_CHARS}]{{3,}}\s*(?P<title>.*?[^\s{_RULE_CHARS}].*?)\s*[{_RULE_CHARS}]*\s*$"
)
_RULE = re.compile(rf"^#*\s*[{_RULE_CHARS}]{{5,}}\s*$")
# Notebook cells exported to a file ("# %% Scanner 2") and markdown-like "## Scanner 2".
_CELL = re.compile(r"^#\s?%%+\s*(?:\[markdown\])?\s*(?P<title>.*?)\s*$")
_HEADING = re.compile(r"^#{2,}\s+(?P<title>[^#].*?)\s*#*\s*$")
_TEXT = re.compile(r"^#+\s*(?P<title>\S.*?)\s*#*\s*$")
_SCANNER_WORDS = re.compile(
    r"(?i)\b(scanner|scan|screen|screener|setup|strategy|signal|pattern)s?\b"
)
_NUMBERED = re.compile(r"(?i)\b(scanner|scan|screen|setup|strategy)\s*(#?\d+|[A-Z]\b)")
_SHARED_WORDS = re.compile(
    r"(?i)\b(config|configuration|settings|helpers?|utils?|utilities|shared|common|imports?|"
    r"main|runner|globals?|constants|entry ?point|execution|data loading|fetch(ing)?)\b"
)


@dataclass(frozen=True, slots=True)
class Banner:
    """A section header: the line it starts on and its title."""

    line: int
    title: str
    kind: SectionKind


def classify(title: str) -> SectionKind:
    """Whether a banner title announces a scanner or shared code."""
    if _NUMBERED.search(title):
        return "scanner"
    if _SHARED_WORDS.search(title):
        return "shared"
    if _SCANNER_WORDS.search(title):
        return "scanner"
    return "unknown"


def is_banner_line(text: str) -> bool:
    """A comment line that is decoration or a section title, not a remark about code."""
    s = text.strip()
    if _RULE.match(s) or _INLINE.match(s) or _CELL.match(s):
        return True
    m = _HEADING.match(s)
    return bool(m) and classify(m.group("title")) != "unknown"


def find_banners(lines: list[str], docstring_headers: dict[int, str]) -> list[Banner]:
    """Banners at column 0 in ``lines`` (1-based line numbers) plus docstring headers."""
    found: dict[int, Banner] = {}
    i = 0
    n = len(lines)
    while i < n:
        raw = lines[i]
        if not raw.startswith("#"):
            i += 1
            continue
        s = raw.strip()
        if _RULE.match(s):
            # A box: a rule line, one or two title lines, a closing rule line.
            j = i + 1
            titles: list[str] = []
            while (
                j < n
                and j <= i + 3
                and lines[j].startswith("#")
                and not _RULE.match(lines[j].strip())
            ):
                m = _TEXT.match(lines[j].strip())
                if m:
                    titles.append(m.group("title"))
                j += 1
            if titles and j < n and _RULE.match(lines[j].strip()):
                found[i + 1] = Banner(i + 1, titles[0], classify(" ".join(titles)))
                i = j + 1
                continue
            i += 1
            continue
        m = _INLINE.match(s)
        if m:
            title = m.group("title").strip()
            found[i + 1] = Banner(i + 1, title, classify(title))
        elif m := _CELL.match(s):
            title = m.group("title").strip() or "cell"
            found[i + 1] = Banner(i + 1, title, classify(title))
        elif (m := _HEADING.match(s)) and classify(m.group("title")) != "unknown":
            # "## Scanner 2" is a heading; "## compute the ATR" is only a comment.
            found[i + 1] = Banner(i + 1, m.group("title").strip(), classify(m.group("title")))
        i += 1
    for line, title in docstring_headers.items():
        found.setdefault(line, Banner(line, title, classify(title)))
    return [found[k] for k in sorted(found)]
