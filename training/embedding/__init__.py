"""Metric learning of the cell appearance embedding (`gnntrack train-embedding`)."""

from training.embedding.fit_embedding import EmbeddingTrainConfig, train_embedding

__all__ = ["EmbeddingTrainConfig", "train_embedding"]
