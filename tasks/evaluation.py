"""Evaluation of a trained run: the task's error per sequence (bit errors
for most tasks) on the training distribution and on longer sequences, and
attention heat maps. Used by
tasks.train (at the end of training) and tasks.evaluate (the CLI)."""

import os
import time

import keras
import numpy as np
import tensorflow as tf

import memtk
from memtk import viz
from tasks import common
from tasks import contract


def load_run(path, task_name=None):
  """(model, task, config, outdir) of a run directory or a saved .keras model.

  A run directory (written by tasks.train) is loaded at its latest
  checkpoint. A .keras file is loaded with keras.models.load_model; its task
  is `task_name`, or the task of a config.json beside it. Results go to
  `outdir`: the run directory, or the directory holding the .keras file.
  """
  if path.endswith(".keras"):
    if not os.path.isfile(path):
      raise ValueError(f"no saved model at {path!r}")
    outdir = os.path.dirname(path) or "."
    config_path = os.path.join(outdir, "config.json")
    config = common.load_json(config_path) if os.path.exists(config_path) else {}
    task_name = task_name or config.get("task")
    if task_name is None:
      raise ValueError(f"{path!r} has no config.json beside it: pass --task")
    config = {**config, "task": task_name, "seed": config.get("seed", 0)}
    model = keras.models.load_model(path)
    return model, common.make_task(task_name), config, outdir
  config_path = os.path.join(path, "config.json")
  if not os.path.exists(config_path):
    raise ValueError(f"logdir {path!r} holds no config.json: not a run "
                     "directory written by tasks.train")
  config = common.load_json(config_path)
  task = common.make_task(config["task"])
  model = common.make_model(config, task)
  checkpoint = tf.train.Checkpoint(model=model, optimizer=model.optimizer)
  latest = common.latest_checkpoint(path)
  if latest is None:
    raise ValueError(f"logdir {path!r} holds no checkpoint yet")
  checkpoint.restore(latest).expect_partial()
  return model, task, config, path


def write_heatmap(model, task, seed, path, title):
  """Runs one fresh sequence of `task` and plots its attention to `path`."""
  rng = np.random.default_rng([seed, common.TEST_STREAM, 10**6])
  plot_sequence(model, *task.sample(rng, 1), path=path, title=title, task=task)


def plot_sequence(model, inputs, targets, mask, path, title, task=None):
  """Plots the model's attention on one sequence (a batch of 1) to `path`,
  its error in the title (`task`'s measure; bit errors without a task)."""
  trace = model.trace(tf.constant(inputs))
  errors = contract.sequence_errors(task, trace["logits"], inputs, targets,
                                    mask)[0]
  measure = contract.error_name(task).replace(" per sequence", "")
  viz.plot_attention(
      path, inputs[0], targets[0], tf.sigmoid(trace["logits"])[0].numpy(),
      trace["read_weights"][0].numpy(), trace["write_weights"][0].numpy(),
      mask=mask[0], title=f"{title}: {errors:.4g} {measure}")


def evaluate_run(model, task, config, logdir, num_sequences=1000, sizes=None,
                 log=print, test_sequences=None, memory_size=None):
  """Measures a model and writes evaluation.json and the heat maps.

  The training sizes are tested on `test_sequences` fresh test sequences
  (task.sample; None: num_sequences), each generalisation size on
  num_sequences. With `memory_size`, an NTM runs everything with that many
  memory cells instead of its training N (longer inputs than N allows).

  A hard model is measured twice, with greedy choices (the main figures) and
  with sampled ones ('sampled': the same two measurements).

  Returns:
    dict with 'bits_per_sequence' (the training sizes) and
    'generalisation' ({size: bits per sequence}), and 'sampled' for hard
    models.
  """
  test_sequences = test_sequences or num_sequences
  if memory_size:
    if not isinstance(model, memtk.NTM):
      raise ValueError(f"memory_size={memory_size}: a {type(model).__name__} "
                       "has no external memory")
    model = model.with_memory_size(memory_size)
    log(f"evaluating with a memory of {memory_size} cells")
  results = _measure(common.Evaluator(model), task, config, num_sequences,
                     test_sequences, sizes, log, "")
  results["model"] = config.get("model", "ntm")
  if isinstance(model, memtk.NTM):
    results["addressing"] = model.cell.addressing
    results["memory_size"] = model.cell.memory_size
    if model.cell.mode.estimated:
      results["sampled"] = _measure(common.Evaluator(model, choice="sample"),
                                    task, config, num_sequences,
                                    test_sequences, sizes, log,
                                    " (sampled choices)")
  start = time.time()
  written = _write_heatmaps(model, task, config["seed"], logdir,
                            sorted(int(s) for s in results["generalisation"]))
  results["seconds"] += time.time() - start
  common.save_json(os.path.join(logdir, "evaluation.json"), results)
  log(f"wrote {os.path.join(logdir, 'evaluation.json')} and "
      f"{' and '.join(written)}")
  return results


def _write_heatmaps(model, task, seed, logdir, sizes):
  """heatmap.png (a sequence of the largest training size) and, with
  generalisation sizes, heatmap_long.png (the largest); returns their names."""
  if not contract.generalises(task):
    write_heatmap(model, task, seed, os.path.join(logdir, "heatmap.png"),
                  task.name)
    return ["heatmap.png"]
  name = contract.size_name(task)
  written = []
  for file, size in [("heatmap.png", getattr(task, "max_size", None)),
                     ("heatmap_long.png", max(sizes) if sizes else None)]:
    if size is not None:
      write_heatmap(model, task.variant(size), seed,
                    os.path.join(logdir, file), f"{task.name}, {name} {size}")
      written.append(file)
  return written


def _measure(evaluator, task, config, num_sequences, test_sequences, sizes,
             log, label):
  """The task's error per sequence at the training sizes (test_sequences
  sequences) and at `sizes` (num_sequences each; default: the task's
  generalisation sizes, if it has any)."""
  seed = config["seed"]
  if contract.generalises(task):
    sizes = [int(s) for s in (sizes or task.generalisation_sizes)]
  elif sizes:
    raise ValueError(f"task {task.name!r} has no variant(size): it cannot be "
                     f"evaluated at sizes {sizes}")
  measure = contract.error_name(task)
  start = time.time()
  results = {
      "task": task.name,
      "num_sequences": test_sequences,
      "error_name": measure,
      "bits_per_sequence": evaluator.bits_per_sequence(
          task, seed, common.TEST_STREAM, 0, test_sequences),
      "generalisation": {},
      "size_name": contract.size_name(task),
  }
  log(f"eval {task.name}{label}: {results['bits_per_sequence']:.4f} "
      f"{measure} on {test_sequences} fresh test sequences of the training "
      "sizes")
  for size in sizes or ():
    bits = evaluator.bits_per_sequence(task.variant(size), seed, common.TEST_STREAM,
                                       size, num_sequences)
    results["generalisation"][str(size)] = bits
    log(f"eval {task.name} {results['size_name']}={size}{label}: {bits:.4f} "
        f"{measure}")
  results["seconds"] = time.time() - start
  return results


def repeat_pass_errors(model, task, length, repeats, count, seed):
  """Bit errors of a repeat-copy model on `count` sequences of one length
  and repeat count (benchmarks.repeat_passes).

  Returns (bit errors per sequence, [repeats] data bit errors per sequence
  of each pass, end marker errors per sequence).
  """
  inputs, targets, mask = task.variant(length, repeats).sample(
      np.random.default_rng(seed), count)
  logits = np.asarray(model.predict(inputs, batch_size=50, verbose=0))
  wrong = ((logits > 0) != (targets > 0.5)) * mask[..., None]
  first = length + 1  # the first answer step
  passes = [wrong[:, first + k * length:first + (k + 1) * length, :-1].sum()
            / count for k in range(repeats)]
  return wrong.sum() / count, np.array(passes), wrong[..., -1].sum() / count
