"""Length curricula for the training stream: which difficulty each batch has.

A task that takes a difficulty (tasks.contract: sample(rng, batch_size,
difficulty), difficulty in (0, 1] capping the size range) can be trained on
a curriculum. Two exist:

  * `Linear` (--curriculum_steps): the cap grows linearly with the step,
    whatever the model does.
  * `Adaptive` (--adaptive_curriculum), after RL-NTM (Zaremba & Sutskever
    2015): the cap is a level in 1..K (difficulty level / K) that rises by
    one at an evaluation whose error at the current level is below a
    threshold, so the model trains at the sizes it is learning and moves on
    once it has them. Each batch mixes sizes, so what was learned is kept
    and the sizes ahead are seen: per sequence, with probability 0.65 the
    cap is the level plus a geometric excess (P(e) = 2^-(e+1)), 0.25 a cap
    drawn uniformly from 1..level, 0.10 the full size range. That last
    share (`full_share`, --curriculum_full_share) can be lowered, the
    difference going to the caps below the level: in repeat copy a
    sequence at the full range answers 5.5 times as many steps as a copy,
    so its 10% of the sequences made 29% of the loss at level 1, and there
    the NTM learned to copy several times slower with it than without it
    (docs/tasks.md).

An adaptive level is decided by training (at each evaluation), so the batch
stream must wait for it: `Adaptive.batch` for step k blocks until the level
of k's period (the evaluation at the period's first step) is decided. A
resumed run restores the level of its last evaluation and draws exactly the
batches an unbroken run would have drawn.
"""

import threading

import numpy as np

# The adaptive curriculum's mix of caps per sequence (module docstring):
# at the level, over the full range by default; the rest below the level.
AT_LEVEL, FULL_SHARE = 0.65, 0.10


def linear_difficulty(step, curriculum_steps):
  """Linear length curriculum: the share of the task's size range at `step`."""
  if not curriculum_steps:
    return 1.0
  return min(1.0, (step + 1) / curriculum_steps)


class Linear:
  """The linear curriculum: every batch at linear_difficulty(step)."""

  def __init__(self, curriculum_steps):
    self.curriculum_steps = curriculum_steps

  def batch(self, sample, rng, batch_size, step):
    return sample(rng, batch_size,
                  linear_difficulty(step, self.curriculum_steps))


def check_full_share(full_share, name="full_share"):
  """ValueError naming `name` unless 0 <= full_share <= 1 - AT_LEVEL."""
  if not 0 <= full_share <= 1 - AT_LEVEL:
    raise ValueError(f"{name} must be in [0, {1 - AT_LEVEL:.2f}], got "
                     f"{full_share!r}")


def mixed_caps(rng, batch_size, level, levels, full_share=FULL_SHARE):
  """[batch_size] int caps in 1..levels: the adaptive curriculum's mix at
  `level` (module docstring)."""
  kind = rng.random(batch_size)
  excess = rng.geometric(0.5, batch_size) - 1  # 0, 1, 2, ... with p 1/2, 1/4
  below = rng.integers(1, level + 1, batch_size)
  caps = np.where(kind < AT_LEVEL, level + excess,
                  np.where(kind < 1 - full_share, below, levels))
  return np.minimum(caps, levels)


def mixed_batch(sample, rng, caps, levels):
  """One batch whose sequence i is drawn at difficulty caps[i] / levels:
  one sample() per distinct cap, rows in the order of `caps`."""
  order = np.argsort(caps, kind="stable")  # the rows of each cap, in turn
  parts = [sample(rng, int(np.sum(caps == cap)), cap / levels)
           for cap in np.unique(caps)]
  batch = []
  for arrays in zip(*parts):
    rows = np.empty_like(np.concatenate(arrays))
    rows[order] = np.concatenate(arrays)
    batch.append(rows)
  return tuple(batch)


class Adaptive:
  """The adaptive curriculum (module docstring).

  Args:
    threshold: the level rises at an evaluation whose error per sequence at
      the current level is below this (> 0).
    levels: K, the number of levels (the task's max_size by default).
    period: steps between evaluations; the level of step k is the one
      decided at step period * (k // period).
    start_step: the first step the stream draws (a resumed run's step).
    level: the level decided at start_step (1 for a new run).
    timeout: seconds `batch` waits for a decision before raising.
    full_share: the share of sequences drawn over the full size range
      (0.10 as in RL-NTM; at most 1 - AT_LEVEL).
  """

  def __init__(self, threshold, levels, period, start_step=0, level=1,
               timeout=3600.0, full_share=FULL_SHARE):
    if not threshold > 0:
      raise ValueError(f"threshold must be > 0, got {threshold!r}")
    check_full_share(full_share)
    self.full_share = full_share
    for name, value in [("levels", levels), ("period", period)]:
      if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    if not 1 <= level <= levels:
      raise ValueError(f"level must be in 1..{levels}, got {level!r}")
    self.threshold, self.levels, self.period = threshold, levels, period
    self.timeout = timeout
    self._decided = {period * (start_step // period): level}
    self._latest = period * (start_step // period)
    self._closed = False
    self._condition = threading.Condition()

  @property
  def level(self):
    """The level of the latest decision."""
    with self._condition:
      return self._decided[self._latest]

  def difficulty(self):
    """The difficulty of the current level."""
    return self.level / self.levels

  def decide(self, step, error):
    """Records the evaluation at `step` (a multiple of period): the level
    for the steps from here rises by one when `error`, the error per
    sequence at the current level, is below the threshold. Returns the
    level from `step` on."""
    with self._condition:
      level = self._decided[self._latest]
      if error < self.threshold:
        level = min(level + 1, self.levels)
      self._decided[step] = level
      self._latest = max(self._latest, step)
      self._condition.notify_all()
      return level

  def close(self):
    """Training is over: release a stream waiting for a decision that will
    not come (what it then draws is never trained on)."""
    with self._condition:
      self._closed = True
      self._condition.notify_all()

  def level_at(self, step):
    """The level of `step`, waiting until it is decided."""
    start = self.period * (step // self.period)
    with self._condition:
      if not self._condition.wait_for(
          lambda: start in self._decided or self._closed, self.timeout):
        raise TimeoutError(f"no curriculum decision for step {start} within "
                           f"{self.timeout} s")
      return self._decided.get(start, self._decided[self._latest])

  def batch(self, sample, rng, batch_size, step):
    level = self.level_at(step)
    return mixed_batch(sample, rng,
                       mixed_caps(rng, batch_size, level, self.levels,
                                  self.full_share),
                       self.levels)
