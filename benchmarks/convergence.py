r"""How reliably and how fast the NTM learns: one training run per task,
method and seed, each through the training CLI, summarised in one table.

  python -m benchmarks.convergence --out=benchmarks/results/convergence
  python -m benchmarks.convergence --methods=soft,reinforce,gumbel \
      --out=benchmarks/results/soft_vs_hard

runs `python -m tasks.train` for every task x method x seed (--parallel at a
time), then writes <out>/convergence.json, <out>/convergence.md (steps and
seconds to < 1 and < 0.1 bit errors per sequence, final errors on 1,000 fresh
sequences, errors on longer sequences) and <out>/learning_curves_<task>.png
(every run's curve, coloured by method). A method is soft addressing, hard
addressing with one estimator (hard runs are evaluated with greedy choices)
or sparse addressing with K = 8 ('sparse') or K = 2 ('sparse_k2'; other K
through --method_flags=sparse:--sparse_k=4); tasks.common.METHODS lists them.
Runs already in <out> resume instead of restarting, and finished ones (with
an evaluation.json) are summarised as they are.
"""

import os
import subprocess
import sys
import time

from absl import app
from absl import flags


from benchmarks.convergence_table import fmt
from benchmarks.convergence_table import markdown
from benchmarks.convergence_table import run_dir
from benchmarks.convergence_table import summarise
from tasks import common

# --- what to run ---
_TASKS = flags.DEFINE_list(
    "tasks", ["copy", "associative_recall"], "Tasks: built-in names "
    f"({', '.join(sorted(common.TASKS))}) or package.module:factory paths.")
_SEEDS = flags.DEFINE_list("seeds", [str(s) for s in range(10)], "Seeds.")
_MAX_SEEDS = flags.DEFINE_list(
    "max_seeds", [], "Run only the first k of --seeds for a task, as "
    "task:k (e.g. associative_recall:3).")
_MAX_STEPS = flags.DEFINE_list(
    "max_steps", ["copy:8000", "associative_recall:10000"],
    "Step budget per task, as task:steps.")
_MAX_MINUTES = flags.DEFINE_float(
    "max_minutes", 6.0, "Per-run time limit in minutes, as tasks.train's "
    "default (0: none).")
_EXTRA_FLAGS = flags.DEFINE_list(
    "train_flags", [], "Further tasks.train flags for every run, e.g. "
    "--train_flags=--learning_rate=3e-4.")
_METHODS = flags.DEFINE_list(
    "methods", ["soft"], "Methods to compare: soft, reinforce, gumbel (hard "
    "addressing with that estimator and the soft-to-hard curriculum of "
    "tasks.common.SOFT_TO_HARD), reinforce_written (the same with the "
    "'written' content index), reinforce_scratch (REINFORCE with no soft "
    "batch), sparse (K = 8), sparse_k2 (K = 2), sparse_written and "
    "sparse_hash (K = 8, content lookups through that memtk.content_index), "
    "lstm (the LSTM baseline, no external memory).")
_METHOD_SEEDS = flags.DEFINE_list(
    "method_seeds", [], "Run only the first k seeds (of those of each task) "
    "for a method, as method:k (e.g. gumbel:2).")
_METHOD_FLAGS = flags.DEFINE_list(
    "method_flags", [], "tasks.train flags for one method's runs, as "
    "method:--flag=value, e.g. reinforce:--soft_curriculum_steps=8000.")

# --- how to run it ---
_PARALLEL = flags.DEFINE_integer(
    "parallel", 2, "Runs at once; each gets one thread per op when > 1.")
_OUT = flags.DEFINE_string(
    "out", "benchmarks/results/convergence", "Output directory.")


def method_flags(methods, entries):
  """{method: tasks.train flags} from --methods and --method_flags."""
  flags_of = {}
  for method in methods:
    common.check_method(method)
    flags_of[method] = [f"--{key}={value}"
                        for key, value in common.METHODS[method].items()]
  for entry in entries:
    method, _, flag = entry.partition(":")
    if method not in flags_of or not flag.startswith("--"):
      raise ValueError(f"--method_flags entries must be method:--flag=value "
                       f"for a method in --methods, got {entry!r}")
    flags_of[method].append(flag)
  return flags_of


def _plan():
  """(budgets {task: steps}, seeds {task: seeds}, flags {method: flags},
  seed limits {method: k}) from the flags; ValueError on a bad entry."""
  budgets = {}
  for item in _MAX_STEPS.value:
    name, _, steps = item.rpartition(":")  # a task may be a factory path
    if not steps.isdigit() or int(steps) < 1:
      raise ValueError(f"--max_steps entries must be task:steps, got {item!r}")
    budgets[name] = int(steps)
  for task in _TASKS.value:
    common.make_task(task)
    if task not in budgets:
      raise ValueError(f"--max_steps has no budget for task {task!r}")
  seeds = [int(s) for s in _SEEDS.value]
  seeds_of = {task: seeds for task in _TASKS.value}
  for item in _MAX_SEEDS.value:
    name, _, count = item.rpartition(":")
    if name not in seeds_of or not count.isdigit() or int(count) < 1:
      raise ValueError(f"--max_seeds entries must be task:k for a task in "
                       f"--tasks, got {item!r}")
    seeds_of[name] = seeds[:int(count)]
  flags_of = method_flags(_METHODS.value, _METHOD_FLAGS.value)
  seed_limit = {}
  for item in _METHOD_SEEDS.value:
    name, _, count = item.partition(":")
    if name not in flags_of or not count.isdigit() or int(count) < 1:
      raise ValueError(f"--method_seeds entries must be method:k for a "
                       f"method in --methods, got {item!r}")
    seed_limit[name] = int(count)
  if _PARALLEL.value < 1:
    raise ValueError(f"--parallel must be >= 1, got {_PARALLEL.value}")
  return budgets, seeds_of, flags_of, seed_limit


def _run(jobs, budgets, flags_of):
  """Runs (or summarises, when finished before) every (task, method, seed)
  job, --parallel at a time; returns {job: table row}."""
  env = dict(os.environ)
  if _PARALLEL.value > 1:
    env.update(TF_NUM_INTRAOP_THREADS="1", TF_NUM_INTEROP_THREADS="1")
  pending, running, rows = list(jobs), [], {}
  start = time.time()
  while pending or running:
    while pending and len(running) < _PARALLEL.value:
      task, method, seed = pending.pop(0)
      logdir = run_dir(_OUT.value, task, method, seed, list(flags_of))
      if os.path.exists(os.path.join(logdir, "evaluation.json")):
        rows[(task, method, seed)] = summarise(task, seed, logdir, method)
        print(f"finished before: {task} {method} seed {seed}", flush=True)
        continue
      os.makedirs(logdir, exist_ok=True)
      command = [sys.executable, "-m", "tasks.train", f"--task={task}",
                 f"--seed={seed}", f"--logdir={logdir}",
                 f"--max_steps={budgets[task]}",
                 f"--max_minutes={_MAX_MINUTES.value}"] + (
                     _EXTRA_FLAGS.value + flags_of[method])
      log = open(os.path.join(logdir, "train.log"), "a")
      print(f"[{time.time() - start:6.0f}s] start {task} {method} seed {seed}",
            flush=True)
      running.append((task, method, seed, logdir, log,
                      subprocess.Popen(command, stdout=log,
                                       stderr=subprocess.STDOUT, env=env)))
    time.sleep(2)
    for job in list(running):
      task, method, seed, logdir, log, process = job
      if process.poll() is None:
        continue
      running.remove(job)
      log.close()
      if process.returncode != 0:
        print(f"  {task} {method} seed {seed} failed (exit "
              f"{process.returncode}); see {logdir}/train.log", flush=True)
      rows[(task, method, seed)] = summarise(task, seed, logdir, method)
      r = rows[(task, method, seed)]
      print(f"[{time.time() - start:6.0f}s] done  {task} {method} seed {seed}: "
            f"{r['steps']} steps, final {fmt(r['final_bits'], 3)} bits/seq, "
            f"< 0.1 at step {fmt(r['to_0.1_steps'])}", flush=True)
  return rows


def _report(ordered, grouped):
  """Writes convergence.json, convergence.md and the learning curves
  (coloured by method when `grouped`)."""
  command = "python -m benchmarks.convergence " + " ".join(sys.argv[1:])
  common.save_json(os.path.join(_OUT.value, "convergence.json"), ordered)
  table = markdown(ordered, command.strip())
  with open(os.path.join(_OUT.value, "convergence.md"), "w") as f:
    f.write(table + "\n")
  print(table)
  try:
    from memtk import viz  # pylint: disable=g-import-not-at-top
    for task in _TASKS.value:
      runs = [r for r in ordered if r["task"] == task]
      measure = runs[0]["error_name"] if runs else "error"
      viz.plot_learning_curves(
          os.path.join(_OUT.value,
                       f"learning_curves_{task.replace(':', '.')}.png"),
          [(f"seed {r['seed']}", [c[0] for c in r["curve"]],
            [c[1] for c in r["curve"]])
           + ((r["method"],) if grouped else ())
           for r in runs],
          title=f"{task}: {measure} on 1,000 fresh sequences",
          ylabel=measure)
  except ImportError as e:
    print(f"no plot: {e}")


def main(argv):
  del argv
  try:
    budgets, seeds_of, flags_of, seed_limit = _plan()
  except ValueError as e:
    sys.exit(f"error: {e}")
  os.makedirs(_OUT.value, exist_ok=True)
  jobs = [(task, method, seed) for task in _TASKS.value
          for method in flags_of
          for seed in seeds_of[task][:seed_limit.get(method)]]
  rows = _run(jobs, budgets, flags_of)
  _report([rows[j] for j in jobs], grouped=len(flags_of) > 1)


if __name__ == "__main__":
  app.run(main)
