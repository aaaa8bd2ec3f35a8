"""GNN cell tracking pipeline: CTC I/O, features, graph, GNN, solver, CTC output."""

__version__ = "0.1.0"
