"""benchmarks.plain_fit's parts that need no flags (so tests and other
scripts can import them): its model arguments, the compile it asks for and
its table."""

import ast
import os

import keras
import numpy as np

from benchmarks import convergence_table
import memtk
from tasks import common


def model_kwargs(entries):
  """{name: value} from 'name=value' entries (values as Python literals)."""
  kwargs = {}
  for entry in entries:
    name, sep, value = entry.partition("=")
    if not sep or not name:
      raise ValueError(f"--model entries must be name=value, got {entry!r}")
    try:
      kwargs[name] = ast.literal_eval(value)
    except (ValueError, SyntaxError):
      raise ValueError(f"--model {name}: {value!r} is not a Python literal")
  return kwargs


def loss_margin(value):
  """--loss_margin's loss: None for 'compile' (compile()'s own, with its
  margin), the plain cross-entropy for 'none', else the capped one with the
  margin the number gives."""
  if value == "compile":
    return None
  if value == "none":
    return memtk.metrics.masked_sigmoid_cross_entropy()
  try:
    margin = float(value)
  except ValueError:
    margin = float("nan")
  if not margin > 0:
    raise ValueError(f"--loss_margin must be 'compile', 'none' or a number "
                     f"> 0, got {value!r}")
  return memtk.metrics.masked_sigmoid_cross_entropy(margin)


# Sequences per step: --batch_size's default, and the batch of runs whose
# flags predate it.
BATCH_SIZE = 32

# The NTM paper (Graves et al. 2014) clipped every gradient component to
# [-10, 10] for its RMSProp with momentum 0.9.
RMSPROP_CLIP_VALUE = 10.0


def compile_model(model, optimizer, learning_rate, clip_norm, scale_steps,
                  epsilon=1e-7, margin="compile", amsgrad=False,
                  restore_best=True):
  """Compiles as --optimizer says, with the loss --loss_margin=`margin` asks
  for (loss_margin) and compile(restore_best=`restore_best`) (the
  recipe: off, as tasks.train); returns the callbacks fit needs besides the
  test (ErrorScaledRate for the recipe, else none)."""
  loss = loss_margin(margin)
  if optimizer == "recipe":  # the schedule scales the steps instead
    model.compile(loss=loss, scale_steps=False, restore_best=False)
    return [memtk.training.ErrorScaledRate(monitor=common.EVAL_MONITOR)]
  if optimizer == "adam":
    chosen = keras.optimizers.Adam(learning_rate, global_clipnorm=clip_norm,
                                   epsilon=epsilon, amsgrad=amsgrad)
  elif optimizer == "rmsprop":  # the NTM paper's: momentum 0.9, clipped
    chosen = keras.optimizers.RMSprop(learning_rate, momentum=0.9,
                                      epsilon=epsilon,
                                      clipvalue=RMSPROP_CLIP_VALUE)
  else:  # compile()'s own
    chosen = None
  model.compile(optimizer=chosen, loss=loss, scale_steps=scale_steps,
                restore_best=restore_best)
  return []


def finished(out):
  path = os.path.join(out, "history.json")
  if not os.path.exists(path):
    return False
  run = common.load_json(path)
  return isinstance(run, dict) and run.get("finished", False)


# A test above this many bit errors per sequence after one under 1 bit is a
# collapse (copy's chance is about 42: 4 bits a vector, lengths 1-20).
COLLAPSE_BITS = 10.0


def seed_line(seed, history, budget_seconds):
  """A table row and whether the seed got under 0.1 within the budget and
  stayed under 1 bit after (a dict)."""
  to_1 = convergence_table.first_below(history, 1.0)
  to_01 = convergence_table.first_below(history, 0.1)
  worst_after_1 = convergence_table.worst_relapse(history, 1.0)
  worst = convergence_table.worst_relapse(history)
  final = history[-1]["bits_per_sequence"] if history else float("nan")
  solved = to_01[1] is not None and to_01[1] <= budget_seconds
  held = solved and worst is not None and worst <= 1.0
  cells = [str(seed), convergence_table.fmt(to_1[0]),
           convergence_table.fmt(worst_after_1),
           convergence_table.fmt(to_01[0]), convergence_table.fmt(to_01[1], 0),
           convergence_table.fmt(worst), str(history[-1]["step"]),
           f"{final:.3f}"]
  collapsed = (worst_after_1 is not None
               and worst_after_1 > COLLAPSE_BITS)
  return "| " + " | ".join(cells) + " |", {
      "solved": solved, "held": held, "final": final, "collapsed": collapsed}


def seed_runs(out, seeds):
  """{seed: its history.json} for the seeds with one under out/seed<N>."""
  runs = {}
  for seed in seeds:
    path = os.path.join(out, f"seed{seed}", "history.json")
    if os.path.exists(path):
      runs[seed] = common.load_json(path)
  return runs


def markdown(runs, command):
  """The study's table (module docstring) from seed_runs."""
  lines = [f"`{command}`", "",
           "| seed | steps to <1 | worst after <1 | steps to <0.1 | "
           "s to <0.1 | worst after <0.1 | steps run | final bits/seq |",
           "|---|---|---|---|---|---|---|---|"]
  results = []
  for seed, run in runs.items():
    line, result = seed_line(seed, run["history"],
                             60 * run["flags"]["max_minutes"])
    lines.append(line)
    results.append(result)
  solved = sum(r["solved"] for r in results)
  held = sum(r["held"] for r in results)
  low, high = convergence_table.wilson_interval(solved, len(results))
  finals = sorted(r["final"] for r in results)
  if results:
    lines += ["", f"Under 0.1 within the budget: {solved} of {len(results)} "
              f"(95% Wilson {100 * low:.0f}-{100 * high:.0f}%); of those, "
              f"{held} never tested above 1 bit after their first < 0.1. "
              f"Tested above {COLLAPSE_BITS:.0f} bits after a test under 1 "
              f"(a collapse): {sum(r['collapsed'] for r in results)} of "
              f"{len(results)}. "
              f"Final bit errors per sequence: median "
              f"{float(np.median(finals)):.3f} (range {finals[0]:.3f}-"
              f"{finals[-1]:.3f})."]
  return "\n".join(lines) + "\n"


def curves(runs, batch_size=BATCH_SIZE):
  """(label, training sequences, test errors) of every run of seed_runs,
  for memtk.viz.plot_learning_curves; a run's batch size is the one its
  flags hold (runs from before the flag: `batch_size`)."""
  return [(f"seed {seed}",
           [r["step"] * run.get("flags", {}).get("batch_size", batch_size)
            for r in run["history"]],
           [r["bits_per_sequence"] for r in run["history"]])
          for seed, run in runs.items()]
