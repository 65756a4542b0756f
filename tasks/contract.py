"""The task contract: what every CLI needs from a task, what it may offer,
and the checks that name the missing part of a task that breaks it.

Required:

    task.name                      str
    task.input_size, output_size   int >= 1
    task.sample(rng, batch_size)   -> inputs [B, T, I], targets [B, T, O],
                                      mask [B, T] (float32; mask 1 where an
                                      answer is scored)

Optional:

    sample(rng, batch_size, difficulty)   difficulty in (0, 1]: the share of
                                          the size range (--curriculum_steps)
    train_sample(rng, batch_size, ...)    a training distribution other than
                                          the test one
    variant(size), generalisation_sizes,  the same task at other sizes, for
    size_name, max_size                   generalisation tests
    num_steps                             T when it is the same in every batch
                                          (one compiled step serves them all)
    sequence_errors(logits, inputs,       [B] an error measure other than bit
                    targets, mask),       errors per sequence, and its name
    error_name
"""

import inspect

import numpy as np

import memtk

DEFAULT_ERROR_NAME = "bit errors per sequence"
_CHECK_BATCH = 2  # sequences drawn once to check the shapes of a task


def check_task(task, label):
  """Raises ValueError naming the first part of the contract `task` breaks;
  `label` is how the user named the task (its name or factory path)."""
  def fail(problem):
    raise ValueError(f"task {label!r} {problem} (see tasks/contract.py)")

  if not isinstance(getattr(task, "name", None), str):
    fail("has no name: set task.name to a string")
  for size in ("input_size", "output_size"):
    value = getattr(task, size, None)
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) \
        or value < 1:
      fail(f"has no valid {size}: an int >= 1 is required, got {value!r}")
  if not callable(getattr(task, "sample", None)):
    fail("has no sample(rng, batch_size) method")
  batch = task.sample(np.random.default_rng(0), _CHECK_BATCH)
  if not isinstance(batch, tuple) or len(batch) != 3:
    fail("sample must return (inputs, targets, mask)")
  inputs, targets, mask = (np.asarray(a) for a in batch)
  expected = {"inputs": (inputs, (_CHECK_BATCH, None, task.input_size)),
              "targets": (targets, (_CHECK_BATCH, None, task.output_size)),
              "mask": (mask, (_CHECK_BATCH, None))}
  steps = inputs.shape[1] if inputs.ndim == 3 else None
  for part, (array, shape) in expected.items():
    shape = tuple(steps if d is None else d for d in shape)
    if array.shape != shape:
      fail(f"sample returned {part} of shape {array.shape}, expected {shape} "
           f"([batch, time{', features' if len(shape) == 3 else ''}])")
    if not np.all(np.isfinite(array)):
      fail(f"sample returned {part} holding NaN or Inf")
  if steps is None or steps < 1:
    fail("sample returned sequences without time steps")
  if generalises(task) and not callable(task.variant):
    fail("has generalisation_sizes but no variant(size) method")


def takes_difficulty(task):
  """Whether the task's training sampler takes a curriculum difficulty."""
  sample = getattr(task, "train_sample", task.sample)
  return "difficulty" in inspect.signature(sample).parameters


def level_sampler(task):
  """The sampler that measures a task at a curriculum difficulty: its test
  sampler when that takes a difficulty, else its training sampler."""
  if "difficulty" in inspect.signature(task.sample).parameters:
    return task.sample
  return task.train_sample


def generalises(task):
  """Whether the task offers generalisation sizes (variant(size))."""
  return (hasattr(task, "variant")
          and bool(getattr(task, "generalisation_sizes", ())))


def size_name(task):
  return getattr(task, "size_name", "size")


def error_name(task):
  """What the task's error measure counts ('bit errors per sequence' unless
  the task defines its own)."""
  return getattr(task, "error_name", DEFAULT_ERROR_NAME)


def sequence_errors(task, logits, inputs, targets, mask):
  """[B] the task's error of each sequence: its own sequence_errors, or bit
  errors per sequence (outputs thresholded at 0.5, counted where mask is 1)."""
  measure = getattr(task, "sequence_errors", None)
  if measure is not None:
    return np.asarray(measure(np.asarray(logits), inputs, targets, mask),
                      np.float64)
  return memtk.metrics.bit_errors(logits, targets, mask).numpy()
