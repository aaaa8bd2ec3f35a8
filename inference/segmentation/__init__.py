"""Segmentation of a sequence with a trained seg_code model, and its model config."""
