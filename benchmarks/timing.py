"""What benchmarks.throughput measures, without its flags: the timed
training loop of several configurations in one process, the straightforward
reference model and the no-access floor, tasks.train's time to its first
step and the ratios to the reference."""

import subprocess
import sys
import time

REFERENCE = "reference"
NO_ACCESS = "no_access"
# Models of benchmarks.reference_ntm by the name they are timed under, with
# the soft recipe's settings.
BENCHMARK_MODELS = {REFERENCE: "ReferenceNTM", NO_ACCESS: "NoAccessNTM"}


def _model(method, config, task):
  """The compiled model of `method` with the recipe's settings."""
  from benchmarks import reference_ntm  # pylint: disable=g-import-not-at-top
  from tasks import common  # pylint: disable=g-import-not-at-top
  ntm = common.make_model(config, task)
  if method not in BENCHMARK_MODELS:
    return ntm
  model = getattr(reference_ntm, BENCHMARK_MODELS[method]).like(ntm)
  # As tasks.train compiles memtk's NTM: no copy of the best weights.
  model.compile(steps_per_execution=config["steps_per_execution"],
                restore_best=False)
  return model


def _warm_up_sequences(batch_size, steps_per_execution):
  """Sequences of the first fit call, which compiles the train step: two
  compiled calls' worth."""
  return batch_size * steps_per_execution * 2


def compiled_model(method, batch_size, steps_per_execution, steps):
  """(model, copy batches (x, y, mask) for `steps` steps, seconds of its first
  call): the compiled model of `method` with the recipe's settings, its
  train step compiled by fitting two calls' worth of the batches."""
  import keras  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  from tasks import common  # pylint: disable=g-import-not-at-top

  recipe = "soft" if method in BENCHMARK_MODELS else method
  config = dict(common.DEFAULT_CONFIG, batch_size=batch_size,
                steps_per_execution=steps_per_execution,
                **common.METHODS[recipe])
  # A hard method's steps as they run once its curriculum is over.
  config.update(soft_curriculum_hold=0, soft_curriculum_steps=0)
  task = common.make_task("copy")
  keras.utils.set_random_seed(0)
  model = _model(method, config, task)
  x, y, m = task.sample(np.random.default_rng(0), batch_size * steps)
  first = _warm_up_sequences(batch_size, steps_per_execution)
  start = time.perf_counter()
  model.fit(x[:first], y[:first], sample_weight=m[:first],
            batch_size=batch_size, verbose=0)  # compiles
  return model, (x, y, m), time.perf_counter() - start


def measure(batch_size, steps, steps_per_execution, repeats, methods):
  """{method: (median sequences/s of model.fit on copy batches, seconds of
  its first call less its steps at that rate)} for each of `methods`, timed
  in this process side by side: every model is compiled first, then each
  repeat fits every model once, in an order reversed from one repeat to the
  next, so that a change in the machine's speed during the run falls on all
  of them alike."""
  runs = {}
  for method in methods:
    runs[method] = compiled_model(method, batch_size, steps_per_execution,
                                  steps)
  first = _warm_up_sequences(batch_size, steps_per_execution)
  rates = {method: [] for method in methods}
  for repeat in range(repeats):
    for method in (methods if repeat % 2 == 0 else methods[::-1]):
      model, (x, y, m), _ = runs[method]
      start = time.perf_counter()
      model.fit(x, y, sample_weight=m, batch_size=batch_size, verbose=0,
                shuffle=False)
      rates[method].append(batch_size * steps / (time.perf_counter() - start))
  result = {}
  for method in methods:
    rate = sorted(rates[method])[len(rates[method]) // 2]
    result[method] = (rate, max(runs[method][2] - first / rate, 0.0))
  return result


def time_to_first_step():
  """Seconds from starting `python -m tasks.train` (the default recipe and
  threads, a fresh logdir) to its first progress line, after 10 training
  steps."""
  import tempfile  # pylint: disable=g-import-not-at-top
  with tempfile.TemporaryDirectory() as logdir:
    start = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "tasks.train", f"--logdir={logdir}",
         "--log_every=1", "--max_steps=1000"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
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
