r"""What the heads did over training, for runs side by side.

  python -m benchmarks.diagnose \
      --runs=benchmarks/results/convergence/copy-seed2,benchmarks/results/convergence/copy-seed1 \
      --out=benchmarks/results/convergence/diagnosis_copy.png

reads each run's history.json (tasks.train records memtk.diagnostics at every
evaluation: gates, shifts, sharpening, attention entropy, errors with the
read vectors zeroed, gradient norms per part), plots them with
memtk.viz.plot_diagnostics and prints the last record of each run.
"""

import os
import sys

from absl import app
from absl import flags

from tasks import common

_RUNS = flags.DEFINE_list("runs", [], "Run directories of tasks.train.")
_OUT = flags.DEFINE_string("out", "diagnosis.png", "Where to write the PNG.")
_TITLE = flags.DEFINE_string("title", None, "Figure title.")
_LABELS = flags.DEFINE_list(
    "labels", [], "One legend label per --runs entry (default: the run "
    "directories' names).")


def main(argv):
  del argv
  runs = []
  for logdir in _RUNS.value:
    path = os.path.join(logdir, "history.json")
    if not os.path.exists(path):
      sys.exit(f"error: --runs entry {logdir!r} has no history.json")
    history = common.load_json(path)
    if not any("heads" in r for r in history):
      sys.exit(f"error: --runs entry {logdir!r} recorded no diagnostics")
    runs.append((os.path.basename(os.path.normpath(logdir)), history))
  if not runs:
    sys.exit("error: --runs names no run directory")
  if _LABELS.value:
    if len(_LABELS.value) != len(runs):
      sys.exit(f"error: --labels has {len(_LABELS.value)} entries for "
               f"{len(runs)} --runs")
    runs = [(label, history) for label, (_, history) in zip(_LABELS.value, runs)]
  for label, history in runs:
    last = [r for r in history if "heads" in r][-1]
    values = "  ".join(f"{k} {v:.3g}" for k, v in sorted(last["heads"].items()))
    print(f"{label} at step {last['step']}: {values}")
  from memtk import viz  # pylint: disable=g-import-not-at-top
  viz.plot_diagnostics(_OUT.value, runs, title=_TITLE.value)
  print(f"wrote {_OUT.value}")


if __name__ == "__main__":
  app.run(main)
