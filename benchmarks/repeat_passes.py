r"""Where a trained repeat-copy model's bit errors lie: per pass over the
stored sequence, and on the end marker, at given lengths and repeat counts.

  python -m benchmarks.repeat_passes --runs=runs/repeat_copy \
      --lengths=10,20 --repeats=1,5,10,20
  python -m benchmarks.repeat_passes --runs=runs/repeat_copy \
      --lengths=20,40 --repeats=10 --memory_size=1024

For every run directory (written by tasks.train on --task=repeat_copy) and
every (length, repeat count) it tests --sequences fresh sequences of that
one length and count and prints the bit errors per sequence, the data bit
errors of each pass (chance is 4 per vector: 8 bits, half wrong), and the
end marker's errors (missed or early). The repeat count keeps the training
normalisation, so counts past the training range are inputs the model has
never seen (the paper's Figure 11). --memory_size runs the model with
another number of cells (its weights do not depend on N).
"""

import sys

from absl import app
from absl import flags
import numpy as np

from tasks import evaluation

_RUNS = flags.DEFINE_list("runs", [], "Run directories of repeat_copy runs.")
_LENGTHS = flags.DEFINE_list("lengths", ["10", "20"], "Sequence lengths.")
_REPEATS = flags.DEFINE_list("repeats", ["1", "5", "10"], "Repeat counts.")
_SEQUENCES = flags.DEFINE_integer("sequences", 200, "Fresh sequences per "
                                  "(length, repeat count).")
_TEST_SEED = flags.DEFINE_integer("test_seed", 12345, "Seeds the sequences.")
_MEMORY_SIZE = flags.DEFINE_integer(
    "memory_size", None, "Run the model with this many memory cells.")


def _ints(flag):
  try:
    values = [int(v) for v in flag.value]
  except ValueError:
    raise ValueError(f"--{flag.name} must be ints, got {flag.value}") from None
  if not values or min(values) < 1:
    raise ValueError(f"--{flag.name} must be ints >= 1, got {flag.value}")
  return values


def main(argv):
  del argv
  try:
    if not _RUNS.value:
      raise ValueError("--runs: give at least one run directory")
    if _SEQUENCES.value < 1:
      raise ValueError(f"--sequences must be >= 1, got {_SEQUENCES.value}")
    if _MEMORY_SIZE.value is not None and _MEMORY_SIZE.value < 1:
      raise ValueError(
          f"--memory_size must be >= 1, got {_MEMORY_SIZE.value}")
    lengths, counts = _ints(_LENGTHS), _ints(_REPEATS)
    for run in _RUNS.value:
      model, task, _, _ = evaluation.load_run(run)
      if not hasattr(task, "max_repeats"):
        raise ValueError(f"{run!r} is a {task.name} run, not repeat_copy")
      if _MEMORY_SIZE.value:
        if not hasattr(model, "with_memory_size"):
          raise ValueError(f"--memory_size: {run!r} has no external memory")
        model = model.with_memory_size(_MEMORY_SIZE.value)
      print(f"{run}  (N = {model.cell.memory_size})")
      for length in lengths:
        for repeats in counts:
          total, passes, end = evaluation.repeat_pass_errors(
              model, task, length, repeats, _SEQUENCES.value, _TEST_SEED.value)
          print(f"  length {length:3d}, {repeats:2d} repeats: {total:8.2f} "
                f"bit errors/seq; per pass "
                f"[{' '.join(f'{e:.1f}' for e in passes)}]; "
                f"end marker {end:.2f}")
  except (ValueError, TypeError) as e:
    sys.exit(f"error: {e}")


if __name__ == "__main__":
  app.run(main)
