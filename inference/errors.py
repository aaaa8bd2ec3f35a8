"""The one exception type users see: a clear message naming the file (and frame or line)."""

from __future__ import annotations

from pathlib import Path


class CTCError(Exception):
    """Bad input or an invalid result; the CLI prints the message without a traceback."""

    def __init__(self, message: str, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else None
        super().__init__(f"{path}: {message}" if path is not None else message)
