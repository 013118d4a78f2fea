"""JSON-lines files that one process appends to while others read them (the controller's output).

Each record is one line, written whole and flushed at once; a reader skips a line that does
not parse (the one being written, or the last one of a process that was killed).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import IO


class JsonLinesWriter:
    """An append-only JSON-lines file, flushed line by line."""

    def __init__(self, path: str | Path) -> None:
        self._file: IO[str] = open(path, "a", encoding="utf-8")

    def write(self, record: dict) -> None:
        self._file.write(json.dumps(record, separators=(",", ":")) + "\n")
        self._file.flush()


def read_json_lines(path: Path) -> list[dict]:
    """Every complete record of ``path`` (none if it does not exist)."""
    if not Path(path).is_file():
        return []
    records = []
    for line in Path(path).read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records
