"""Algorithmic tasks for memory models, and the training/evaluation CLI."""

import os

from tasks import startup

# The CLIs print their own progress; keep TensorFlow's start-up chatter out:
# its logged lines below warnings, and the notices it prints before its
# logging is set up (tasks.startup).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
startup.import_tensorflow()
