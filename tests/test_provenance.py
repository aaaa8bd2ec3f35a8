"""Model configs name their training data portably, never by a path of the training machine."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from training.provenance import training_record

REPO = Path(__file__).resolve().parents[1]


@dataclass
class _Settings:
    dataset: str = "/home/someone/ctc/Fluo-N2DH-GOWT1"
    masks: str | None = "/tmp/run/GOWT1-01-masks"
    extra: tuple[str, ...] = ("/data/sim-GOWT1", "runs/sim-B")
    epochs: int = 3
    size: list[int] = field(default_factory=lambda: [32, 32])


def test_paths_become_names_and_the_rest_is_kept():
    record = training_record(_Settings(), steps=7)
    assert record["dataset"] == "Fluo-N2DH-GOWT1"
    assert record["masks"] == "GOWT1-01-masks"
    assert record["extra"] == ["sim-GOWT1", "sim-B"]
    assert record["epochs"] == 3 and record["size"] == [32, 32] and record["steps"] == 7
    assert training_record(_Settings(masks=None))["masks"] is None


@pytest.mark.parametrize("config", sorted(REPO.glob("parameters/*/*/config.json")), ids=str)
def test_shipped_configs_hold_no_absolute_path(config):
    def strings(value):
        if isinstance(value, dict):
            for v in value.values():
                yield from strings(v)
        elif isinstance(value, list):
            for v in value:
                yield from strings(v)
        elif isinstance(value, str):
            yield value

    absolute = [s for s in strings(json.loads(config.read_text())) if s.startswith("/")]
    assert absolute == []
