r"""Evaluates a trained run: bit errors per sequence on the training
distribution and on longer sequences, and attention heat maps.

  python -m tasks.evaluate --logdir=runs/copy
  python -m tasks.evaluate --logdir=runs/copy/model.keras   # a saved model

writes <logdir>/evaluation.json, <logdir>/heatmap.png (a sequence of the
longest training size) and <logdir>/heatmap_long.png (the longest
generalisation size). A hard-addressing run is measured with greedy choices
(argmax of each head's distribution; the heat maps show these) and again with
sampled choices.
"""

import sys

from absl import app
from absl import flags
from absl import logging
from tasks import evaluation

# --- what to evaluate ---
_LOGDIR = flags.DEFINE_string(
    "logdir", "runs/copy", "Run directory written by tasks.train (its latest "
    "checkpoint), or a .keras file saved by model.save (results go beside it).")
_TASK = flags.DEFINE_string(
    "task", None, "Task of a .keras model without a config.json beside it.")
_NUM_SEQUENCES = flags.DEFINE_integer(
    "num_sequences", 1000, "Fresh sequences per generalisation size.")
_TEST_SEQUENCES = flags.DEFINE_integer(
    "test_sequences", 10000, "Fresh test sequences of the training sizes.")
_SIZES = flags.DEFINE_list(
    "sizes", None, "Generalisation sizes (copy lengths or recall item counts); "
    "default: the task's own (copy 20,40,80,120; recall 6,8,12).")


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)  # no per-checkpoint INFO lines
  try:
    for flag in (_NUM_SEQUENCES, _TEST_SEQUENCES):
      if flag.value < 1:
        raise ValueError(f"{flag.name} must be >= 1, got {flag.value}")
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
    for size in sizes or ():
      task.variant(size)  # rejects sizes the task cannot take
  except (ValueError, TypeError) as e:
    sys.exit(f"error: {e}")
  evaluation.evaluate_run(model, task, config, outdir, _NUM_SEQUENCES.value,
                          sizes, test_sequences=_TEST_SEQUENCES.value)


if __name__ == "__main__":
  app.run(main)
