r"""How reliably and how fast the NTM learns: one training run per task,
method and seed, each through the training CLI, summarised in one table.

  python -m benchmarks.convergence --out=benchmarks/results/convergence
  python -m benchmarks.convergence --methods=soft,reinforce,gumbel \
      --out=benchmarks/results/soft_vs_hard

runs `python -m tasks.train` for every task x method x seed (--parallel at a
time), then writes <out>/convergence.json, <out>/convergence.md (steps and
seconds to < 1 and < 0.1 bit errors per sequence, final errors on 1,000 fresh
sequences, errors on longer sequences) and <out>/learning_curves_<task>.png
(every run's curve, coloured by method). A method is soft addressing or hard
addressing with one estimator; hard runs are evaluated with greedy choices.
Runs already in <out> resume instead of restarting, and finished ones (with
an evaluation.json) are summarised as they are.
"""

import math
import os
import statistics
import subprocess
import sys
import time

from absl import app
from absl import flags


from tasks import common

# --- what to run ---
_TASKS = flags.DEFINE_list("tasks", ["copy", "associative_recall"], "Tasks.")
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
    "addressing with that estimator).")
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


def first_below(history, threshold):
  """(step, seconds) of the first evaluation below threshold, or (None, None)."""
  for record in history:
    if record["bits_per_sequence"] < threshold:
      return record["step"], record["seconds"]
  return None, None


def wilson_interval(successes, trials, z=1.96):
  """The 95% Wilson score interval of a success rate, as (low, high)."""
  if trials == 0:
    return 0.0, 1.0
  p = successes / trials
  centre = (p + z * z / (2 * trials)) / (1 + z * z / trials)
  half = (z / (1 + z * z / trials)) * math.sqrt(
      p * (1 - p) / trials + z * z / (4 * trials * trials))
  return max(0.0, centre - half), min(1.0, centre + half)


def worst_relapse(history, threshold=0.1):
  """The highest evaluation after the first one below threshold (None if
  never below)."""
  for i, record in enumerate(history):
    if record["bits_per_sequence"] < threshold:
      return max(r["bits_per_sequence"] for r in history[i:])
  return None


def summarise(task, seed, logdir, method="soft"):
  """One table row from a finished run directory."""
  history = common.load_json(os.path.join(logdir, "history.json"))
  evaluation_path = os.path.join(logdir, "evaluation.json")
  evaluation = (common.load_json(evaluation_path)
                if os.path.exists(evaluation_path) else {})
  row = {"task": task, "method": method, "seed": seed, "logdir": logdir,
         "steps": history[-1]["step"] if history else 0,
         "seconds": history[-1]["seconds"] if history else 0.0,
         "final_bits": evaluation.get("bits_per_sequence"),
         "final_bits_sampled": evaluation.get("sampled", {}).get(
             "bits_per_sequence"),
         "generalisation": evaluation.get("generalisation", {}),
         "size_name": evaluation.get("size_name", "size"),
         "curve": [(r["sequences"], r["bits_per_sequence"]) for r in history]}
  for threshold, key in ((1.0, "to_1"), (0.1, "to_0.1")):
    row[key + "_steps"], row[key + "_seconds"] = first_below(history, threshold)
  row["worst_after"] = worst_relapse(history)
  return row


def success_line(task, method, runs):
  """Successes with their 95% interval, median and worst time to < 0.1 and
  the worst evaluation after a run first got there."""
  good = [r for r in runs
          if r["final_bits"] is not None and r["final_bits"] < 0.1]
  low, high = wilson_interval(len(good), len(runs))
  line = (f"{task}, {method}: final error < 0.1 bits per sequence in "
          f"{len(good)} of {len(runs)} seeds (95% Wilson interval "
          f"{100 * low:.0f}-{100 * high:.0f}%)")
  times = sorted(r["to_0.1_seconds"] for r in runs
                 if r["to_0.1_seconds"] is not None)
  if times:
    line += (f"; time to < 0.1: median {statistics.median(times):.0f} s, "
             f"worst {times[-1]:.0f} s over the {len(times)} runs that got "
             "there")
  relapses = [r["worst_after"] for r in runs if r.get("worst_after") is not None]
  if relapses:
    line += (f"; worst evaluation after first < 0.1: {max(relapses):.2f} "
             "bits per sequence")
  return line + "."


def _fmt(value, digits=2):
  if value is None:
    return "—"
  if isinstance(value, float):
    return f"{value:.{digits}f}"
  return str(value)


def markdown(rows, command):
  """The summary table, one line per run plus a per-task count of successes."""
  lines = [f"Command: `{command}`", ""]
  for task in dict.fromkeys(r["task"] for r in rows):
    task_rows = [r for r in rows if r["task"] == task]
    sizes = list(task_rows[0]["generalisation"]) if task_rows[0]["generalisation"] else []
    size_name = task_rows[0]["size_name"]
    methods = list(dict.fromkeys(r.get("method", "soft") for r in task_rows))
    sampled = any(r.get("final_bits_sampled") is not None for r in task_rows)
    header = (["method", "seed", "steps to <1", "s to <1", "steps to <0.1",
               "s to <0.1", "worst after <0.1", "steps run", "final bits/seq"]
              + (["final, sampled choices"] if sampled else [])
              + [f"{size_name} {s}" for s in sizes])
    lines += [f"**{task}**", "", "| " + " | ".join(header) + " |",
              "|" + "---|" * len(header)]
    for r in task_rows:
      cells = [r.get("method", "soft"), r["seed"], r["to_1_steps"],
               _fmt(r["to_1_seconds"], 0), r["to_0.1_steps"],
               _fmt(r["to_0.1_seconds"], 0), _fmt(r.get("worst_after")),
               r["steps"],
               _fmt(r["final_bits"], 3)]
      if sampled:
        cells.append(_fmt(r.get("final_bits_sampled"), 3))
      cells += [_fmt(r["generalisation"].get(s), 2) for s in sizes]
      lines.append("| " + " | ".join(_fmt(c) for c in cells) + " |")
    lines.append("")
    for method in methods:
      runs = [r for r in task_rows if r.get("method", "soft") == method]
      lines.append(success_line(task, method, runs) + "  ")
    lines.append("")
  return "\n".join(lines)


def _plan():
  """(budgets {task: steps}, seeds {task: seeds}, flags {method: flags},
  seed limits {method: k}) from the flags; ValueError on a bad entry."""
  budgets = {}
  for item in _MAX_STEPS.value:
    name, _, steps = item.partition(":")
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
    name, _, count = item.partition(":")
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
      # Soft-only studies keep their original directory names.
      name = (f"{task}-seed{seed}" if list(flags_of) == ["soft"]
              else f"{task}-{method}-seed{seed}")
      logdir = os.path.join(_OUT.value, name)
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
            f"{r['steps']} steps, final {_fmt(r['final_bits'], 3)} bits/seq, "
            f"< 0.1 at step {_fmt(r['to_0.1_steps'])}", flush=True)
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
      viz.plot_learning_curves(
          os.path.join(_OUT.value, f"learning_curves_{task}.png"),
          [(f"seed {r['seed']}", [c[0] for c in r["curve"]],
            [c[1] for c in r["curve"]])
           + ((r["method"],) if grouped else ())
           for r in ordered if r["task"] == task],
          title=f"{task}: bit errors per sequence on 1,000 fresh sequences")
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
