"""Hyperparameter search with Optuna: the space, the study, its storage, results, plots, report."""
