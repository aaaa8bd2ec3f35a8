"""The division model: a logistic regression telling a mitosis from a segmentation error
by the `inference.cells.division_features` of a division (a model folder `division/`
beside `tracker/`, fitted by `gnntrack train-division`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from inference.cells.division_features import FEATURES
from inference.config import items, load_model_config, number, section, setting, text
from inference.errors import CTCError
from inference.models.folder import CONFIG_NAME, load_model_folder, load_state_checked

MODEL_KIND = "division"


@dataclass(frozen=True)
class DivisionNormalization:
    """The `normalization` section: per-feature mean and standard deviation of the training
    divisions, which the model's inputs are standardised with."""

    mean: list = setting(items(number()))
    std: list = setting(items(number(above=0)))


@dataclass(frozen=True)
class DivisionConfig:
    """A division folder's config.json (besides the record keys of `inference.config`)."""

    features: list = setting(items(text()))
    normalization: DivisionNormalization = section(DivisionNormalization, required=True)
    # a division scored below this probability of being a mitosis is undone
    threshold: float = setting(number(0, 1), 0.5)


class DivisionScorer(torch.nn.Module):
    """Logistic regression: standardised features -> logit of 'this is a mitosis'."""

    def __init__(self, features: int) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(features, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x).squeeze(-1)


@dataclass
class DivisionModel:
    """A fitted `DivisionScorer` with the normalisation and threshold it was chosen with."""

    scorer: DivisionScorer
    mean: np.ndarray
    std: np.ndarray
    threshold: float
    features: tuple[str, ...] = FEATURES  # which of `FEATURES` it reads, in this order

    @classmethod
    def from_folder(cls, folder: str | Path) -> DivisionModel:
        """Load a `division/` model folder; its features must be ones this code measures."""
        folder = Path(folder)
        raw, state = load_model_folder(folder, MODEL_KIND)
        source = folder / CONFIG_NAME
        config = load_model_config(DivisionConfig, raw, source)
        unknown = [name for name in config.features if name not in FEATURES]
        if unknown or not config.features:
            raise CTCError(
                f"the division model was fitted on features {config.features}, this code "
                f"measures {list(FEATURES)}: refit it (gnntrack train-division)",
                source,
            )
        n = len(config.features)
        norm = config.normalization
        if len(norm.mean) != n or len(norm.std) != n:
            raise CTCError(f"normalization needs {n} means and stds, one per feature", source)
        scorer = DivisionScorer(n)
        load_state_checked(scorer, state, folder)
        scorer.eval()
        mean, std = np.asarray(norm.mean, np.float32), np.asarray(norm.std, np.float32)
        return cls(scorer, mean, std, config.threshold, tuple(config.features))

    def probability(self, features: np.ndarray) -> np.ndarray:
        """P(mitosis) of each row of `features` (all of `FEATURES`, or one such vector)."""
        columns = [FEATURES.index(name) for name in self.features]
        x = np.atleast_2d(features).astype(np.float32)[:, columns]
        x = (x - self.mean) / self.std
        with torch.no_grad():
            logits = self.scorer(torch.from_numpy(x)).numpy()
        return 1.0 / (1.0 + np.exp(-logits.astype(np.float64)))

    def config(self) -> dict[str, Any]:
        """The config.json keys of this model (besides the record keys)."""
        return {
            "features": list(self.features),
            "normalization": {"mean": self.mean.tolist(), "std": self.std.tolist()},
            "threshold": self.threshold,
        }
