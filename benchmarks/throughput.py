r"""Training throughput: sequences per second of `model.fit` on the copy task.

  python -m benchmarks.throughput
  python -m benchmarks.throughput --methods=soft,reinforce,gumbel --threads=1

Times the XLA-compiled train step through plain `model.fit` (the path
tasks.train uses) for each method (soft addressing, or hard with an
estimator, purely hard) and batch size, after a warm-up that compiles it, with
the data already in memory, and prints one line per configuration. Each
configuration runs in its own subprocess so thread settings take effect.
"""

import json
import os
import subprocess
import sys
import time

from absl import app
from absl import flags

# --- what to measure ---
_METHODS = flags.DEFINE_list(
    "methods", ["soft"], "soft, reinforce or gumbel (hard addressing with "
    "that estimator).")
_BATCH_SIZES = flags.DEFINE_list("batch_sizes", ["32"], "Batch sizes.")
_THREADS = flags.DEFINE_list(
    "threads", ["1", "2"], "TensorFlow intra-op threads per configuration.")
_STEPS = flags.DEFINE_integer("steps", 300, "Timed train steps.")
_STEPS_PER_EXECUTION = flags.DEFINE_integer(
    "steps_per_execution", 10, "Train steps per compiled call.")
_REPEATS = flags.DEFINE_integer("repeats", 3, "Timed repeats; the median is kept.")
_JSON = flags.DEFINE_string("json", None, "Write the results here as JSON.")
_CHILD = flags.DEFINE_string("child", None, "Internal: batch size to time.")
_CHILD_METHOD = flags.DEFINE_string("child_method", "soft", "Internal.")


def measure(batch_size, steps, steps_per_execution, repeats, method="soft"):
  """Median sequences/s of model.fit on copy batches (runs in this process)."""
  import keras  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  from tasks import common  # pylint: disable=g-import-not-at-top

  config = dict(common.DEFAULT_CONFIG, batch_size=batch_size,
                steps_per_execution=steps_per_execution,
                **common.METHODS[method])
  task = common.make_task("copy")
  keras.utils.set_random_seed(0)
  model = common.make_model(config, task)
  x, y, m = task.sample(np.random.default_rng(0), batch_size * steps)
  model.fit(x[:batch_size * steps_per_execution * 2],
            y[:batch_size * steps_per_execution * 2],
            sample_weight=m[:batch_size * steps_per_execution * 2],
            batch_size=batch_size, verbose=0)  # compiles
  rates = []
  for _ in range(repeats):
    start = time.perf_counter()
    model.fit(x, y, sample_weight=m, batch_size=batch_size, verbose=0,
              shuffle=False)
    rates.append(batch_size * steps / (time.perf_counter() - start))
  return sorted(rates)[len(rates) // 2]


def main(argv):
  del argv
  if _CHILD.value:
    rate = measure(int(_CHILD.value), _STEPS.value, _STEPS_PER_EXECUTION.value,
                   _REPEATS.value, _CHILD_METHOD.value)
    print(json.dumps({"sequences_per_second": rate}))
    return
  try:
    batch_sizes = [int(b) for b in _BATCH_SIZES.value]
    threads = [int(t) for t in _THREADS.value]
    if min(batch_sizes) < 1 or min(threads) < 1 or _STEPS.value < 1:
      raise ValueError
  except ValueError:
    sys.exit(f"error: --batch_sizes {_BATCH_SIZES.value}, --threads "
             f"{_THREADS.value} and --steps {_STEPS.value} must be positive ints")
  from tasks import common  # pylint: disable=g-import-not-at-top
  try:
    for method in _METHODS.value:
      common.check_method(method)
  except ValueError as e:
    sys.exit(f"error: {e}")
  results = []
  print("copy task (T = 41 padded steps), LSTM 100, N=128, W=20, "
        f"{_STEPS.value} steps x {_REPEATS.value} repeats, median")
  print(f"{'method':>10} {'batch':>6} {'threads':>8} {'seq/s':>9} "
        f"{'ms/step':>9}")
  configurations = [(m, b, n) for m in _METHODS.value for b in batch_sizes
                    for n in threads]
  for method, batch_size, n in configurations:
    env = dict(os.environ, TF_NUM_INTRAOP_THREADS=str(n),
               TF_NUM_INTEROP_THREADS=str(n), TF_CPP_MIN_LOG_LEVEL="3")
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.throughput",
         f"--child={batch_size}", f"--child_method={method}",
         f"--steps={_STEPS.value}",
         f"--steps_per_execution={_STEPS_PER_EXECUTION.value}",
         f"--repeats={_REPEATS.value}"],
        capture_output=True, text=True, env=env, check=True)
    rate = json.loads(out.stdout.strip().splitlines()[-1])["sequences_per_second"]
    results.append({"method": method, "batch_size": batch_size,
                    "threads": n,
                    "sequences_per_second": rate,
                    "ms_per_step": 1000 * batch_size / rate})
    print(f"{method:>10} {batch_size:>6} {n:>8} {rate:>9.0f} "
          f"{1000 * batch_size / rate:>9.1f}", flush=True)
  if _JSON.value:
    with open(_JSON.value, "w") as f:
      json.dump(results, f, indent=2)


if __name__ == "__main__":
  app.run(main)
