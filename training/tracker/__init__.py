"""Training of the GNN edge classifier and choice of the solver costs (`gnntrack train-tracker`)."""

from training.tracker.fit_tracker import TrackerTrainConfig, train_tracker

__all__ = ["TrackerTrainConfig", "train_tracker"]
