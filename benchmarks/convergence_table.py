"""The convergence study's table: one row per finished run directory, the
success count with its Wilson interval, times to < 0.1 and relapses after it.
Free of flags, so tests and other scripts can import it."""

import math
import os
import statistics

import memtk
from tasks import common
from tasks import contract


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


def hold_end(config, history):
  """The step at which a hard run's soft-to-hard hold ended (soft batches
  fade out from there): its first evaluation that showed the model working
  (memtk.training.EndSoftHold's test, with the run's thresholds), or the
  hold's cap; None for a run without the curriculum."""
  hold = config.get("soft_curriculum_hold", 0)
  if config.get("addressing") != "hard" or not (
      hold or config.get("soft_curriculum_steps", 0)):
    return None
  until = config.get("soft_curriculum_until", 0.0)
  until_soft = config.get("soft_curriculum_until_soft", 0.0)  # later key
  if until or until_soft:
    works = memtk.training.EndSoftHold(until, "greedy", until_soft,
                                       "soft").works
    for record in history:
      if record["step"] >= hold:
        break
      if works({"greedy": record["bits_per_sequence"],
                "soft": record.get("soft_bits_per_sequence")}):
        return record["step"]
  return hold


def run_dir(out, task, method, seed, methods):
  """The directory of one run of a study writing to `out`: task-method-seed,
  except that a soft-only study keeps the older task-seed name unless a
  task-soft-seed directory is there already (a soft-only rerun of a study
  of several methods then finds its runs instead of starting new ones)."""
  label = task.replace(":", ".")  # a factory path names a directory
  named = os.path.join(out, f"{label}-{method}-seed{seed}")
  if methods == ["soft"] and not os.path.isdir(named):
    return os.path.join(out, f"{label}-seed{seed}")
  return named


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
         "error_name": evaluation.get("error_name",
                                      contract.DEFAULT_ERROR_NAME),
         "curve": [(r["sequences"], r["bits_per_sequence"]) for r in history]}
  for threshold, key in ((1.0, "to_1"), (0.1, "to_0.1")):
    row[key + "_steps"], row[key + "_seconds"] = first_below(history, threshold)
  row["worst_after"] = worst_relapse(history)
  config_path = os.path.join(logdir, "config.json")
  if os.path.exists(config_path):
    row["hold_end"] = hold_end(common.load_json(config_path), history)
  return row


def success_line(task, method, runs):
  """Successes with their 95% interval, median and worst time to < 0.1 and
  the worst evaluation after a run first got there."""
  good = [r for r in runs
          if r["final_bits"] is not None and r["final_bits"] < 0.1]
  low, high = wilson_interval(len(good), len(runs))
  measure = runs[0].get("error_name", contract.DEFAULT_ERROR_NAME)
  line = (f"{task}, {method}: final {measure} < 0.1 in "
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
    line += (f"; worst evaluation after first < 0.1: {max(relapses):.2f}")
  return line + "."


def fmt(value, digits=2):
  if value is None:
    return "—"
  if isinstance(value, float):
    return f"{value:.{digits}f}"
  return str(value)


def measure_line(task, method, runs):
  """For a task with its own error measure (no success line at 0.1): the
  median and worst final error over the runs, and the best evaluation."""
  finals = sorted(r["final_bits"] for r in runs if r["final_bits"] is not None)
  measure = runs[0].get("error_name", contract.DEFAULT_ERROR_NAME)
  if not finals:
    return f"{task}, {method}: no finished run."
  best = min((min(c[1] for c in r["curve"]) for r in runs if r["curve"]),
             default=None)
  line = (f"{task}, {method}: final {measure}: median "
          f"{statistics.median(finals):.2f}, worst {finals[-1]:.2f} over "
          f"{len(finals)} seeds")
  if best is not None:
    line += f"; best evaluation of any run {best:.2f}"
  return line + "."


def _header(measure, sampled, held, size_name, sizes):
  """The table's columns: times to the success lines for bit errors; for a
  task with its own measure, the best evaluation and the final error; the
  soft hold's end when a run had one (`held`)."""
  if measure == contract.DEFAULT_ERROR_NAME:
    head = ["method", "seed", "steps to <1", "s to <1", "steps to <0.1",
            "s to <0.1", "worst after <0.1", "steps run", "final bits/seq"]
  else:
    head = ["method", "seed", "steps run", "s run", "best evaluation",
            "final error"]
  return (head[:2] + (["soft hold ended"] if held else []) + head[2:]
          + (["final, sampled choices"] if sampled else [])
          + [f"{size_name} {s}" for s in sizes])


def _cells(r, measure, sampled, held, sizes):
  """One run's row of the table (columns of _header)."""
  if measure == contract.DEFAULT_ERROR_NAME:
    cells = [r["to_1_steps"], fmt(r["to_1_seconds"], 0), r["to_0.1_steps"],
             fmt(r["to_0.1_seconds"], 0), fmt(r.get("worst_after")),
             r["steps"], fmt(r["final_bits"], 3)]
  else:
    best = min((c[1] for c in r["curve"]), default=None)
    cells = [r["steps"], fmt(r["seconds"], 0), fmt(best),
             fmt(r["final_bits"], 2)]
  cells = ([r.get("method", "soft"), r["seed"]]
           + ([r.get("hold_end")] if held else []) + cells)
  if sampled:
    cells.append(fmt(r.get("final_bits_sampled"), 3))
  return cells + [fmt(r["generalisation"].get(s), 2) for s in sizes]


def markdown(rows, command):
  """The summary table, one line per run plus a per-task line per method:
  the count of successes (bit errors), or the median and worst final error
  (a task's own measure)."""
  lines = [f"Command: `{command}`", ""]
  for task in dict.fromkeys(r["task"] for r in rows):
    task_rows = [r for r in rows if r["task"] == task]
    sizes = list(task_rows[0]["generalisation"])
    measure = task_rows[0].get("error_name", contract.DEFAULT_ERROR_NAME)
    methods = list(dict.fromkeys(r.get("method", "soft") for r in task_rows))
    sampled = any(r.get("final_bits_sampled") is not None for r in task_rows)
    held = any(r.get("hold_end") is not None for r in task_rows)
    header = _header(measure, sampled, held, task_rows[0]["size_name"],
                     sizes)
    lines += [f"**{task}**" + ("" if measure == contract.DEFAULT_ERROR_NAME
                                else f" (error: {measure})"),
              "", "| " + " | ".join(header) + " |",
              "|" + "---|" * len(header)]
    for r in task_rows:
      cells = _cells(r, measure, sampled, held, sizes)
      lines.append("| " + " | ".join(fmt(c) for c in cells) + " |")
    lines.append("")
    line = (success_line if measure == contract.DEFAULT_ERROR_NAME
            else measure_line)
    for method in methods:
      runs = [r for r in task_rows if r.get("method", "soft") == method]
      lines.append(line(task, method, runs) + "  ")
    lines.append("")
  return "\n".join(lines)
