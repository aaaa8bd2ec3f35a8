"""Linking: candidate graph, solver, lineage, the streaming tracker and its edge scores."""
