"""Models as folders: `config.json` (what the model is) next to `weights.pt` (its numbers).

The config records the architecture, features, normalisation, thresholds, training data, a
format version and the sha256 of the weights; loading checks all of it and fails with one
clear message rather than a shape error deep inside torch.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from inference import __version__
from inference.config import load_section, setting, text
from inference.errors import CTCError
from inference.io import atomic_output_dir
from inference.io.atomic import atomic_file

FORMAT_VERSION = 1
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "weights.pt"


@dataclass(frozen=True)
class WeightsRecord:
    """The `weights` key of every model config: the weights file and its sha256."""

    sha256: str = setting(text())
    file: str = setting(text(), WEIGHTS_NAME)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def save_model_folder(
    folder: str | Path,
    kind: str,
    config: dict[str, Any],
    state_dict: dict[str, torch.Tensor],
    *,
    overwrite: bool = False,
) -> Path:
    """Write `config` (plus kind, versions, weights checksum) and the weights, atomically."""
    buffer = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in state_dict.items()}, buffer)
    weights = buffer.getvalue()
    full = {
        "kind": kind,
        "format_version": FORMAT_VERSION,
        "gnntrack_version": __version__,
        **config,
        "weights": {"file": WEIGHTS_NAME, "sha256": _sha256(weights)},
    }
    with atomic_output_dir(folder, overwrite=overwrite) as tmp:
        (tmp / WEIGHTS_NAME).write_bytes(weights)
        (tmp / CONFIG_NAME).write_text(json.dumps(full, indent=2, sort_keys=False) + "\n")
    return Path(folder)


def read_model_config(folder: str | Path, kind: str) -> dict[str, Any]:
    """The config of a model folder, checked to be of `kind` and of a known format version."""
    folder = Path(folder)
    path = folder / CONFIG_NAME
    if not folder.is_dir():
        raise CTCError("model folder not found", folder)
    if not path.is_file():
        raise CTCError(f"not a model folder: {CONFIG_NAME} is missing", folder)
    try:
        config = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise CTCError(f"unreadable model config ({exc})", path) from exc
    if not isinstance(config, dict) or config.get("kind") != kind:
        found = config.get("kind") if isinstance(config, dict) else None
        raise CTCError(f"expected a model of kind {kind!r}, found {found!r}", path)
    if config.get("format_version") != FORMAT_VERSION:
        raise CTCError(
            f"model format version {config.get('format_version')!r} is not supported "
            f"(this gnntrack reads version {FORMAT_VERSION})",
            path,
        )
    return config


def load_model_folder(
    folder: str | Path, kind: str
) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Config and state dict of a model folder; the weights must match the recorded sha256."""
    folder = Path(folder)
    config = read_model_config(folder, kind)
    if "weights" not in config:
        raise CTCError(
            "weights is missing; allowed: an object with keys sha256, file", folder / CONFIG_NAME
        )
    entry = load_section(WeightsRecord, config["weights"], folder / CONFIG_NAME, "weights")
    path = folder / entry.file
    if not path.is_file():
        raise CTCError("weights file is missing", path)
    data = path.read_bytes()
    if entry.sha256 != _sha256(data):
        raise CTCError(
            "weights do not match the sha256 in config.json (corrupt or from another model)",
            path,
        )
    try:
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CTCError(f"cannot load weights ({exc})", path) from exc
    return config, state


def load_state_checked(module: torch.nn.Module, state: dict, folder: str | Path) -> None:
    """Load weights into `module`, naming the model folder when they do not fit it."""
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise CTCError(
            f"weights do not fit the architecture in {CONFIG_NAME} ({first})", folder
        ) from exc


def update_model_config(
    folder: str | Path, changes: dict[str, Any], training: dict[str, Any] | None = None
) -> Path:
    """Set top-level keys of `folder`'s config.json to `changes` and keys of its `training`
    record to `training` (atomically; the weights and every other key stay): how a
    calibration or a threshold search records its result and how it was reached."""
    path = Path(folder) / CONFIG_NAME
    config = json.loads(path.read_text())
    config.update(changes)
    if training:
        config.setdefault("training", {}).update(training)
    return atomic_file(path, lambda tmp: tmp.write_text(json.dumps(config, indent=2) + "\n"))
