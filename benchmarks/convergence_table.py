"""The convergence study's table: one row per finished run directory, the
success count with its Wilson interval, times to < 0.1 and relapses after it.
Free of flags, so tests and other scripts can import it."""

import math
import os
import statistics

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


def markdown(rows, command):
  """The summary table, one line per run plus a per-task count of successes."""
  lines = [f"Command: `{command}`", ""]
  for task in dict.fromkeys(r["task"] for r in rows):
    task_rows = [r for r in rows if r["task"] == task]
    sizes = list(task_rows[0]["generalisation"]) if task_rows[0]["generalisation"] else []
    size_name = task_rows[0]["size_name"]
    methods = list(dict.fromkeys(r.get("method", "soft") for r in task_rows))
    sampled = any(r.get("final_bits_sampled") is not None for r in task_rows)
    measure = task_rows[0].get("error_name", contract.DEFAULT_ERROR_NAME)
    final = ("final bits/seq" if measure == contract.DEFAULT_ERROR_NAME
             else "final error")
    header = (["method", "seed", "steps to <1", "s to <1", "steps to <0.1",
               "s to <0.1", "worst after <0.1", "steps run", final]
              + (["final, sampled choices"] if sampled else [])
              + [f"{size_name} {s}" for s in sizes])
    lines += [f"**{task}**" + ("" if measure == contract.DEFAULT_ERROR_NAME
                                else f" (error: {measure})"),
              "", "| " + " | ".join(header) + " |",
              "|" + "---|" * len(header)]
    for r in task_rows:
      cells = [r.get("method", "soft"), r["seed"], r["to_1_steps"],
               fmt(r["to_1_seconds"], 0), r["to_0.1_steps"],
               fmt(r["to_0.1_seconds"], 0), fmt(r.get("worst_after")),
               r["steps"],
               fmt(r["final_bits"], 3)]
      if sampled:
        cells.append(fmt(r.get("final_bits_sampled"), 3))
      cells += [fmt(r["generalisation"].get(s), 2) for s in sizes]
      lines.append("| " + " | ".join(fmt(c) for c in cells) + " |")
    lines.append("")
    for method in methods:
      runs = [r for r in task_rows if r.get("method", "soft") == method]
      lines.append(success_line(task, method, runs) + "  ")
    lines.append("")
  return "\n".join(lines)
