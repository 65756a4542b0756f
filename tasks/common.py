"""What training, evaluation and the benchmarks share: tasks by name, the
model built from a run's config, seeded data streams and evaluation."""

import json
import math
import os

import numpy as np
import tensorflow as tf

import memtk
from memtk.hard_training import HARD_DEFAULTS
from tasks import associative_recall
from tasks import contract
from tasks import copy
from tasks import curriculum as curriculum_lib
from tasks import ngrams
from tasks import priority_sort
from tasks import repeat_copy

# The built-in tasks by name; --task also takes 'package.module:factory'.
TASKS = {"copy": copy.CopyTask,
         "repeat_copy": repeat_copy.RepeatCopyTask,
         "associative_recall": associative_recall.AssociativeRecallTask,
         "ngrams": ngrams.NGramsTask,
         "priority_sort": priority_sort.PrioritySortTask}

# The soft-to-hard curriculum of hard runs: every batch soft until the model
# works, with greedy hard choices (an evaluation below 1 bit error per
# sequence) or run softly (below 0.1), for at most 10,000 steps, then soft
# batches fade out over 2,000 (docs/soft_vs_hard.md).
# --soft_curriculum_hold=0 --soft_curriculum_steps=0 trains hard from the
# first step.
SOFT_TO_HARD = {"soft_curriculum_hold": 10000, "soft_curriculum_until": 1.0,
                "soft_curriculum_until_soft": 0.1,
                "soft_curriculum_steps": 2000}

# What a hard run that trains hard from its first step (no soft batch) takes
# in place of the defaults below: the adaptive length curriculum
# (tasks/curriculum.py) and, for REINFORCE, a reward for reading the cell
# that holds the answer (memtk.estimators.read_credit), which REINFORCE from
# scratch needs to find copy (docs/soft_vs_hard.md, "Hard from scratch").
# tasks.train applies them (from_scratch_settings) unless the flag is given.
FROM_SCRATCH = {"adaptive_curriculum": 2.0, "read_reward": 0.5}


# What tasks.train takes for a task, in place of the defaults below, unless
# the flag is given: repeat copy learns its first pass only on a curriculum
# over the repeat count whose batches hold no share of the full range
# (docs/tasks.md, "Repeat copy with a curriculum over the repeat count").
TASK_SETTINGS = {
    "repeat_copy": {"adaptive_curriculum": 1.0, "curriculum_full_share": 0.0},
}


def task_settings(config):
  """The TASK_SETTINGS of a run config's task ({} for other tasks, and for
  a run with a linear curriculum, which the adaptive one would clash with)."""
  config = {**DEFAULT_CONFIG, **config}
  if config["curriculum_steps"]:
    return {}
  return dict(TASK_SETTINGS.get(config["task"], {}))


def trains_hard_from_start(config):
  """Whether a run config trains a hard model with no soft batch at all."""
  config = {**DEFAULT_CONFIG, **config}
  return (config["model"] == "ntm" and config["addressing"] == "hard"
          and not config["soft_curriculum_hold"]
          and not config["soft_curriculum_steps"])


def from_scratch_settings(config, takes_difficulty):
  """The FROM_SCRATCH settings that apply to a run config: none unless it
  trains hard from its first step; the adaptive curriculum only for a task
  that takes a difficulty (`takes_difficulty`) in a run with no
  curriculum_steps; the read reward only for REINFORCE."""
  config = {**DEFAULT_CONFIG, **config}
  if not trains_hard_from_start(config):
    return {}
  settings = dict(FROM_SCRATCH)
  if config["curriculum_steps"] or not takes_difficulty:
    del settings["adaptive_curriculum"]
  if config["estimator"] != "reinforce":
    del settings["read_reward"]
  return settings


# The model and optimiser settings a run is made of: the recipe of Collier &
# Beel 2018 (LSTM 100, N=128, W=20, Adam 1e-3, batch 32), but with gradients
# clipped to global norm 10 rather than 50 and, once the task is nearly solved,
# a learning rate that follows the lowest evaluated error (see docs/convergence.md
# for the runs behind both).
DEFAULT_CONFIG = {
    "task": "copy",
    "model": "ntm",  # or "lstm": the baseline without external memory
    "controller": "lstm",
    "controller_units": 100,
    "memory_size": 128,
    "word_size": 20,
    "num_read_heads": 1,
    "num_write_heads": 1,
    "shift_range": 1,
    "memory_init": "constant",
    "content_addressing": True,
    "empty_rows_as": None,
    "gate_bias": memtk.heads.DEFAULT_GATE_BIAS,
    "gamma_bias": memtk.heads.DEFAULT_GAMMA_BIAS,
    "shift_bias": memtk.heads.DEFAULT_SHIFT_BIAS,
    "addressing": "soft",
    "sparse_k": memtk.cell.DEFAULT_SPARSE_K,  # used by addressing="sparse"
    # Sparse content lookups through an index (memtk.content_index) instead
    # of the scan of every row: None, "written" or "hash".
    "content_index": None,
    **HARD_DEFAULTS,  # used by addressing="hard" only
    **SOFT_TO_HARD,  # likewise
    "batch_size": 32,
    "learning_rate": memtk.training.DEFAULT_LEARNING_RATE,
    "lr_schedule": "error",
    "lr_half_life": 1000,
    "lr_decay_below": 1.0,
    "lr_floor": 0.01,
    "lr_error_power": memtk.training.DEFAULT_ERROR_POWER,
    "curriculum_steps": 0,
    "adaptive_curriculum": 0.0,
    "curriculum_full_share": curriculum_lib.FULL_SHARE,
    "clip_norm": memtk.training.DEFAULT_CLIP_NORM,
    "amsgrad": False,
    "seed": 0,
}

# Streams of the seeded data: training batch k of seed s is drawn from
# default_rng([s, TRAIN_STREAM, k]), so a resumed run sees the very same batches.
TRAIN_STREAM, EVAL_STREAM, TEST_STREAM, DIAGNOSIS_STREAM, LEVEL_STREAM = (
    0, 1, 2, 3, 4)


def make_task(name):
  """A task by name: a built-in one (TASKS) or the one a user's factory
  returns ('package.module:factory', called with no arguments), checked
  against the task contract (tasks.contract)."""
  if ":" in name:
    task = memtk.factories.import_factory(name, "task")()
  elif name in TASKS:
    task = TASKS[name]()
  else:
    raise ValueError(f"task must be one of {sorted(TASKS)} or a "
                     f"'package.module:factory' path, got {name!r}")
  contract.check_task(task, name)
  return task


def trained_bits(record):
  """The error of the model its batches train, from a history record: with
  greedy hard choices, or run softly while the soft-to-hard curriculum's
  hold runs soft batches only (whichever is lower: a soft phase that has
  found the algorithm is a solved model for the learning rate, whatever
  greedy hard choices make of it yet). Once hard batches start (the fade)
  the error-scaled rate starts its lowest error again from the hard one
  (soft_phase), so the fade is trained at the hard error's rate."""
  return min(record["bits_per_sequence"],
             record.get("soft_bits_per_sequence", math.inf))


def current_phase(history):
  """The records of the phase of training a run's history ended in
  (soft_phase of its last record), and that phase (None: no records)."""
  phase = soft_phase(history[-1]) if history else None
  return [r for r in history if soft_phase(r) == phase], phase


def decay_start(config, history):
  """The step of the first evaluation of the current phase below
  config['lr_decay_below'] bit errors per sequence (trained_bits; where
  memtk.training.DecayOnSolve starts), or None."""
  records, _ = current_phase(history)
  return next((r["step"] for r in records
               if trained_bits(r) < config["lr_decay_below"]), None)


def _half_life_callback(config, history):
  return memtk.training.DecayOnSolve(
      below=config["lr_decay_below"], half_life=config["lr_half_life"],
      floor=config["lr_floor"], monitor=TRAINED_MONITOR,
      start_step=decay_start(config, history),
      phase_monitor=PHASE_MONITOR, phase=current_phase(history)[1])


def soft_phase(record):
  """1.0 for a history record made while a hard model's curriculum held
  every batch soft (it holds the error run softly), else 0.0."""
  return float("soft_bits_per_sequence" in record)


def _error_scaled_callback(config, history):
  records, phase = current_phase(history)
  return memtk.training.ErrorScaledRate(
      below=config["lr_decay_below"], floor=config["lr_floor"],
      power=config["lr_error_power"], monitor=TRAINED_MONITOR,
      best=min((trained_bits(r) for r in records), default=None),
      phase_monitor=PHASE_MONITOR, phase=phase)


# The learning-rate schedules by name (config["lr_schedule"]).
LR_SCHEDULES = {"half_life": _half_life_callback,
                "error": _error_scaled_callback}


def decay_callback(config, history):
  """The recipe's learning-rate callback for a run config, resumed from its
  history; it watches TRAINED_MONITOR (trained_bits), which
  EvaluateAndCheckpoint puts in the epoch's logs."""
  config = {**DEFAULT_CONFIG, **config}
  return LR_SCHEDULES[config["lr_schedule"]](config, history)


EVAL_MONITOR = "eval_bit_errors"
SOFT_EVAL_MONITOR = "eval_soft_bit_errors"  # a hard model run softly
PHASE_MONITOR = "eval_soft_phase"  # soft_phase: 1 during the soft hold
TRAINED_MONITOR = "eval_trained_bit_errors"  # trained_bits: the rate's


# The config changes that make each method the benchmarks compare.
METHODS = {
    "soft": {"addressing": "soft"},
    "reinforce": {"addressing": "hard", "estimator": "reinforce",
                  **SOFT_TO_HARD},
    # Hard from the first step: no soft batch at all.
    "reinforce_scratch": {"addressing": "hard", "estimator": "reinforce",
                          "soft_curriculum_hold": 0,
                          "soft_curriculum_steps": 0, **FROM_SCRATCH},
    "gumbel": {"addressing": "hard", "estimator": "gumbel", **SOFT_TO_HARD},
    # REINFORCE whose hard batches find the written rows in the index
    # (memtk.hard_index; its soft batches scan).
    "reinforce_written": {"addressing": "hard", "estimator": "reinforce",
                          **SOFT_TO_HARD, "content_index": "written"},
    "sparse": {"addressing": "sparse", "sparse_k": 8},
    "sparse_k2": {"addressing": "sparse", "sparse_k": 2},
    # K = 8 with content lookups through memtk.content_index's indexes.
    "sparse_written": {"addressing": "sparse", "sparse_k": 8,
                       "content_index": "written"},
    "sparse_hash": {"addressing": "sparse", "sparse_k": 8,
                    "content_index": "hash"},
    "lstm": {"model": "lstm"},
}


def check_method(method):
  """Raises ValueError unless `method` is one of METHODS."""
  if method not in METHODS:
    raise ValueError(f"--methods entries must be among {sorted(METHODS)}, "
                     f"got {method!r}")


STRATEGIES = ("default", "mirrored", "multi_worker")


def make_strategy(name):
  """A tf.distribute strategy by name.

  'default' runs on one device; 'mirrored' replicates the model on every local
  device (GPUs, or logical CPUs) and splits each batch between them;
  'multi_worker' does the same across the machines named in the TF_CONFIG
  environment variable (one process per worker; without TF_CONFIG, one
  local worker).
  """
  if name == "default":
    return tf.distribute.get_strategy()
  if name == "mirrored":
    return tf.distribute.MirroredStrategy()
  if name == "multi_worker":
    return tf.distribute.MultiWorkerMirroredStrategy()
  raise ValueError(f"strategy must be one of {STRATEGIES}, got {name!r}")


def make_model(config, task, strategy=None):
  """The NTM and its compiled optimiser for a run config (see DEFAULT_CONFIG).

  Keys missing from `config` (runs saved before they existed) take their
  DEFAULT_CONFIG values. Under a `strategy` with several replicas the train
  step runs without XLA (XLA cannot reach variables mirrored on other
  devices).
  """
  config = {**DEFAULT_CONFIG, **config}
  strategy = strategy or tf.distribute.get_strategy()
  replicas = strategy.num_replicas_in_sync
  with strategy.scope():
    return _make_model(config, task, jit_compile=replicas == 1)


MODELS = ("ntm", "lstm")


def _ntm(config, task):
  return memtk.NTM(
      config["controller"], task.output_size,
      memory_size=config["memory_size"], word_size=config["word_size"],
      num_read_heads=config["num_read_heads"],
      num_write_heads=config["num_write_heads"],
      shift_range=config["shift_range"], memory_init=config["memory_init"],
      controller_units=config["controller_units"],
      addressing=config["addressing"],
      # Runs saved before the option existed had content addressing.
      content_addressing=config.get("content_addressing", True),
      gate_bias=config["gate_bias"], gamma_bias=config["gamma_bias"],
      # Runs saved before the option existed had no shift bias.
      shift_bias=config.get("shift_bias", 0.0),
      sparse_k=config["sparse_k"],
      # None (runs saved before it existed, and new runs): min(N, 128).
      initial_window=config.get("initial_window"),
      # Runs saved before the option existed scored empty rows by cosine;
      # its first form, skip_empty_rows=True, is empty_rows_as=0.
      empty_rows_as=config.get(
          "empty_rows_as", 0.0 if config.get("skip_empty_rows") else None),
      content_index=config.get("content_index"),
      **{key: config[key] for key in HARD_DEFAULTS})


def baseline_size(config, task):
  """(units, parameters of the NTM the config describes) of the LSTM
  baseline that stands beside that NTM: the width whose parameter count comes
  closest to the NTM's."""
  ntm = _ntm({**DEFAULT_CONFIG, **config, "model": "ntm"}, task)
  ntm.build((None, None, task.input_size))
  parameters = ntm.count_params()
  return memtk.baseline.units_for_parameters(
      parameters, task.input_size, task.output_size), parameters


def _make_model(config, task, jit_compile):
  if config["model"] not in MODELS:
    raise ValueError(f"model must be one of {MODELS}, got {config['model']!r}")
  if config["model"] == "lstm":
    units, _ = baseline_size(config, task)
    model = memtk.LSTMBaseline(task.output_size, units, name="lstm_baseline")
  else:
    model = _ntm(config, task)
  model.build((None, None, task.input_size))
  optimizer = memtk.training.default_optimizer(
      config["learning_rate"], config["clip_norm"], config["amsgrad"])
  # The rate schedule (ErrorScaledRate on the held-out error) does what
  # compile's scale_steps does on the training error: not both. The plain
  # loss, without compile()'s margin, and no restore_best: the recipe's
  # tables were measured without them.
  model.compile(optimizer=optimizer, jit_compile=jit_compile,
                loss=memtk.metrics.masked_sigmoid_cross_entropy(),
                steps_per_execution=config.get("steps_per_execution", 1),
                scale_steps=False, restore_best=False)
  optimizer.build(model.trainable_variables)
  return model


def train_batches(task, seed, batch_size, start_step, curriculum=None):
  """Endless (inputs, targets, mask) batches from training step `start_step`.

  Batch k depends only on (seed, k) and, with an adaptive curriculum, on the
  level decided for its period, so a resumed run sees the same stream. A
  task's optional train_sample (its training distribution, where it differs
  from the test one) is used in place of sample. A length curriculum
  (tasks.curriculum: Linear or Adaptive) needs a sampler that takes a
  difficulty.
  """
  sample = getattr(task, "train_sample", task.sample)
  if curriculum is not None and not contract.takes_difficulty(task):
    raise ValueError(f"a length curriculum needs a task whose sample takes a "
                     f"difficulty; {task.name!r} does not")
  step = start_step
  while True:
    rng = np.random.default_rng([seed, TRAIN_STREAM, step])
    if curriculum is None:
      yield sample(rng, batch_size)
    else:
      yield curriculum.batch(sample, rng, batch_size, step)
    step += 1


def make_curriculum(config, task, start_step, history, period):
  """The run's length curriculum (tasks.curriculum), or None: Adaptive with
  config['adaptive_curriculum'] > 0 (resumed at the level of the last
  evaluation in `history`), else Linear with config['curriculum_steps'] > 0.
  `period` is the run's steps between evaluations."""
  config = {**DEFAULT_CONFIG, **config}
  if config["adaptive_curriculum"]:
    level = history[-1]["curriculum_level"] if history else 1
    return curriculum_lib.Adaptive(
        config["adaptive_curriculum"], getattr(task, "max_size", 10), period,
        start_step, level, full_share=config["curriculum_full_share"])
  if config["curriculum_steps"]:
    return curriculum_lib.Linear(config["curriculum_steps"])
  return None


def train_dataset(task, seed, batch_size, start_step, curriculum=None):
  """train_batches as a tf.data stream; a task without a fixed num_steps
  gives batches of any length (one compiled step per length)."""
  steps = getattr(task, "num_steps", None)
  signature = (
      tf.TensorSpec((batch_size, steps, task.input_size), tf.float32),
      tf.TensorSpec((batch_size, steps, task.output_size), tf.float32),
      tf.TensorSpec((batch_size, steps), tf.float32))
  return tf.data.Dataset.from_generator(
      lambda: train_batches(task, seed, batch_size, start_step, curriculum),
      output_signature=signature).prefetch(4)


class Evaluator:
  """A task's error per sequence (bit errors unless the task has its own
  measure, tasks.contract) of a model on fresh sequences, XLA-compiled.

  `choice` ('greedy' or 'sample') picks how a hard model chooses its cells;
  None is the model's default (soft, or greedy for a hard model).
  """

  def __init__(self, model, choice=None):
    self.model = model
    self._forward = tf.function(lambda x: model(x, choice=choice),
                                jit_compile=model.jit_compile,
                                reduce_retracing=True)

  def errors(self, inputs, targets, mask, batch_size=500, task=None):
    """[num_sequences] the error of each sequence: `task`'s measure, or bit
    errors without a task."""
    out = []
    for i in range(0, len(inputs), batch_size):
      part = slice(i, i + batch_size)
      logits = self._forward(tf.constant(inputs[part]))
      out.append(contract.sequence_errors(task, logits, inputs[part],
                                          targets[part], mask[part]))
    return np.concatenate(out)

  def bits_per_sequence(self, task, seed, stream, index, num_sequences=1000,
                        difficulty=None):
    """The task's mean error per sequence (bit errors for most tasks) over
    `num_sequences` fresh sequences (at a curriculum `difficulty`, or the
    test distribution)."""
    rng = np.random.default_rng([seed, stream, index])
    if difficulty is None:
      batch = task.sample(rng, num_sequences)
    else:
      batch = contract.level_sampler(task)(rng, num_sequences, difficulty)
    return float(np.mean(self.errors(*batch, task=task)))


def save_json(path, data):
  tmp = path + ".tmp"
  with open(tmp, "w") as f:
    json.dump(data, f, indent=2)
  os.replace(tmp, path)


def checkpoint_dir(logdir):
  """Where tasks.train keeps a run's checkpoints."""
  return os.path.join(logdir, "checkpoints")


def latest_checkpoint(logdir):
  """The newest checkpoint of the run in `logdir`, or None."""
  return tf.train.latest_checkpoint(checkpoint_dir(logdir))


def load_json(path):
  with open(path) as f:
    return json.load(f)
