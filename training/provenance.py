"""What a model folder records of its training run, portable across machines."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

#: Settings that hold paths: recorded as the dataset's or folder's name, not where it lay.
PATH_FIELDS = ("dataset", "masks", "extra")


def training_record(settings: Any, **extra: Any) -> dict[str, Any]:
    """The dataclass `settings` as a dict, with path fields cut to their last part, so a
    config.json names the data it was trained on (e.g. Fluo-N2DH-SIM+) and not a local path."""
    record = asdict(settings)
    for key in PATH_FIELDS:
        value = record.get(key)
        if isinstance(value, (list, tuple)):
            record[key] = [Path(v).name for v in value]
        elif value:
            record[key] = Path(value).name
    return {**record, **extra}
