"""Commands that plug into `gnntrack` (training, simulation)."""
