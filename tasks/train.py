r"""Trains an NTM on an algorithmic task through `model.fit`.

  python -m tasks.train                       # copy, the default recipe
  python -m tasks.train --task=associative_recall --logdir=runs/recall

Prints progress (step, loss, bit errors per sequence, sequences/s, ETA),
evaluates on fresh held-out sequences every --eval_every steps, saves a
checkpoint after each evaluation, stops once converged (--target_bits reached
on --converge_evals evaluations in a row), then evaluates generalisation to
longer sequences and writes heat maps. Rerunning the same command in the same
--logdir resumes from the last checkpoint with the same data stream.
"""

import math
import os
import sys
import time

from absl import app
from absl import flags
from absl import logging
import keras
import numpy as np
import tensorflow as tf

import memtk

from tasks import common
from tasks import contract
from tasks import curriculum as curriculum_lib
from tasks import evaluation
from tasks import summaries as summaries_lib

_D = common.DEFAULT_CONFIG  # the default recipe

# --- task and model ---
_TASK = flags.DEFINE_string(
    "task", _D["task"], f"Task: one of {', '.join(sorted(common.TASKS))}, or "
    "package.module:factory, a function of no arguments that returns your "
    "own task (see tasks/contract.py and tasks/reverse.py).")
_MODEL = flags.DEFINE_enum(
    "model", _D["model"], list(common.MODELS), "ntm: the memory model; lstm: "
    "the baseline, an LSTM with no external memory sized to the parameter "
    "count of the NTM the other flags describe.")
_CONTROLLER = flags.DEFINE_string(
    "controller", _D["controller"], "Controller: lstm, gru, feedforward, or "
    "package.module:factory, a function of --controller_units that returns "
    "your own controller layer (see tasks/custom_controller.py).")
_CONTROLLER_UNITS = flags.DEFINE_integer(
    "controller_units", _D["controller_units"], "Units of the controller.")
_MEMORY_SIZE = flags.DEFINE_integer("memory_size", _D["memory_size"], "N, memory cells.")
_WORD_SIZE = flags.DEFINE_integer("word_size", _D["word_size"], "W, width of a cell.")
_NUM_READ_HEADS = flags.DEFINE_integer("num_read_heads", _D["num_read_heads"], "Read heads.")
_NUM_WRITE_HEADS = flags.DEFINE_integer("num_write_heads", _D["num_write_heads"], "Write heads.")
_SHIFT_RANGE = flags.DEFINE_integer(
    "shift_range", _D["shift_range"], "Largest shift offset (S = 2 * shift_range + 1).")
_MEMORY_INIT = flags.DEFINE_string(
    "memory_init", _D["memory_init"], "Memory initialisation: constant (1e-6), "
    "learned or random.")
_CONTENT_ADDRESSING = flags.DEFINE_boolean(
    "content_addressing", _D["content_addressing"], "Heads address by content "
    "(and shift); --nocontent_addressing: heads only shift from cell 0.")
_EMPTY_ROWS_AS = flags.DEFINE_float(
    "empty_rows_as", _D["empty_rows_as"], "Content lookups weigh each row by "
    "how much it holds (never-written rows take no weight) beside a sink of "
    "this many rows of cosine 0 that takes the share no written row matches, "
    "at any memory size (unset: the NTM paper's lookup, where each unused "
    "row counts; memtk.addressing).")
_GATE_BIAS = flags.DEFINE_float(
    "gate_bias", _D["gate_bias"], "Initial bias of every head's "
    "interpolation gate (negative: heads start from their previous weighting).")
_GAMMA_BIAS = flags.DEFINE_float(
    "gamma_bias", _D["gamma_bias"], "Initial bias of every head's sharpening "
    "exponent, gamma = 1 + softplus(.).")
_SHIFT_BIAS = flags.DEFINE_float(
    "shift_bias", _D["shift_bias"], "Initial bias of every head's shift "
    "logit of offset +1 (positive: heads start by moving to the next cell).")

# --- access mode ---
_ADDRESSING = flags.DEFINE_enum(
    "addressing", _D["addressing"], ["soft", "hard", "sparse"], "soft: every "
    "head blends all cells; hard: every head reads and writes one sampled "
    "cell; sparse: every head blends its --sparse_k best cells.")
_SPARSE_K = flags.DEFINE_integer(
    "sparse_k", _D["sparse_k"], "K, the cells a sparse head attends to "
    "(--addressing=sparse only).")
_CONTENT_INDEX = flags.DEFINE_enum(
    "content_index", _D["content_index"], list(memtk.content_index.KINDS),
    "Sparse heads look keys up in an index kept in the step's state instead "
    "of scanning every row: written (only the rows written so far; exact) "
    "or hash (random-hyperplane tables; approximate); unset: the scan "
    "(memtk.content_index). Hard heads take written: their sampled and "
    "greedy steps compute the distribution over all cells from the written "
    "rows (memtk.hard_index).")

# --- hard addressing (used with --addressing=hard only) ---
_ESTIMATOR = flags.DEFINE_enum(
    "estimator", _D["estimator"], list(memtk.estimators.ESTIMATORS),
    "Gradient estimator of the hard choices.")
_ENTROPY_BONUS = flags.DEFINE_float(
    "entropy_bonus", _D["entropy_bonus"], "Weight of the addressing entropy "
    "bonus at step 0; falls linearly to 0 over --entropy_steps.")
_ENTROPY_STEPS = flags.DEFINE_integer(
    "entropy_steps", _D["entropy_steps"], "Steps of the entropy bonus schedule.")
_TEMPERATURE = flags.DEFINE_float(
    "temperature", _D["temperature"], "Gumbel-softmax temperature at step 0.")
_TEMPERATURE_FINAL = flags.DEFINE_float(
    "temperature_final", _D["temperature_final"], "Gumbel-softmax temperature "
    "reached (geometrically) after --temperature_steps.")
_TEMPERATURE_STEPS = flags.DEFINE_integer(
    "temperature_steps", _D["temperature_steps"], "Steps of the temperature "
    "schedule.")
_GUMBEL_WRITES = flags.DEFINE_enum(
    "gumbel_writes", _D["gumbel_writes"], list(memtk.estimators.GUMBEL_WRITES),
    "Gumbel: a write head's relaxed gradient reaches only the cell it wrote "
    "(chosen), or every cell (relaxed: explodes through the content scores "
    "of nearly empty rows; benchmarks/gumbel_gradients.py).")
_GUMBEL_FORWARD = flags.DEFINE_enum(
    "gumbel_forward", _D["gumbel_forward"],
    list(memtk.estimators.GUMBEL_FORWARDS), "Gumbel: "
    "the forward pass uses the Gumbel-max sample (sample), or each head's "
    "most likely cell (greedy: no sampling noise in the forward pass; "
    "docs/soft_vs_hard.md).")
_SOFT_CURRICULUM_HOLD = flags.DEFINE_integer(
    "soft_curriculum_hold", _D["soft_curriculum_hold"], "Soft-to-hard "
    "curriculum: every batch runs soft for at most this many steps first "
    "(fewer with --soft_curriculum_until).")
_SOFT_CURRICULUM_UNTIL = flags.DEFINE_float(
    "soft_curriculum_until", _D["soft_curriculum_until"], "Soft-to-hard "
    "curriculum: the hold ends early, at the first evaluation (greedy hard "
    "choices) below this many bit errors per sequence (0: it lasts "
    "--soft_curriculum_hold steps).")
_SOFT_CURRICULUM_UNTIL_SOFT = flags.DEFINE_float(
    "soft_curriculum_until_soft", _D["soft_curriculum_until_soft"],
    "Soft-to-hard curriculum: the hold also ends at the first evaluation whose "
    "error with the model run softly is below this many bit errors per "
    "sequence (0: only the greedy hard error counts).")
_SOFT_CURRICULUM_STEPS = flags.DEFINE_integer(
    "soft_curriculum_steps", _D["soft_curriculum_steps"], "Soft-to-hard "
    "curriculum: after the hold, a batch runs soft with a probability falling "
    "linearly from 1 to 0 over this many steps; purely hard from then on.")

_REINFORCE_SAMPLES = flags.DEFINE_integer(
    "reinforce_samples", _D["reinforce_samples"], "REINFORCE: every training "
    "sequence runs this many times with independent choices, each run's "
    "return centred on the others' mean (leave-one-out baseline); a step "
    "costs this many times the runs.")

_READ_DISCOUNT = flags.DEFINE_float(
    "read_discount", _D["read_discount"], "REINFORCE: a read head's choice "
    "at step t is credited with the rewards from t on discounted by this "
    "per step, centred on the other sequences of the batch at the same "
    "step (1: the write heads' undiscounted, baseline-centred return).")
_READ_REWARD = flags.DEFINE_float(
    "read_reward", _D["read_reward"], "REINFORCE: a read head's signal "
    "(and with --read_reward_heads=all the write heads') gains this much "
    "per read of a --read_reward_cells cell (centred on the other "
    "sequences; 0: off). A hard run with no soft batch takes "
    "tasks.common.FROM_SCRATCH's value unless this flag is given.")
_READ_REWARD_CELLS = flags.DEFINE_enum(
    "read_reward_cells", _D["read_reward_cells"],
    list(memtk.estimators.READ_REWARD_CELLS), "answer: a read of the cell "
    "whose latest write carried the answer's vector (as an input), credited "
    "to the choices up to it; written: a read of any cell written before "
    "the answers, credited to its own step.")
_READ_REWARD_HEADS = flags.DEFINE_enum(
    "read_reward_heads", _D["read_reward_heads"],
    list(memtk.estimators.READ_REWARD_HEADS), "all: the read reward's "
    "credit adds to the write heads' signal too (summed over the read "
    "heads); read: to the read heads' only.")

# --- optimisation ---
_BATCH_SIZE = flags.DEFINE_integer("batch_size", _D["batch_size"], "Sequences per step.")
_LEARNING_RATE = flags.DEFINE_float("learning_rate", _D["learning_rate"], "Adam step size.")
_CURRICULUM_STEPS = flags.DEFINE_integer(
    "curriculum_steps", _D["curriculum_steps"], "Steps over which the longest "
    "training sequence (copy length, recall items) grows linearly from the "
    "shortest to the full size (0: full size from the start).")
_ADAPTIVE_CURRICULUM = flags.DEFINE_float(
    "adaptive_curriculum", _D["adaptive_curriculum"], "Adaptive length "
    "curriculum (tasks/curriculum.py): training starts at the shortest "
    "sizes and the size cap rises one level at each evaluation whose error "
    "per sequence at the current cap is below this; batches mix sizes at, "
    "below and above the cap (0: off). A hard run with no soft batch takes "
    "tasks.common.FROM_SCRATCH's value, and repeat copy "
    "tasks.common.TASK_SETTINGS', unless this flag is given.")
_CURRICULUM_FULL_SHARE = flags.DEFINE_float(
    "curriculum_full_share", _D["curriculum_full_share"], "The share of an "
    "adaptive curriculum's sequences drawn over the full size range (the "
    "rest of what is not at the level goes below it); at most 0.35.")
_LR_SCHEDULE = flags.DEFINE_enum(
    "lr_schedule", _D["lr_schedule"], sorted(common.LR_SCHEDULES),
    "half_life: from the first evaluation below --lr_decay_below the learning "
    "rate halves every --lr_half_life steps; error: the rate is the initial "
    "one times (the lowest evaluated bit errors so far / --lr_decay_below) "
    "to the power --lr_error_power. Both stay at or above --lr_floor times the initial rate.")
_LR_HALF_LIFE = flags.DEFINE_integer(
    "lr_half_life", _D["lr_half_life"], "Once decaying, the learning rate "
    "halves every this many steps (0: constant; --lr_schedule=half_life).")
_LR_DECAY_BELOW = flags.DEFINE_float(
    "lr_decay_below", _D["lr_decay_below"], "The decay starts at the first "
    "evaluation below this many bit errors per sequence.")
_LR_FLOOR = flags.DEFINE_float(
    "lr_floor", _D["lr_floor"], "The learning rate never falls below this "
    "times its initial value.")
_LR_ERROR_POWER = flags.DEFINE_float(
    "lr_error_power", _D["lr_error_power"], "How steeply the rate follows "
    "the error (--lr_schedule=error): 1 proportional, 0.5 its square root.")
_CLIP_NORM = flags.DEFINE_float(
    "clip_norm", _D["clip_norm"], "Gradients are clipped to this global norm.")
_AMSGRAD = flags.DEFINE_bool(
    "amsgrad", _D["amsgrad"], "Adam's AMSGrad variant: steps shrink as the "
    "gradients do once a task is nearly solved (default: plain Adam).")
_MAX_STEPS = flags.DEFINE_integer(
    "max_steps", 10000, "Stop after this many steps if not converged.")
_MAX_MINUTES = flags.DEFINE_float(
    "max_minutes", 6.0, "Stop after this much training time, checked at each "
    "evaluation (0: no limit).")
_SEED = flags.DEFINE_integer("seed", _D["seed"], "Seeds the weights and the data.")
_STRATEGY = flags.DEFINE_enum(
    "strategy", "default", list(common.STRATEGIES), "tf.distribute strategy: "
    "default (one device), mirrored (every local device), multi_worker "
    "(the workers in TF_CONFIG). --batch_size is the global batch.")
_DETERMINISTIC = flags.DEFINE_bool(
    "deterministic", False, "Enable TensorFlow op determinism: the same "
    "command gives the same losses, also across a kill and resume (slower).")
_THREADS = flags.DEFINE_integer(
    "threads", 1, "Threads each TensorFlow op runs on (0: TensorFlow's "
    "choice, one per core, or what TF_NUM_INTRAOP_THREADS says). At the "
    "default sizes a step is a chain of small kernels that one thread runs "
    "as fast as two, and on two threads runs sometimes fall to 0.6x that "
    "pace (docs/cost.md); use 0 for large memories or batches.")
_STEPS_PER_EXECUTION = flags.DEFINE_integer(
    "steps_per_execution", 10, "Train steps per compiled call (less Python "
    "overhead; progress is reported at this granularity).")

# --- evaluation, convergence and output ---
_LOGDIR = flags.DEFINE_string(
    "logdir", "runs/copy", "Checkpoints, config, history and heat maps.")
_EVAL_EVERY = flags.DEFINE_integer(
    "eval_every", 200, "Steps between evaluations and checkpoints.")
_EVAL_SEQUENCES = flags.DEFINE_integer(
    "eval_sequences", 1000, "Fresh held-out sequences per evaluation.")
_TEST_SEQUENCES = flags.DEFINE_integer(
    "test_sequences", 10000, "Fresh test sequences of the training sizes in "
    "the final test (--eval_sequences per generalisation size).")
_TARGET_BITS = flags.DEFINE_float(
    "target_bits", 0.05, "Converged below this many bit errors per sequence "
    "(half the 0.1 success line, so the final test on other fresh sequences "
    "lands below it too).")
_CONVERGE_EVALS = flags.DEFINE_integer(
    "converge_evals", 3, "Evaluations in a row below --target_bits needed to "
    "stop (a single dip is not convergence).")
_LOG_EVERY = flags.DEFINE_integer(
    "log_every", 100, "Steps between progress lines.")
_TENSORBOARD = flags.DEFINE_bool(
    "tensorboard", True, "Write TensorBoard scalars and attention heat maps "
    "to <logdir>/tensorboard at every evaluation.")
_FINAL_EVAL = flags.DEFINE_bool(
    "final_eval", True, "Evaluate generalisation and write heat maps at the end.")
_EVAL_MEMORY_SIZE = flags.DEFINE_integer(
    "eval_memory_size", None, "Memory cells for the final evaluation (default: "
    "--memory_size): generalisation to inputs longer than the training "
    "memory holds, e.g. --eval_memory_size=1024 --generalisation_sizes=200,500.")
_GENERALISATION_SIZES = flags.DEFINE_list(
    "generalisation_sizes", None, "Sizes for the final evaluation (copy "
    "lengths or recall item counts); default: the task's own.")


def config_from_flags():
  """The run config, with every flag checked before any work starts."""
  _check_numbers()
  task = common.make_task(_TASK.value)
  _check_task_flags(task)
  return _config(task)


def _check_numbers():
  """Raises ValueError naming the first numeric flag out of its range."""
  for flag in (_CONTROLLER_UNITS, _MEMORY_SIZE, _WORD_SIZE, _NUM_READ_HEADS,
               _NUM_WRITE_HEADS, _SPARSE_K, _BATCH_SIZE, _MAX_STEPS,
               _STEPS_PER_EXECUTION, _EVAL_EVERY, _EVAL_SEQUENCES, _TEST_SEQUENCES, _CONVERGE_EVALS,
               _LOG_EVERY):
    if flag.value < 1:
      raise ValueError(f"--{flag.name} must be >= 1, got {flag.value}")
  if _SHIFT_RANGE.value < 0:
    raise ValueError(f"--shift_range must be >= 0, got {_SHIFT_RANGE.value}")
  for flag in (_LEARNING_RATE, _CLIP_NORM, _TARGET_BITS, _LR_DECAY_BELOW):
    if not flag.value > 0:
      raise ValueError(f"--{flag.name} must be > 0, got {flag.value}")
  for flag in (_SOFT_CURRICULUM_UNTIL, _SOFT_CURRICULUM_UNTIL_SOFT):
    if flag.value < 0:
      raise ValueError(f"--{flag.name} must be >= 0, got {flag.value}")
  if _CURRICULUM_STEPS.value < 0:
    raise ValueError(
        f"--curriculum_steps must be >= 0, got {_CURRICULUM_STEPS.value}")
  if _ADAPTIVE_CURRICULUM.value < 0:
    raise ValueError(f"--adaptive_curriculum must be >= 0, got "
                     f"{_ADAPTIVE_CURRICULUM.value}")
  curriculum_lib.check_full_share(_CURRICULUM_FULL_SHARE.value,
                                  "--curriculum_full_share")
  if _ADAPTIVE_CURRICULUM.value and _CURRICULUM_STEPS.value:
    raise ValueError(
        f"--adaptive_curriculum={_ADAPTIVE_CURRICULUM.value} and "
        f"--curriculum_steps={_CURRICULUM_STEPS.value} are two length "
        "curricula; pass one")
  if not 0 < _LR_FLOOR.value <= 1:
    raise ValueError(f"--lr_floor must be in (0, 1], got {_LR_FLOOR.value}")
  if not _LR_ERROR_POWER.value > 0:
    raise ValueError(
        f"--lr_error_power must be > 0, got {_LR_ERROR_POWER.value}")
  if _LR_HALF_LIFE.value < 0:
    raise ValueError(f"--lr_half_life must be >= 0, got {_LR_HALF_LIFE.value}")
  if _EVAL_MEMORY_SIZE.value is not None and _EVAL_MEMORY_SIZE.value < 1:
    raise ValueError(
        f"--eval_memory_size must be >= 1, got {_EVAL_MEMORY_SIZE.value}")
  if _MAX_MINUTES.value < 0:
    raise ValueError(f"--max_minutes must be >= 0, got {_MAX_MINUTES.value}")
  if _EVAL_EVERY.value % _STEPS_PER_EXECUTION.value:
    raise ValueError(
        f"--eval_every={_EVAL_EVERY.value} must be a multiple of "
        f"--steps_per_execution={_STEPS_PER_EXECUTION.value}")


def _check_task_flags(task):
  """Raises ValueError when a flag asks `task` for a part it lacks."""
  if _GENERALISATION_SIZES.value and not contract.generalises(task):
    raise ValueError(f"--generalisation_sizes: task {_TASK.value!r} has no "
                     "variant(size) and generalisation_sizes")
  for size in _GENERALISATION_SIZES.value or ():
    if not size.isdigit():
      raise ValueError(f"--generalisation_sizes must be positive ints, got "
                       f"{_GENERALISATION_SIZES.value}")
    task.variant(int(size))
  for flag in (_CURRICULUM_STEPS, _ADAPTIVE_CURRICULUM):
    if flag.value and not contract.takes_difficulty(task):
      raise ValueError(
          f"--{flag.name}={flag.value} needs a task whose sample takes a "
          f"difficulty; task {_TASK.value!r} does not")


def _config(task):
  """The run config of the (checked) flags; for the flags not given, the
  task's common.TASK_SETTINGS, and a hard run with no soft batch takes
  common.FROM_SCRATCH (where they apply: common.from_scratch_settings)."""
  config = _flag_config()
  config.update(_not_given(common.task_settings(config)))
  config.update(_not_given(common.from_scratch_settings(
      config, contract.takes_difficulty(task))))
  return config


def _not_given(settings):
  """The settings whose flags were not given on the command line."""
  return {key: value for key, value in settings.items()
          if not flags.FLAGS[key].present}


def _flag_config():
  return {
      "task": _TASK.value,
      "model": _MODEL.value,
      "controller": _CONTROLLER.value,
      "controller_units": _CONTROLLER_UNITS.value,
      "memory_size": _MEMORY_SIZE.value,
      "word_size": _WORD_SIZE.value,
      "num_read_heads": _NUM_READ_HEADS.value,
      "num_write_heads": _NUM_WRITE_HEADS.value,
      "shift_range": _SHIFT_RANGE.value,
      "memory_init": _MEMORY_INIT.value,
      "content_addressing": _CONTENT_ADDRESSING.value,
      "empty_rows_as": _EMPTY_ROWS_AS.value,
      "gate_bias": _GATE_BIAS.value,
      "gamma_bias": _GAMMA_BIAS.value,
      "shift_bias": _SHIFT_BIAS.value,
      "addressing": _ADDRESSING.value,
      "sparse_k": _SPARSE_K.value,
      "content_index": _CONTENT_INDEX.value,
      "estimator": _ESTIMATOR.value,
      "entropy_bonus": _ENTROPY_BONUS.value,
      "entropy_steps": _ENTROPY_STEPS.value,
      "temperature": _TEMPERATURE.value,
      "temperature_final": _TEMPERATURE_FINAL.value,
      "temperature_steps": _TEMPERATURE_STEPS.value,
      "gumbel_writes": _GUMBEL_WRITES.value,
      "gumbel_forward": _GUMBEL_FORWARD.value,
      "soft_curriculum_hold": _SOFT_CURRICULUM_HOLD.value,
      "soft_curriculum_steps": _SOFT_CURRICULUM_STEPS.value,
      "soft_curriculum_until": _SOFT_CURRICULUM_UNTIL.value,
      "soft_curriculum_until_soft": _SOFT_CURRICULUM_UNTIL_SOFT.value,
      "stats_decay": _D["stats_decay"],
      "reinforce_samples": _REINFORCE_SAMPLES.value,
      "read_discount": _READ_DISCOUNT.value,
      "read_reward": _READ_REWARD.value,
      "read_reward_cells": _READ_REWARD_CELLS.value,
      "read_reward_heads": _READ_REWARD_HEADS.value,
      "batch_size": _BATCH_SIZE.value,
      "learning_rate": _LEARNING_RATE.value,
      "lr_schedule": _LR_SCHEDULE.value,
      "lr_half_life": _LR_HALF_LIFE.value,
      "lr_decay_below": _LR_DECAY_BELOW.value,
      "lr_floor": _LR_FLOOR.value,
      "lr_error_power": _LR_ERROR_POWER.value,
      "curriculum_steps": _CURRICULUM_STEPS.value,
      "adaptive_curriculum": _ADAPTIVE_CURRICULUM.value,
      "curriculum_full_share": _CURRICULUM_FULL_SHARE.value,
      "clip_norm": _CLIP_NORM.value,
      "amsgrad": _AMSGRAD.value,
      "seed": _SEED.value,
      "steps_per_execution": _STEPS_PER_EXECUTION.value,
  }


def describe_model(config, task, model):
  """One line on the model a run trains, with its parameter count."""
  parameters = f"{model.count_params():,} parameters"
  if config["model"] == "lstm":
    _, ntm_parameters = common.baseline_size(config, task)
    return (f"LSTM baseline: {model.units} units, no external memory, "
            f"{parameters} (the NTM of these settings: {ntm_parameters:,})")
  mode = config["addressing"]
  index = config.get("content_index")
  index = f", content index {index!r}" if index else ""
  if mode == "hard":
    mode += f" ({config['estimator']}{index})"
  elif mode == "sparse":
    mode += f" (K={config['sparse_k']}{index})"
  return (f"{mode} addressing: {config['controller']} controller, "
          f"N={config['memory_size']} W={config['word_size']}, {parameters}")


def _duration(seconds):
  seconds = int(seconds)
  return (f"{seconds // 3600}h{seconds % 3600 // 60:02d}m" if seconds >= 3600
          else f"{seconds // 60}m{seconds % 60:02d}s")


class Progress(keras.callbacks.Callback):
  """Prints step, loss, training bit errors, sequences/s and ETA.

  The ETA is the sooner of --max_steps at the current rate and the time
  limit `max_seconds` of training time (0: none), of which `elapsed` seconds
  were spent before this process (a resumed run).
  """

  def __init__(self, every, max_steps, batch_size, log=print, max_seconds=0.0,
               elapsed=0.0):
    super().__init__()
    self.every, self.max_steps, self.batch_size = every, max_steps, batch_size
    self.log = log
    self.max_seconds, self.elapsed = max_seconds, elapsed
    self._last_step = None
    self._last_time = None
    self._start = None

  def on_train_begin(self, logs=None):
    self._last_step = int(self.model.optimizer.iterations.numpy())
    self._last_time = self._start = time.time()

  def eta(self, step, rate, now):
    """Seconds left: to max_steps at `rate` sequences/s, or to the time
    limit if that comes first."""
    eta = (self.max_steps - step) * self.batch_size / max(rate, 1e-9)
    if self.max_seconds:
      left = self.max_seconds - self.elapsed - (now - self._start)
      eta = min(eta, max(left, 0.0))
    return eta

  def on_train_batch_end(self, batch, logs=None):
    step = int(self.model.optimizer.iterations.numpy())
    if step - self._last_step < self.every:
      return
    now = time.time()
    rate = (step - self._last_step) * self.batch_size / (now - self._last_time)
    eta = self.eta(step, rate, now)
    logs = logs or {}
    self.log(f"step {step:6d}/{self.max_steps}  loss {logs.get('loss', 0):.4f}"
             f"  train bits/seq {logs.get('bit_errors', 0):7.3f}"
             f"  {rate:6.0f} seq/s  eta {_duration(eta)}")
    self._last_step, self._last_time = step, now


MAX_SKIPPED = 10  # skipped updates in one epoch that stop a run
DIAGNOSIS_SEQUENCES = 64  # the fixed batch of the per-evaluation diagnostics
LEVEL_SEQUENCES = 200  # fresh sequences per adaptive curriculum decision


def converged(history, target_bits, converge_evals, after_step=0):
  """Whether the last `converge_evals` evaluations were all below target.

  Only evaluations after `after_step` count (a hard run's soft-to-hard
  curriculum must be over: a model trained softly so far has not learned
  hard access, even if its greedy choices happen to work).
  """
  recent = [r["bits_per_sequence"] for r in history[-converge_evals:]
            if r["step"] > after_step]
  return len(recent) == converge_evals and max(recent) < target_bits


def curriculum_end(model):
  """The step after which a hard model trains purely hard (0 for models
  without a soft-to-hard curriculum); an evaluation counts towards
  convergence only after it."""
  return model.curriculum_end() if isinstance(model, memtk.NTM) else 0


def non_finite_variables(model):
  """Paths of the model's variables that hold NaN or Inf."""
  return [v.path for v in model.variables
          if "float" in str(v.dtype) and not np.all(np.isfinite(v.numpy()))]


class EvaluateAndCheckpoint(keras.callbacks.Callback):
  """After every epoch (eval_every steps): evaluate on fresh sequences, save a
  checkpoint and the history, and stop once converged."""

  def __init__(self, task, config, logdir, manager, history, num_sequences,
               target_bits, converge_evals, elapsed, max_seconds=0.0,
               summaries=None, log=print, max_skipped=MAX_SKIPPED,
               curriculum=None):
    super().__init__()
    self.curriculum = curriculum  # tasks.curriculum.Adaptive: decided here
    self.max_skipped = max_skipped
    self.summaries = summaries
    self.task, self.config, self.logdir = task, config, logdir
    self.manager, self.history = manager, history
    self.num_sequences = num_sequences
    self.target_bits, self.converge_evals = target_bits, converge_evals
    self.elapsed = elapsed
    self.max_seconds = max_seconds
    self.log = log
    self.evaluator = None
    self.end_hold = None  # memtk.training.EndSoftHold, for hard runs
    self.soft_evaluator = None  # the same model run softly, during the hold
    self.diagnose = True
    self.diverged_at = None  # the step whose loss was not finite, if any
    self.bad_tensors = []  # what was not finite then
    self._start = None

  def on_train_begin(self, logs=None):
    self.evaluator = common.Evaluator(self.model)
    until = self.config.get("soft_curriculum_until", 0.0)
    until_soft = self.config.get("soft_curriculum_until_soft", 0.0)
    if ((until or until_soft) and isinstance(self.model, memtk.NTM)
        and self.model.curriculum_end()):
      self.end_hold = memtk.training.EndSoftHold(
          until, monitor=common.EVAL_MONITOR, soft_below=until_soft,
          soft_monitor=common.SOFT_EVAL_MONITOR)
      self.end_hold.set_model(self.model)
      if until_soft:
        self.soft_evaluator = common.Evaluator(self.model, choice="soft")
    # Head statistics need heads: the LSTM baseline has none.
    self.diagnose = self.diagnose and isinstance(self.model, memtk.NTM)
    self._start = time.time() - self.elapsed

  def _diverged(self, logs):
    """Whether training went non-finite (now or before); records where.

    The train step skips an update whose loss or gradient is not finite;
    training stops once max_skipped updates were skipped in one epoch.
    """
    logs = logs or {}
    skipped = float(logs.get("skipped_steps", 0.0))
    if self.diverged_at is None and (
        not np.isfinite(float(logs.get("loss", 0.0)))
        or skipped >= self.max_skipped):
      self.diverged_at = int(self.model.optimizer.iterations.numpy())
      self.bad_tensors = non_finite_variables(self.model) or [
          f"the loss or its gradient in {skipped:.0f} skipped updates"]
    if self.diverged_at is not None:
      self.model.stop_training = True
    return self.diverged_at is not None

  def on_train_batch_end(self, batch, logs=None):
    self._diverged(logs)

  def _diagnose(self):
    """memtk.diagnostics on a fixed batch: what the heads do (head
    statistics) and the gradient norm of each part of the model."""
    rng = np.random.default_rng([self.config["seed"], common.DIAGNOSIS_STREAM])
    batch = self.task.sample(rng, DIAGNOSIS_SEQUENCES)
    stats = memtk.diagnostics.head_statistics(self.model, *batch)
    stats.update({f"grad_norm_{part}": value for part, value in
                  memtk.diagnostics.gradient_norms(self.model, *batch).items()})
    return stats

  def _decide_level(self, step):
    """The adaptive curriculum's decision at `step` (before the checkpoint,
    which a resumed run takes its level from): the error at the current
    level, and the level from here on."""
    before = self.curriculum.level
    level_bits = self.evaluator.bits_per_sequence(
        self.task, self.config["seed"], common.LEVEL_STREAM, step,
        LEVEL_SEQUENCES, difficulty=self.curriculum.difficulty())
    level = self.curriculum.decide(step, level_bits)
    if level != before:
      self.log(f"curriculum: {level_bits:.3f} at level {before} of "
               f"{self.curriculum.levels}; level {level} from step {step}")
    return {"curriculum_level": level, "level_bits_per_sequence": level_bits}

  def on_train_end(self, logs=None):
    if self.curriculum is not None and hasattr(self.curriculum, "close"):
      self.curriculum.close()

  def on_epoch_end(self, epoch, logs=None):
    if self._diverged(logs):
      return  # and no checkpoint of this state
    step = int(self.model.optimizer.iterations.numpy())
    logs = logs or {}
    bits = self.evaluator.bits_per_sequence(
        self.task, self.config["seed"], common.EVAL_STREAM, step,
        self.num_sequences)
    seconds = time.time() - self._start  # diagnostics not counted
    record = {"step": step,
              "sequences": step * self.config["batch_size"],
              "seconds": seconds,
              "loss": float(logs.get("loss", float("nan"))),
              "bits_per_sequence": bits,
              "learning_rate": float(self.model.optimizer.learning_rate.numpy()),
              "skipped_steps": float(logs.get("skipped_steps", 0.0))}
    if self.diagnose:
      record["heads"] = self._diagnose()
      self._start += time.time() - self._start - seconds
    if isinstance(self.curriculum, curriculum_lib.Adaptive):
      record.update(self._decide_level(step))
    if self.soft_evaluator is not None and step < self.model.hold_end():
      # During the soft hold: the same sequences with the model run softly.
      record["soft_bits_per_sequence"] = logs[common.SOFT_EVAL_MONITOR] = (
          self.soft_evaluator.bits_per_sequence(
              self.task, self.config["seed"], common.EVAL_STREAM, step,
              self.num_sequences))
    self.history.append(record)
    logs[common.EVAL_MONITOR] = bits
    # For the rate callback after this one.
    logs[common.TRAINED_MONITOR] = common.trained_bits(record)
    logs[common.PHASE_MONITOR] = common.soft_phase(record)
    if self.end_hold is not None:  # before the checkpoint, which keeps it
      self.end_hold.on_epoch_end(epoch, logs)
    # History first: a run killed between the two writes resumes from the
    # previous checkpoint and drops the record past it, so no step is lost.
    common.save_json(os.path.join(self.logdir, "history.json"), self.history)
    self.manager.save(checkpoint_number=step)
    if self.summaries is not None:
      self.summaries.write(self.model, record, logs)
    soft = (f" ({record['soft_bits_per_sequence']:.4f} run softly)"
            if "soft_bits_per_sequence" in record else "")
    self.log(f"eval  {step:6d}  {bits:.4f}{soft} {contract.error_name(self.task)}"
             f" on {self.num_sequences} fresh sequences  lr "
             f"{record['learning_rate']:.2g}  ({_duration(record['seconds'])}"
             " elapsed)")
    if converged(self.history, self.target_bits, self.converge_evals,
                 curriculum_end(self.model)):
      self.log(f"converged: below {self.target_bits} {contract.error_name(self.task)} "
               f"in {self.converge_evals} evaluations in a row")
      self.model.stop_training = True
    elif self.max_seconds and record["seconds"] >= self.max_seconds:
      self.log(f"stopping: time limit of {_duration(self.max_seconds)} reached "
               "before convergence")
      self.model.stop_training = True


def train(config, logdir, max_steps, eval_every, eval_sequences, target_bits,
          converge_evals, log_every, final_eval=True, max_minutes=0.0,
          generalisation_sizes=None, tensorboard=True, strategy="default",
          log=print, test_sequences=None, eval_memory_size=None):
  """Trains (or resumes) a run in `logdir`; returns its history records."""
  config = {**common.DEFAULT_CONFIG, **config}
  task = common.make_task(config["task"])
  os.makedirs(logdir, exist_ok=True)
  config_path = os.path.join(logdir, "config.json")
  if os.path.exists(config_path):
    # Keys a run saved before they existed take their default values.
    saved = {**common.DEFAULT_CONFIG, **common.load_json(config_path)}
    if saved != config:
      changed = sorted(k for k in set(saved) | set(config)
                       if saved.get(k) != config.get(k))
      raise ValueError(
          f"logdir {logdir!r} holds a run with other settings ({', '.join(changed)}"
          "); pass another --logdir to start a new run")
  keras.utils.set_random_seed(config["seed"])
  model = common.make_model(config, task, common.make_strategy(strategy))
  common.save_json(config_path, config)

  checkpoint = tf.train.Checkpoint(model=model, optimizer=model.optimizer)
  manager = tf.train.CheckpointManager(
      checkpoint, common.checkpoint_dir(logdir), max_to_keep=3)
  history = []
  if manager.latest_checkpoint:
    checkpoint.restore(manager.latest_checkpoint).assert_existing_objects_matched()
    step = int(model.optimizer.iterations.numpy())
    history_path = os.path.join(logdir, "history.json")
    if os.path.exists(history_path):
      history = [r for r in common.load_json(history_path) if r["step"] <= step]
    log(f"resuming from {manager.latest_checkpoint} at step {step}")
  start_step = int(model.optimizer.iterations.numpy())
  log(f"training {config['task']}, {describe_model(config, task, model)}, "
      f"batch {config['batch_size']}, up to {max_steps} steps; logdir {logdir}")

  curriculum = common.make_curriculum(config, task, start_step, history,
                                      eval_every)
  evaluate_cb = EvaluateAndCheckpoint(
      task, config, logdir, manager, history, eval_sequences, target_bits,
      converge_evals, elapsed=history[-1]["seconds"] if history else 0.0,
      max_seconds=60.0 * max_minutes,
      summaries=(summaries_lib.Summaries(logdir, task, config["seed"],
                                         config["batch_size"], log)
                 if tensorboard else None),
      log=log, curriculum=curriculum)
  if converged(history, target_bits, converge_evals, curriculum_end(model)):
    log(f"already converged at step {start_step}; not training further")
  elif start_step < max_steps:
    model.fit(
        common.train_dataset(task, config["seed"], config["batch_size"],
                             start_step, curriculum),
        steps_per_epoch=eval_every,
        epochs=math.ceil(max_steps / eval_every),
        initial_epoch=start_step // eval_every,
        shuffle=False,  # the stream is already random and must stay in order
        callbacks=[Progress(log_every, max_steps, config["batch_size"], log,
                            max_seconds=60.0 * max_minutes,
                            elapsed=evaluate_cb.elapsed),
                   evaluate_cb, common.decay_callback(config, history)],
        verbose=0)
  if evaluate_cb.diverged_at is not None:
    raise FloatingPointError(
        f"the training loss was not finite at step {evaluate_cb.diverged_at} "
        f"(not finite: {', '.join(evaluate_cb.bad_tensors)}); the last good "
        f"checkpoint is in {logdir}/checkpoints")
  if history:
    model.save(os.path.join(logdir, "model.keras"))  # for keras.models.load_model
  if final_eval and history:
    evaluation.evaluate_run(model, task, config, logdir, eval_sequences,
                            generalisation_sizes, log=log,
                            test_sequences=test_sequences,
                            memory_size=eval_memory_size)
  return history


def set_threads(threads):
  """Runs each TensorFlow op (the compiled train step among them) on
  `threads` threads (0: leave TensorFlow's choice); call before TensorFlow
  runs its first op. Independent ops (replicas of a strategy) still run
  side by side."""
  if threads < 0:
    raise ValueError(f"--threads must be >= 0, got {threads}")
  threading = tf.config.threading
  if threads and threads != threading.get_intra_op_parallelism_threads():
    try:
      threading.set_intra_op_parallelism_threads(threads)
    except RuntimeError:  # TensorFlow already runs here (main() in a test)
      logging.warning("--threads=%d not applied: TensorFlow already runs with "
                      "its own setting", threads)


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)  # no per-checkpoint INFO lines
  try:
    set_threads(_THREADS.value)  # before anything builds a model
    if _DETERMINISTIC.value:
      tf.config.experimental.enable_op_determinism()
    config = config_from_flags()
    train(config, _LOGDIR.value, _MAX_STEPS.value, _EVAL_EVERY.value,
          _EVAL_SEQUENCES.value, _TARGET_BITS.value, _CONVERGE_EVALS.value,
          _LOG_EVERY.value, _FINAL_EVAL.value, _MAX_MINUTES.value,
          _GENERALISATION_SIZES.value, _TENSORBOARD.value, _STRATEGY.value,
          test_sequences=_TEST_SEQUENCES.value,
          eval_memory_size=_EVAL_MEMORY_SIZE.value)
  except (ValueError, TypeError, FloatingPointError) as e:
    sys.exit(f"error: {e}")


if __name__ == "__main__":
  app.run(main)
