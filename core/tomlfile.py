"""Reading a TOML configuration file whose errors name the file, and its tables."""

import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def read_tables(
    path: str | Path,
    required: Sequence[str],
    error: type[Exception],
    *,
    only: bool = False,
) -> dict[str, Any]:
    """The parsed file; raises ``error`` naming the file when it is missing, not TOML, lacks
    a ``required`` table, or (``only``) holds a table not among them."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise error(f"{path}: no such file") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise error(f"{path}: not valid TOML: {exc}") from exc
    for table in required:
        if table not in raw:
            raise error(f"{path}: missing table [{table}]")
    unknown = set(raw) - set(required)
    if only and unknown:
        raise error(f"{path}: unknown tables {sorted(unknown)}")
    return raw
