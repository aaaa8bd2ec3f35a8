"""Cells as the tracker sees them: region properties, pixel moments, crops, positions."""
