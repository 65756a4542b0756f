r"""Training throughput: sequences per second of `model.fit` on the copy task.

  python -m benchmarks.throughput
  python -m benchmarks.throughput --methods=soft,reinforce,gumbel --threads=1

Times the XLA-compiled train step through plain `model.fit` (the path
tasks.train uses) for each method (soft addressing, hard with an estimator,
purely hard, `reference`: the straightforward NTM of
benchmarks/reference_ntm.py, plain autodiff over memtk.addressing and
memtk.memory, same sizes, same compiled train step, or `no_access`: the
same controller, interface and output layer with no memory access, the
floor under a step) and batch size, after a warm-up that compiles it, with
the data already in memory, and prints one line per configuration:
sequences/s, ms per step and the first call's time less its steps at the
measured rate (tracing and XLA compilation). Each batch size and thread
count runs in its own subprocess so thread settings take effect; within it
the methods are timed side by side, one fit of each per repeat in turn
(benchmarks.timing.measure), so that the machine's changes of pace fall on
all of them. With `reference` among the methods, every other method's speed
is also given as a ratio to the reference's at the same batch and threads,
measured in the same process. Then (unless --notime_to_first_step) it
times `tasks.train`, with its default flags, from its start to its first
progress line (Python and TensorFlow start-up, building the model,
compiling the train step, the first 10 steps).
"""

import json
import os
import subprocess
import sys

from absl import app
from absl import flags
from benchmarks import timing

# --- what to measure ---
_METHODS = flags.DEFINE_list(
    "methods", ["soft", "reference"], "A method of tasks.common.METHODS "
    "(hard ones timed as they train once any soft-to-hard curriculum is "
    "over: purely hard), or reference (the straightforward soft NTM).")
_BATCH_SIZES = flags.DEFINE_list("batch_sizes", ["32"], "Batch sizes.")
_THREADS = flags.DEFINE_list(
    "threads", ["1", "2"], "TensorFlow intra-op threads per configuration.")
_STEPS = flags.DEFINE_integer("steps", 300, "Timed train steps.")
_STEPS_PER_EXECUTION = flags.DEFINE_integer(
    "steps_per_execution", 10, "Train steps per compiled call.")
_REPEATS = flags.DEFINE_integer(
    "repeats", 3, "Timed repeats, each one fit of every method in turn; the "
    "median is kept.")
_JSON = flags.DEFINE_string("json", None, "Write the results here as JSON.")
_TIME_TO_FIRST_STEP = flags.DEFINE_bool(
    "time_to_first_step", True, "Also time tasks.train from its start to "
    "its first progress line (its default flags).")
_CHILD = flags.DEFINE_string("child", None, "Internal: batch size to time.")


def _time_together(batch_size, threads):
  """Every method at one batch size and thread count, in one subprocess;
  prints and returns a result row per method."""
  env = dict(os.environ, TF_NUM_INTRAOP_THREADS=str(threads),
             TF_NUM_INTEROP_THREADS=str(threads), TF_CPP_MIN_LOG_LEVEL="3")
  out = subprocess.run(
      [sys.executable, "-m", "benchmarks.throughput",
       f"--child={batch_size}", f"--methods={','.join(_METHODS.value)}",
       f"--steps={_STEPS.value}",
       f"--steps_per_execution={_STEPS_PER_EXECUTION.value}",
       f"--repeats={_REPEATS.value}"],
      capture_output=True, text=True, env=env, check=True)
  child = json.loads(out.stdout.strip().splitlines()[-1])
  rows = []
  for method in _METHODS.value:
    rate = child[method]["sequences_per_second"]
    first_call = child[method]["first_call_seconds"]
    rows.append({"method": method, "batch_size": batch_size,
                 "threads": threads, "sequences_per_second": rate,
                 "ms_per_step": 1000 * batch_size / rate,
                 "first_call_seconds": first_call})
    print(f"{method:>10} {batch_size:>6} {threads:>8} {rate:>9.0f} "
          f"{1000 * batch_size / rate:>9.1f} {first_call:>13.1f}", flush=True)
  return rows


def main(argv):
  del argv
  if _CHILD.value:
    measured = timing.measure(
        int(_CHILD.value), _STEPS.value, _STEPS_PER_EXECUTION.value,
        _REPEATS.value, _METHODS.value)
    print(json.dumps({method: {"sequences_per_second": rate,
                               "first_call_seconds": first_call}
                      for method, (rate, first_call) in measured.items()}))
    return
  try:
    batch_sizes = [int(b) for b in _BATCH_SIZES.value]
    threads = [int(t) for t in _THREADS.value]
    if min(batch_sizes + threads + [_STEPS.value, _REPEATS.value]) < 1:
      raise ValueError
  except ValueError:
    sys.exit(f"error: --batch_sizes {_BATCH_SIZES.value}, --threads "
             f"{_THREADS.value}, --steps {_STEPS.value} and --repeats "
             f"{_REPEATS.value} must be positive ints")
  if len(set(_METHODS.value)) != len(_METHODS.value):
    sys.exit(f"error: --methods {_METHODS.value} names a method twice")
  from tasks import common  # pylint: disable=g-import-not-at-top
  try:
    for method in _METHODS.value:
      if method not in timing.BENCHMARK_MODELS:
        common.check_method(method)
  except ValueError as e:
    sys.exit(f"error: {e}")
  results = []
  print("copy task (T = 41 padded steps), LSTM 100, N=128, W=20, "
        f"{_STEPS.value} steps x {_REPEATS.value} repeats, median")
  print(f"{'method':>10} {'batch':>6} {'threads':>8} {'seq/s':>9} "
        f"{'ms/step':>9} {'first call s':>13}")
  for batch_size in batch_sizes:
    for n in threads:
      results += _time_together(batch_size, n)
  report = {"results": results, "ratios": timing.ratios_to_reference(results)}
  for r in report["ratios"]:
    print(f"{r['method']} / reference at batch {r['batch_size']}, "
          f"{r['threads']} threads: {r['ratio']:.2f}x")
  if _TIME_TO_FIRST_STEP.value:
    report["time_to_first_step_seconds"] = timing.time_to_first_step()
    print("tasks.train, start to its first progress line (10 steps, its "
          f"defaults): {report['time_to_first_step_seconds']:.1f} s")
  if _JSON.value:
    with open(_JSON.value, "w") as f:
      json.dump(report, f, indent=2)


if __name__ == "__main__":
  app.run(main)
