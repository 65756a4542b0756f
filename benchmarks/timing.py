"""What benchmarks.throughput measures, without its flags: the timed
training loop of one configuration, the straightforward reference model,
tasks.train's time to its first step and the ratios to the reference."""

import os
import subprocess
import sys
import time

REFERENCE = "reference"


def _model(method, config, task):
  """The compiled model of `method` with the recipe's settings."""
  from benchmarks import reference_ntm  # pylint: disable=g-import-not-at-top
  from tasks import common  # pylint: disable=g-import-not-at-top
  ntm = common.make_model(config, task)
  if method != REFERENCE:
    return ntm
  model = reference_ntm.ReferenceNTM.like(ntm)
  model.compile(steps_per_execution=config["steps_per_execution"])
  return model


def compiled_model(method, batch_size, steps_per_execution, steps):
  """(model, copy batches (x, y, mask) for `steps` steps, seconds of its first
  call): the compiled model of `method` with the recipe's settings, its
  train step compiled by fitting two calls' worth of the batches."""
  import keras  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  from tasks import common  # pylint: disable=g-import-not-at-top

  config = dict(common.DEFAULT_CONFIG, batch_size=batch_size,
                steps_per_execution=steps_per_execution,
                **common.METHODS["soft" if method == REFERENCE else method])
  # A hard method's steps as they run once its curriculum is over.
  config.update(soft_curriculum_hold=0, soft_curriculum_steps=0)
  task = common.make_task("copy")
  keras.utils.set_random_seed(0)
  model = _model(method, config, task)
  x, y, m = task.sample(np.random.default_rng(0), batch_size * steps)
  first = batch_size * steps_per_execution * 2
  start = time.perf_counter()
  model.fit(x[:first], y[:first], sample_weight=m[:first],
            batch_size=batch_size, verbose=0)  # compiles
  return model, (x, y, m), time.perf_counter() - start


def measure(batch_size, steps, steps_per_execution, repeats, method="soft"):
  """(median sequences/s of model.fit on copy batches, seconds of the first
  call less its steps at that rate); runs in this process."""
  model, (x, y, m), first_call = compiled_model(
      method, batch_size, steps_per_execution, steps)
  first = batch_size * steps_per_execution * 2
  rates = []
  for _ in range(repeats):
    start = time.perf_counter()
    model.fit(x, y, sample_weight=m, batch_size=batch_size, verbose=0,
              shuffle=False)
    rates.append(batch_size * steps / (time.perf_counter() - start))
  rate = sorted(rates)[len(rates) // 2]
  return rate, max(first_call - first / rate, 0.0)


def time_to_first_step(threads=2):
  """Seconds from starting `python -m tasks.train` (the default recipe, a
  fresh logdir) to its first progress line, after 10 training steps."""
  import tempfile  # pylint: disable=g-import-not-at-top
  env = dict(os.environ, TF_NUM_INTRAOP_THREADS=str(threads),
             TF_NUM_INTEROP_THREADS=str(threads))
  with tempfile.TemporaryDirectory() as logdir:
    start = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "tasks.train", f"--logdir={logdir}",
         "--log_every=1", "--max_steps=1000"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    try:
      for line in process.stdout:
        if line.startswith("step "):
          return time.perf_counter() - start
      raise RuntimeError("tasks.train ended without a progress line")
    finally:
      process.kill()
      process.wait()


def ratios_to_reference(results):
  """Each method's sequences/s over the reference's at the same batch size
  and threads (rows of `results` without a reference beside them give
  none)."""
  reference = {(r["batch_size"], r["threads"]): r["sequences_per_second"]
               for r in results if r["method"] == REFERENCE}
  return [{"method": r["method"], "batch_size": r["batch_size"],
           "threads": r["threads"],
           "ratio": r["sequences_per_second"]
                    / reference[(r["batch_size"], r["threads"])]}
          for r in results if r["method"] != REFERENCE
          and (r["batch_size"], r["threads"]) in reference]
