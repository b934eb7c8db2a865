"""The scanner corpus and its ground truth (imported by the scanner tests)."""

import tomllib
from pathlib import Path

CORPUS = Path(__file__).parent / "corpus"


def corpus_files() -> list[Path]:
    """Every multi-scanner file of the corpus."""
    return sorted(CORPUS.glob("*.py"))


def truth() -> dict[str, dict]:
    """The hand-checked expectations, by file name."""
    with open(CORPUS / "expected.toml", "rb") as f:
        return {entry["name"]: entry for entry in tomllib.load(f)["file"]}
