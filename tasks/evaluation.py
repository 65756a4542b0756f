"""Evaluation of a trained run: bit errors per sequence on the training
distribution and on longer sequences, and attention heat maps. Used by
tasks.train (at the end of training) and tasks.evaluate (the CLI)."""

import os
import time

import keras
import numpy as np
import tensorflow as tf

import memtk
from memtk import viz
from tasks import common


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
  latest = tf.train.latest_checkpoint(os.path.join(path, "checkpoints"))
  if latest is None:
    raise ValueError(f"logdir {path!r} holds no checkpoint yet")
  checkpoint.restore(latest).expect_partial()
  return model, task, config, path


def write_heatmap(model, task, seed, path, title):
  """Runs one fresh sequence of `task` and plots its attention to `path`."""
  rng = np.random.default_rng([seed, common.TEST_STREAM, 10**6])
  plot_sequence(model, *task.sample(rng, 1), path=path, title=title)


def plot_sequence(model, inputs, targets, mask, path, title):
  """Plots the model's attention on one sequence (a batch of 1) to `path`,
  its bit errors in the title."""
  trace = model.trace(tf.constant(inputs))
  errors = memtk.metrics.bit_errors(trace["logits"], targets, mask).numpy()[0]
  viz.plot_attention(
      path, inputs[0], targets[0], tf.sigmoid(trace["logits"])[0].numpy(),
      trace["read_weights"][0].numpy(), trace["write_weights"][0].numpy(),
      mask=mask[0], title=f"{title}: {errors:.0f} bit errors")


def evaluate_run(model, task, config, logdir, num_sequences=1000, sizes=None,
                 log=print, test_sequences=None):
  """Measures a model and writes evaluation.json and the heat maps.

  The training sizes are tested on `test_sequences` fresh test sequences
  (task.sample; None: num_sequences), each generalisation size on
  num_sequences.

  A hard model is measured twice, with greedy choices (the main figures) and
  with sampled ones ('sampled': the same two measurements).

  Returns:
    dict with 'bits_per_sequence' (the training sizes) and
    'generalisation' ({size: bits per sequence}), and 'sampled' for hard
    models.
  """
  test_sequences = test_sequences or num_sequences
  results = _measure(common.Evaluator(model), task, config, num_sequences,
                     test_sequences, sizes, log, "")
  results["addressing"] = model.cell.addressing
  if model.cell.mode.estimated:
    results["sampled"] = _measure(common.Evaluator(model, choice="sample"),
                                  task, config, num_sequences, test_sequences,
                                  sizes, log, " (sampled choices)")
  start = time.time()
  sizes = sorted(int(s) for s in results["generalisation"])
  train_size = task.max_size
  write_heatmap(model, task.variant(train_size), seed=config["seed"],
                path=os.path.join(logdir, "heatmap.png"),
                title=f"{task.name}, {task.size_name} {train_size}")
  write_heatmap(model, task.variant(max(sizes)), seed=config["seed"],
                path=os.path.join(logdir, "heatmap_long.png"),
                title=f"{task.name}, {task.size_name} {max(sizes)}")
  results["seconds"] += time.time() - start
  common.save_json(os.path.join(logdir, "evaluation.json"), results)
  log(f"wrote {os.path.join(logdir, 'evaluation.json')}, heatmap.png and "
      "heatmap_long.png")
  return results


def _measure(evaluator, task, config, num_sequences, test_sequences, sizes,
             log, label):
  """Bit errors per sequence at the training sizes (test_sequences
  sequences) and at `sizes` (num_sequences each)."""
  seed = config["seed"]
  sizes = [int(s) for s in (sizes or task.generalisation_sizes)]
  start = time.time()
  results = {
      "task": task.name,
      "num_sequences": test_sequences,
      "bits_per_sequence": evaluator.bits_per_sequence(
          task, seed, common.TEST_STREAM, 0, test_sequences),
      "generalisation": {},
      "size_name": task.size_name,
  }
  log(f"eval {task.name}{label}: {results['bits_per_sequence']:.4f} bit "
      f"errors per sequence on {test_sequences} fresh test sequences of the "
      "training sizes")
  for size in sizes:
    bits = evaluator.bits_per_sequence(task.variant(size), seed, common.TEST_STREAM,
                                       size, num_sequences)
    results["generalisation"][str(size)] = bits
    log(f"eval {task.name} {task.size_name}={size}{label}: {bits:.4f} bit "
        "errors per sequence")
  results["seconds"] = time.time() - start
  return results
