"""Algorithmic tasks for memory models, and the training/evaluation CLI."""

import os

# The CLIs print their own progress; keep TensorFlow's start-up chatter out.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
