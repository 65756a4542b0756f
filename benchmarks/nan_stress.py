r"""Hostile training: does anything go NaN?

  python -m benchmarks.nan_stress --out=benchmarks/results/nan_stress

Trains the soft NTM on copy through tasks.train from all-zero memory (every
cosine starts at 0/0, held finite only by the eps in the norms) at ten times
the recipe's learning rate, for --steps steps with no early stop, and reports
whether the loss, the weights or any evaluation went non-finite. tasks.train
itself stops at the first non-finite loss and names the variables that went
bad; this script reads its exit status and history. Writes <out>/result.json
and the run's directory <out>/run.
"""

import json
import math
import os
import subprocess
import sys
import time

from absl import app
from absl import flags

from tasks import common

_STEPS = flags.DEFINE_integer("steps", 2000, "Training steps.")
_LEARNING_RATE = flags.DEFINE_float(
    "learning_rate", 1e-2, "Adam step size (the recipe's is 1e-3).")
_MEMORY_INIT = flags.DEFINE_string(
    "memory_init", "zeros", "Memory initialisation of the stressed model.")
_EXTRA_FLAGS = flags.DEFINE_list(
    "train_flags", [], "Further tasks.train flags, e.g. --train_flags="
    "--addressing=hard.")
_OUT = flags.DEFINE_string(
    "out", "benchmarks/results/nan_stress", "Output directory.")


def main(argv):
  del argv
  if _STEPS.value < 200 or _STEPS.value % 200:
    sys.exit(f"error: --steps must be a positive multiple of 200, got "
             f"{_STEPS.value}")
  logdir = os.path.join(_OUT.value, "run")
  os.makedirs(_OUT.value, exist_ok=True)
  command = [sys.executable, "-m", "tasks.train", f"--logdir={logdir}",
             f"--max_steps={_STEPS.value}", "--max_minutes=0",
             f"--learning_rate={_LEARNING_RATE.value}",
             f"--memory_init={_MEMORY_INIT.value}",
             "--target_bits=1e-12",  # never stop early: run every step
             "--final_eval=false"] + _EXTRA_FLAGS.value
  print("running", " ".join(command[1:]), flush=True)
  start = time.time()
  process = subprocess.run(command, capture_output=True, text=True)
  with open(os.path.join(_OUT.value, "train.log"), "w") as f:
    f.write(process.stdout + process.stderr)
  history_path = os.path.join(logdir, "history.json")
  history = common.load_json(history_path) if os.path.exists(history_path) else []
  finite = all(math.isfinite(r["loss"]) and math.isfinite(r["bits_per_sequence"])
               for r in history)
  errors = [line for line in process.stderr.splitlines()
            if line.startswith("error:")]
  result = {
      "command": "python -m benchmarks.nan_stress " + " ".join(sys.argv[1:]),
      "steps_requested": _STEPS.value,
      "steps_run": history[-1]["step"] if history else 0,
      "learning_rate": _LEARNING_RATE.value,
      "memory_init": _MEMORY_INIT.value,
      "exit_code": process.returncode,
      "error": errors[-1] if errors else None,
      "all_finite": finite and process.returncode == 0,
      "final_loss": history[-1]["loss"] if history else None,
      "final_bits_per_sequence": (history[-1]["bits_per_sequence"]
                                  if history else None),
      "seconds": time.time() - start,
  }
  common.save_json(os.path.join(_OUT.value, "result.json"), result)
  print(json.dumps(result, indent=2))
  if not result["all_finite"]:
    sys.exit(1)


if __name__ == "__main__":
  app.run(main)
