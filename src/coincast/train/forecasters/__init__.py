"""Forecaster implementations (baselines, gradient boosting, classifiers, torch nets)."""
