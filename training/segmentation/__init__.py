"""Training of the `seg_code` U-Net from CTC datasets with gold (GT) or silver (ST) masks."""
