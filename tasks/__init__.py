"""Algorithmic tasks for memory models, and the training/evaluation CLI."""
