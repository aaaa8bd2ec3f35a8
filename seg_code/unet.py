"""A U-Net for 2D and 3D frames, one code path: the dimensionality only picks the layers.

Outputs four maps per pixel: logits of background / cell / cell-edge and a cell-centre
logit, as the published CTC entry predicted (see shared/method.md). The previous frames
enter as extra input channels (temporal context in place of the recurrent U-Net).
"""

from __future__ import annotations

import torch
from torch import nn

#: Output channels: 3 class logits (background, cell, edge) then the centre logit.
N_OUTPUTS = 4


def _layers(ndim: int) -> tuple[type[nn.Module], type[nn.Module], type[nn.Module]]:
    if ndim == 2:
        return nn.Conv2d, nn.BatchNorm2d, nn.ConvTranspose2d
    if ndim == 3:
        return nn.Conv3d, nn.BatchNorm3d, nn.ConvTranspose3d
    raise ValueError(f"ndim must be 2 or 3, got {ndim}")


class _DoubleConv(nn.Sequential):
    def __init__(self, ndim: int, c_in: int, c_out: int) -> None:
        conv, norm, _ = _layers(ndim)
        super().__init__(
            conv(c_in, c_out, 3, padding=1, bias=False),
            norm(c_out),
            nn.ReLU(inplace=True),
            conv(c_out, c_out, 3, padding=1, bias=False),
            norm(c_out),
            nn.ReLU(inplace=True),
        )


class UNet(nn.Module):
    """U-Net with `depth` poolings; `pool_z[i]` says whether level i also pools z (3D only).

    Anisotropic 3D stacks (few thick z slices) pool only in YX at the first levels.
    """

    def __init__(
        self,
        ndim: int = 2,
        in_channels: int = 1,
        base_channels: int = 16,
        depth: int = 3,
        pool_z: tuple[bool, ...] | None = None,
    ) -> None:
        super().__init__()
        conv, _, up = _layers(ndim)
        self.ndim, self.depth = ndim, depth
        pool_z = tuple(pool_z) if pool_z is not None else (True,) * depth
        if len(pool_z) != depth:
            raise ValueError(f"pool_z needs {depth} entries, got {len(pool_z)}")
        self.factors = [(2, 2) if ndim == 2 else ((2 if pz else 1), 2, 2) for pz in pool_z]
        widths = [base_channels * 2**i for i in range(depth + 1)]
        self.down = nn.ModuleList([_DoubleConv(ndim, in_channels, widths[0])])
        self.down.extend(_DoubleConv(ndim, widths[i], widths[i + 1]) for i in range(depth))
        self.up = nn.ModuleList(
            up(widths[i + 1], widths[i], self.factors[i], stride=self.factors[i])
            for i in reversed(range(depth))
        )
        self.merge = nn.ModuleList(
            _DoubleConv(ndim, 2 * widths[i], widths[i]) for i in reversed(range(depth))
        )
        self.head = conv(widths[0], N_OUTPUTS, 1)
        pool = nn.functional.max_pool2d if ndim == 2 else nn.functional.max_pool3d
        self._pool = pool

    @property
    def divisor(self) -> tuple[int, ...]:
        """Each spatial size of the input must be a multiple of this (see `pad_to_divisor`)."""
        total = [1] * self.ndim
        for factor in self.factors:
            total = [a * b for a, b in zip(total, factor, strict=True)]
        return tuple(total)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for level, block in enumerate(self.down):
            x = block(x)
            if level < self.depth:
                skips.append(x)
                x = self._pool(x, self.factors[level])
        for up, merge in zip(self.up, self.merge, strict=True):
            x = up(x)
            x = merge(torch.cat([skips.pop(), x], dim=1))
        return self.head(x)
