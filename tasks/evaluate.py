r"""Evaluates a trained run: bit errors per sequence on the training
distribution and on longer sequences, and attention heat maps.

  python -m tasks.evaluate --logdir=runs/copy
  python -m tasks.evaluate --logdir=runs/copy/model.keras   # a saved model

writes evaluation.json, heatmap.png (a sequence of the longest training
size) and heatmap_long.png (the longest generalisation size) to the run
directory, or to --out (the run's own evaluation stays as training left it). A hard-addressing run is measured with greedy choices
(argmax of each head's distribution; the heat maps show these) and again with
sampled choices.
"""

import os
import sys

from absl import app
from absl import flags
from absl import logging
from tasks import contract
from tasks import evaluation

# --- what to evaluate ---
_LOGDIR = flags.DEFINE_string(
    "logdir", "runs/copy", "Run directory written by tasks.train (its latest "
    "checkpoint), or a .keras file saved by model.save (results go beside it).")
_OUT = flags.DEFINE_string(
    "out", None, "Directory for evaluation.json and the heat maps (default: "
    "the run directory, or beside the .keras file).")
_TASK = flags.DEFINE_string(
    "task", None, "Task of a .keras model without a config.json beside it.")
_NUM_SEQUENCES = flags.DEFINE_integer(
    "num_sequences", 1000, "Fresh sequences per generalisation size.")
_TEST_SEQUENCES = flags.DEFINE_integer(
    "test_sequences", 10000, "Fresh test sequences of the training sizes.")
_MEMORY_SIZE = flags.DEFINE_integer(
    "memory_size", None, "Run the model with this many memory cells instead "
    "of its training N (the weights do not depend on N), for inputs longer "
    "than the training memory holds, e.g. --memory_size=1024 --sizes=200,500.")
_SIZES = flags.DEFINE_list(
    "sizes", None, "Generalisation sizes (copy lengths, recall item counts, "
    "...); default: the task's own (copy 20,40,80,120; recall 6,8,12).")


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)  # no per-checkpoint INFO lines
  try:
    for flag in (_NUM_SEQUENCES, _TEST_SEQUENCES):
      if flag.value < 1:
        raise ValueError(f"{flag.name} must be >= 1, got {flag.value}")
    if _MEMORY_SIZE.value is not None and _MEMORY_SIZE.value < 1:
      raise ValueError(f"memory_size must be >= 1, got {_MEMORY_SIZE.value}")
    sizes = None
    if _SIZES.value:
      try:
        sizes = [int(s) for s in _SIZES.value]
      except ValueError:
        raise ValueError(f"sizes must be ints, got {_SIZES.value}") from None
      if min(sizes) < 1:
        raise ValueError(f"sizes must be >= 1, got {_SIZES.value}")
    model, task, config, outdir = evaluation.load_run(_LOGDIR.value,
                                                      _TASK.value)
    if sizes and not contract.generalises(task):
      raise ValueError(f"--sizes: task {task.name!r} has no variant(size) "
                       "and generalisation_sizes")
    for size in sizes or ():
      task.variant(size)  # rejects sizes the task cannot take
    if _OUT.value:
      outdir = _OUT.value
      os.makedirs(outdir, exist_ok=True)
    evaluation.evaluate_run(model, task, config, outdir, _NUM_SEQUENCES.value,
                            sizes, test_sequences=_TEST_SEQUENCES.value,
                            memory_size=_MEMORY_SIZE.value)
  except (ValueError, TypeError) as e:
    sys.exit(f"error: {e}")


if __name__ == "__main__":
  app.run(main)
