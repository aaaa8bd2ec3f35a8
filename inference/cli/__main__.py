"""`python -m inference.cli` runs `gnntrack` (for environments without the console script)."""

from inference.cli import main

main()
