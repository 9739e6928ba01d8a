"""Training: the Trainer scaffold every task's run_fn uses, the Tuner, progress."""
