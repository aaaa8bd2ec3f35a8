"""The trained tracker: embedding model, graph settings, GNN and solver costs, from one folder.

A dataset's models live in `parameters/<Dataset>/`: `embedding/` (the appearance ResNet) and
`tracker/` (the GNN, whose config.json holds the graph radii, normalisation statistics,
window, solver costs and the sha256 of the embedding it was trained with, so a tracker is
never run with another embedding than its own).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from inference.cells.features import CompactLabels, compact_labels, frame_features
from inference.config import (
    ConfigValueError,
    integer,
    load_model_config,
    mapping,
    section,
    setting,
    text,
)
from inference.errors import CTCError
from inference.models.division import DivisionModel
from inference.models.embedding import Embedder
from inference.models.folder import (
    CONFIG_NAME,
    load_model_folder,
    load_state_checked,
    read_model_config,
)
from inference.models.gnn import EdgeMPNN
from inference.tracking.graph import FrameNodes, GraphSpec, build_window
from inference.tracking.solve import SolverParams

MODEL_KIND = "tracker"


@dataclass(frozen=True)
class WindowParams:
    """The `window` section: the GNN scores windows of `frames` frames, one every `stride`
    (consecutive windows overlap by `frames - stride` >= 2 frames)."""

    frames: int = setting(integer(3), 8)
    stride: int = setting(integer(1), 6)

    def __post_init__(self) -> None:
        if self.stride > self.frames - 2:
            allowed = f"an integer between 1 and frames - 2 = {self.frames - 2}"
            raise ConfigValueError("stride", self.stride, allowed)


@dataclass(frozen=True)
class GNNArchitecture:
    """The `architecture` section: the sizes of the EdgeMPNN (all recorded by training)."""

    node_features: int = setting(integer(1))
    edge_features: int = setting(integer(1))
    embedding_dim: int = setting(integer(0))
    node_hidden: int = setting(integer(1))
    edge_hidden: int = setting(integer(1))
    blocks: int = setting(integer(1))


@dataclass(frozen=True)
class EmbeddingReference:
    """The `embedding` section: the sha256 of the embedding weights the GNN was trained with."""

    sha256: str = setting(text())


@dataclass(frozen=True)
class TrackerConfig:
    """A tracker folder's config.json (besides the record keys of `inference.config`)."""

    architecture: GNNArchitecture = section(GNNArchitecture, required=True)
    graph: dict = setting(mapping())  # GraphSpec.from_dict checks it
    solver: SolverParams = section(SolverParams)
    window: WindowParams = section(WindowParams)
    embedding: EmbeddingReference | None = section(EmbeddingReference, nullable=True)


@dataclass
class Tracker:
    """Everything needed to turn label masks into tracks the way the model was trained."""

    spec: GraphSpec
    gnn: EdgeMPNN
    embedder: Embedder | None
    solver: SolverParams
    window: int = WindowParams.frames
    stride: int = WindowParams.stride
    division: DivisionModel | None = None  # a `division/` folder beside `tracker/`, if any

    def __post_init__(self) -> None:
        try:
            WindowParams(self.window, self.stride)
        except ConfigValueError as exc:
            raise ValueError(f"window of {self.window} frames: {exc}") from None

    @property
    def ndim(self) -> int:
        return self.spec.ndim

    @classmethod
    def from_folder(cls, folder: str | Path) -> Tracker:
        """Load `parameters/<Dataset>` (with tracker/ and embedding/, and division/ where
        there is one) or a tracker folder."""
        folder = Path(folder)
        tracker_dir = folder / "tracker" if (folder / "tracker").is_dir() else folder
        raw, state = load_model_folder(tracker_dir, MODEL_KIND)
        source = tracker_dir / CONFIG_NAME
        config = load_model_config(TrackerConfig, raw, source)
        spec = GraphSpec.from_dict(config.graph, source)
        gnn = EdgeMPNN(**asdict(config.architecture))
        load_state_checked(gnn, state, tracker_dir)
        gnn.eval()
        embedder = None
        if config.embedding is not None:
            embedding_dir = tracker_dir.parent / "embedding"
            found = read_model_config(embedding_dir, "embedding").get("weights", {})
            if found.get("sha256") != config.embedding.sha256:
                raise CTCError(
                    "this embedding is not the one the tracker was trained with "
                    "(sha256 differs from the tracker's config.json)",
                    embedding_dir,
                )
            embedder = Embedder.from_folder(embedding_dir)
        window = config.window
        division_dir = tracker_dir.parent / "division"
        division = DivisionModel.from_folder(division_dir) if division_dir.is_dir() else None
        return cls(spec, gnn, embedder, config.solver, window.frames, window.stride, division)

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
        self,
        image: np.ndarray,
        mask: np.ndarray,
        frame: int,
        value_range: tuple[float, float] | None = None,
    ) -> tuple[FrameNodes, CompactLabels]:
        """Features and appearance vectors of the cells of one frame (`value_range`: the
        frame's cell intensity range, where `mask` holds only some of its cells)."""
        compact = compact_labels(mask)
        table = frame_features(mask, image, frame, compact)
        if self.embedder is not None:
            emb = self.embedder.embed(image, compact, table, value_range)
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
