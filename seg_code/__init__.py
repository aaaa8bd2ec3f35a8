"""Instance segmentation of microscopy frames (works on arrays, knows no files)."""
