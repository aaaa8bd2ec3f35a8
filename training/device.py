"""Where training runs: the GPU when there is one, else the CPU."""

from __future__ import annotations

import torch


def training_device() -> torch.device:
    """CUDA device 0 when available (set CUDA_VISIBLE_DEVICES to choose), else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
