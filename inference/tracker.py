"""The trained tracker: embedding model, graph settings, GNN and solver costs, from one folder.

A dataset's models live in `parameters/<Dataset>/`: `embedding/` (the appearance ResNet) and
`tracker/` (the GNN, whose config.json holds the graph radii, normalisation statistics,
window, solver costs and the sha256 of the embedding it was trained with, so a tracker is
never run with another embedding than its own).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from inference.embedding import Embedder
from inference.errors import CTCError
from inference.features import CompactLabels, compact_labels, frame_features
from inference.gnn import EdgeMPNN
from inference.graph import FrameNodes, GraphSpec, build_window
from inference.model_folder import load_model_folder, load_state_checked, read_model_config
from inference.solve import SolverParams

MODEL_KIND = "tracker"


@dataclass
class Tracker:
    """Everything needed to turn label masks into tracks the way the model was trained."""

    spec: GraphSpec
    gnn: EdgeMPNN
    embedder: Embedder | None
    solver: SolverParams
    window: int = 8
    stride: int = 6

    def __post_init__(self) -> None:
        if not 2 <= self.window or not 1 <= self.stride <= self.window - 2:
            raise ValueError(
                f"need window >= 3 and 1 <= stride <= window - 2, got {self.window}, {self.stride}"
            )

    @property
    def ndim(self) -> int:
        return self.spec.ndim

    @classmethod
    def from_folder(cls, folder: str | Path) -> Tracker:
        """Load `parameters/<Dataset>` (with tracker/ and embedding/) or a tracker folder."""
        folder = Path(folder)
        tracker_dir = folder / "tracker" if (folder / "tracker").is_dir() else folder
        config, state = load_model_folder(tracker_dir, MODEL_KIND)
        try:
            spec = GraphSpec.from_dict(config["graph"])
            gnn = EdgeMPNN.from_arch(config["architecture"])
            solver = SolverParams.from_dict(config.get("solver", {}))
            window = config.get("window", {})
            wanted = config.get("embedding")
        except (KeyError, TypeError, ValueError) as exc:
            raise CTCError(f"invalid tracker config ({exc})", tracker_dir) from exc
        load_state_checked(gnn, state, tracker_dir)
        gnn.eval()
        embedder = None
        if wanted:
            embedding_dir = tracker_dir.parent / "embedding"
            found = read_model_config(embedding_dir, "embedding").get("weights", {})
            if found.get("sha256") != wanted.get("sha256"):
                raise CTCError(
                    "this embedding is not the one the tracker was trained with "
                    "(sha256 differs from the tracker's config.json)",
                    embedding_dir,
                )
            embedder = Embedder.from_folder(embedding_dir)
        return cls(
            spec, gnn, embedder, solver, int(window.get("frames", 8)), int(window.get("stride", 4))
        )

    def config(self) -> dict[str, Any]:
        """Architecture, graph, solver and window settings, as stored in config.json."""
        return {
            "architecture": dict(self.gnn.arch),
            "graph": self.spec.to_dict(),
            "solver": self.solver.to_dict(),
            "window": {"frames": self.window, "stride": self.stride},
            "embedding": {"sha256": self.embedder.sha256} if self.embedder else None,
        }

    def check_ndim(self, ndim: int, where: str | Path) -> None:
        """A CTCError when the frames are not of the dimension the model was trained on."""
        if ndim != self.ndim:
            raise CTCError(f"the tracker model is {self.ndim}D but the frames are {ndim}D", where)

    def nodes(
        self, image: np.ndarray, mask: np.ndarray, frame: int
    ) -> tuple[FrameNodes, CompactLabels]:
        """Features and appearance vectors of the cells of one frame."""
        compact = compact_labels(mask)
        table = frame_features(mask, image, frame, compact)
        if self.embedder is not None:
            emb = self.embedder.embed(image, compact, table)
        else:
            emb = np.zeros((len(table), 0), np.float32)
        return FrameNodes(frame, table, emb), compact

    @torch.no_grad()
    def score(self, frames: list[FrameNodes]) -> tuple[np.ndarray, np.ndarray]:
        """Edges (E, 4: source frame, source row, gap, target row) of a window, and logits."""
        graph = build_window(frames, self.spec)
        if graph.edges.shape[0] == 0:
            return graph.edges, np.zeros(0)
        device = next(self.gnn.parameters()).device
        tensors = (graph.x, graph.emb, graph.edge_index, graph.edge_attr)
        logits = self.gnn(*(t.to(device) for t in tensors))
        return graph.edges, logits.cpu().numpy().astype(np.float64)
