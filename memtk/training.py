"""The training recipe as Keras parts: the optimizer and the learning-rate decay.

`model.compile()` with no optimizer takes `default_optimizer()`, and
`tasks.train` uses exactly these parts, so a plain

    model.compile()
    model.fit(x, y, sample_weight=mask, callbacks=[memtk.training.DecayOnSolve()])

trains by the recipe `tasks.train` uses:

  * Adam, learning rate 1e-3, gradients clipped to global norm 10 (Collier &
    Beel 2018 clip at 50; on copy that let a solved run fall back to chance);
  * `DecayOnSolve`: the learning rate stays at its initial value until the
    task is nearly solved (the monitored bit errors per sequence first fall
    below `below`, 1 by default), then halves every `half_life` steps down to
    `floor` times the initial rate. A constant 1e-3 threw solved runs out of
    their solution; decaying from step 0 stalled associative recall, which
    finds its algorithm only after a few thousand steps at the full rate.
"""

import keras
import numpy as np
import tensorflow as tf

from memtk import metrics

DEFAULT_LEARNING_RATE = 1e-3
DEFAULT_CLIP_NORM = 10.0


def default_optimizer(learning_rate=DEFAULT_LEARNING_RATE,
                      clip_norm=DEFAULT_CLIP_NORM):
  """The recipe's optimizer: Adam with the global gradient norm clipped."""
  if not learning_rate > 0:
    raise ValueError(f"learning_rate must be > 0, got {learning_rate!r}")
  if not clip_norm > 0:
    raise ValueError(f"clip_norm must be > 0, got {clip_norm!r}")
  return keras.optimizers.Adam(learning_rate, global_clipnorm=clip_norm)


def decayed_rate(base, step, start, half_life, floor):
  """The learning rate at `step` for a decay that started at `start` (None:
  not yet): base * 0.5^((step - start) / half_life), at least floor * base."""
  if start is None or not half_life:
    return base
  return max(base * 0.5 ** (max(step - start, 0) / half_life), base * floor)


class DecayOnSolve(keras.callbacks.Callback):
  """Decays the learning rate once the task is nearly solved (module docstring).

  Args:
    below: the decay starts at the end of the first epoch whose logged
      `monitor` is below this.
    half_life: steps over which the rate halves once decaying (0: never).
    floor: the rate never falls below floor * the initial rate.
    monitor: the logged value to watch at the end of each epoch: the training
      metric 'bit_errors' (its mean over the epoch), 'val_bit_errors' with
      validation data, or anything a callback before this one puts in logs.
    start_step: the optimizer step the decay started at, when resuming a run
      that had started it (None: not started).
  """

  def __init__(self, below=1.0, half_life=1000, floor=0.1,
               monitor="bit_errors", start_step=None):
    super().__init__()
    if not below > 0:
      raise ValueError(f"below must be > 0, got {below!r}")
    if isinstance(half_life, bool) or not isinstance(half_life, int) or (
        half_life < 0):
      raise ValueError(f"half_life must be an int >= 0, got {half_life!r}")
    if not 0 < floor <= 1:
      raise ValueError(f"floor must be in (0, 1], got {floor!r}")
    self.below, self.half_life, self.floor = below, half_life, floor
    self.monitor = monitor
    self.start_step = start_step
    self.base_rate = None

  def _step(self):
    return int(self.model.optimizer.iterations.numpy())

  def on_train_begin(self, logs=None):
    if self.base_rate is None:
      self.base_rate = float(self.model.optimizer.learning_rate.numpy())
    self._apply()

  def _apply(self):
    self.model.optimizer.learning_rate.assign(decayed_rate(
        self.base_rate, self._step(), self.start_step, self.half_life,
        self.floor))

  def on_train_batch_begin(self, batch, logs=None):
    if self.start_step is not None:
      self._apply()

  def on_epoch_end(self, epoch, logs=None):
    value = (logs or {}).get(self.monitor)
    if self.start_step is None and value is not None and value < self.below:
      self.start_step = self._step()
    self._apply()


class LengthCurriculum(keras.callbacks.Callback):
  """Training batches whose sizes grow with the model's skill (RL-NTM's mix).

  A task here is anything with `sample(rng, batch_size, difficulty)` (the
  task contract, DESIGN.md): difficulty in [0, 1] caps the sequence size at
  that share of the way from the task's smallest to its largest size. Each
  batch mixes, per sequence (Zaremba & Sutskever 2015):

    mix[0] (10%)  difficulty 1: sizes uniform over the whole range
    mix[1] (25%)  difficulty level + extra, extra = level_step * k with
                  k ~ Geometric(1/2): a little beyond the current level
    mix[2] (65%)  difficulty level: sizes uniform up to the current level

  As a callback it checks the model every `check_every` steps on
  `check_sequences` fresh sequences at the current level and raises the
  level by `level_step` (up to 1) when their bit errors per sequence are
  below `raise_below`. Batch k of `seed` is drawn from
  numpy.random.default_rng([seed, stream, k]), so a run resumed at step k
  with the same level sees the same batches.

      curriculum = memtk.training.LengthCurriculum(task, batch_size=32)
      model.fit(curriculum.dataset(), steps_per_epoch=200, epochs=40,
                callbacks=[curriculum])
  """

  def __init__(self, task, batch_size, seed=0, level=0.0, level_step=0.1,
               raise_below=0.5, check_every=50, check_sequences=128,
               mix=(0.1, 0.25, 0.65), stream=0):
    super().__init__()
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or (
        batch_size < 1):
      raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    if not 0 <= level <= 1:
      raise ValueError(f"level must be in [0, 1], got {level!r}")
    if not 0 < level_step <= 1:
      raise ValueError(f"level_step must be in (0, 1], got {level_step!r}")
    if not raise_below > 0:
      raise ValueError(f"raise_below must be > 0, got {raise_below!r}")
    for name, value in (("check_every", check_every),
                        ("check_sequences", check_sequences)):
      if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    if len(mix) != 3 or min(mix) < 0 or abs(sum(mix) - 1) > 1e-6:
      raise ValueError(f"mix must be 3 shares >= 0 that sum to 1, got {mix!r}")
    self.task, self.batch_size, self.seed = task, batch_size, seed
    self.level, self.level_step = float(level), float(level_step)
    self.raise_below = float(raise_below)
    self.check_every, self.check_sequences = check_every, check_sequences
    self.mix, self.stream = tuple(mix), stream
    self._last_check = None
    self._forward = None

  def difficulties(self, rng, count):
    """[count] per-sequence difficulties of one batch (class docstring)."""
    group = rng.choice(3, size=count, p=self.mix)
    extra = self.level_step * rng.geometric(0.5, size=count)
    return np.where(group == 0, 1.0, np.minimum(
        1.0, self.level + np.where(group == 1, extra, 0.0)))

  def batch(self, step):
    """(inputs, targets, mask) of training batch `step` at the current level."""
    rng = np.random.default_rng([self.seed, self.stream, step])
    difficulties = self.difficulties(rng, self.batch_size)
    parts = [self.task.sample(rng, 1, float(d)) for d in difficulties]
    return tuple(np.concatenate(p) for p in zip(*parts))

  def batches(self, start_step=0):
    """Endless batches from training step `start_step` on."""
    step = start_step
    while True:
      yield self.batch(step)
      step += 1

  def dataset(self, start_step=0):
    """The batches as a tf.data.Dataset (for model.fit)."""
    x, y, mask = self.batch(start_step)  # shapes only
    spec = tuple(tf.TensorSpec((self.batch_size,) + a.shape[1:], tf.float32)
                 for a in (x, y, mask))
    return tf.data.Dataset.from_generator(
        lambda: self.batches(start_step), output_signature=spec)

  def check(self, step):
    """Bit errors per sequence of the model at the current level; raises the
    level when they are below raise_below."""
    if self._forward is None:
      model = self.model
      self._forward = tf.function(lambda x: model(x),
                                  jit_compile=bool(model.jit_compile),
                                  reduce_retracing=True)
    rng = np.random.default_rng([self.seed, self.stream + 1, step])
    x, y, mask = self.task.sample(rng, self.check_sequences, self.level)
    bits = float(np.mean(metrics.bit_errors(
        self._forward(tf.constant(x)), y, mask)))
    if bits < self.raise_below and self.level < 1.0:
      self.level = min(1.0, round(self.level + self.level_step, 6))
    return bits

  def on_train_batch_end(self, batch, logs=None):
    step = int(self.model.optimizer.iterations.numpy())
    if self._last_check is None:
      self._last_check = step
    if step - self._last_check >= self.check_every and self.level < 1.0:
      self._last_check = step
      self.check(step)
