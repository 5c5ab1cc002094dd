"""gc.train: TF1's optimizers (written in the next change)."""
