"""Training: the run's config, the fit loop, checkpoints and resume, runs on disk, committees, TTA."""
