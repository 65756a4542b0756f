"""The training recipe as Keras parts: the optimizer and the learning rate.

`model.compile()` with no optimizer takes `default_optimizer()`, and
`tasks.train` uses exactly these parts, so a plain

    model.compile()
    model.fit(x, y, sample_weight=mask, validation_data=(vx, vy, vmask),
              callbacks=[memtk.training.ErrorScaledRate(
                  monitor="val_bit_errors")])

trains by the recipe `tasks.train` uses:

  * Adam, learning rate 1e-3, gradients clipped to global norm 10 (Collier &
    Beel 2018 clip at 50; on copy that let a solved run fall back to chance);
  * `ErrorScaledRate`: the learning rate stays at its initial value until the
    monitored bit errors per sequence fall below 1, then follows the square
    root of the lowest error so far (0.5 bit errors: 0.71 of the rate; 0.1:
    0.32; 0.01: a tenth), down to a hundredth. A solved model's steps shrink
    with its error, which keeps solved copy models from collapsing
    (docs/convergence.md, "Why seeds failed").

`DecayOnSolve` (a half-life decay from the first error below 1) and Adam's
AMSGrad variant are the recipe's earlier parts, kept for comparison.
"""

import keras

DEFAULT_LEARNING_RATE = 1e-3
DEFAULT_CLIP_NORM = 10.0
DEFAULT_ERROR_POWER = 0.5  # ErrorScaledRate follows the error's square root


def default_optimizer(learning_rate=DEFAULT_LEARNING_RATE,
                      clip_norm=DEFAULT_CLIP_NORM, amsgrad=False):
  """The recipe's optimizer: Adam with the global gradient norm clipped
  (module docstring); `amsgrad=True` takes Adam's AMSGrad variant, whose
  steps shrink as the gradients do."""
  if not learning_rate > 0:
    raise ValueError(f"learning_rate must be > 0, got {learning_rate!r}")
  if not clip_norm > 0:
    raise ValueError(f"clip_norm must be > 0, got {clip_norm!r}")
  return keras.optimizers.Adam(learning_rate, global_clipnorm=clip_norm,
                               amsgrad=amsgrad)


def decayed_rate(base, step, start, half_life, floor):
  """The learning rate at `step` for a decay that started at `start` (None:
  not yet): base * 0.5^((step - start) / half_life), at least floor * base."""
  if start is None or not half_life:
    return base
  return max(base * 0.5 ** (max(step - start, 0) / half_life), base * floor)


class _RateSchedule(keras.callbacks.Callback):
  """What both schedules share: the checks of `below` and `floor`, the
  initial rate taken at the start of training, the phase of training
  (`phase_monitor`: a schedule starts again when it changes) and setting the
  optimizer's rate to `self._rate()` (which each schedule defines).

  A hard model whose soft phase has solved the task (a soft error near 0)
  has not solved it with hard choices: once hard batches start, the rate
  must follow the hard error, not stay where the soft one put it
  (tasks.train changes the phase when the soft hold ends)."""

  def __init__(self, below, floor, monitor, phase_monitor, phase):
    super().__init__()
    if not below > 0:
      raise ValueError(f"below must be > 0, got {below!r}")
    if not 0 < floor <= 1:
      raise ValueError(f"floor must be in (0, 1], got {floor!r}")
    self.below, self.floor, self.monitor = below, floor, monitor
    self.phase_monitor, self.phase = phase_monitor, phase
    self.base_rate = None

  def _new_phase(self, logs):
    """Whether the phase logged under `phase_monitor` differs from the one
    seen before (a resumed run's `phase` counts as seen); remembers it."""
    phase = logs.get(self.phase_monitor) if self.phase_monitor else None
    if phase is None:
      return False
    new = self.phase is not None and phase != self.phase
    self.phase = phase
    return new

  def _rate(self):
    raise NotImplementedError

  def on_train_begin(self, logs=None):
    if self.base_rate is None:
      self.base_rate = float(self.model.optimizer.learning_rate.numpy())
    self._apply()

  def _apply(self):
    self.model.optimizer.learning_rate.assign(self._rate())


class DecayOnSolve(_RateSchedule):
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
    phase_monitor: optional logged value naming the phase of training; when
      it changes, the decay stops and waits for the new phase's first epoch
      below `below`.
    phase: the phase of a resumed run's `start_step` (None: not known yet).
  """

  def __init__(self, below=1.0, half_life=1000, floor=0.1,
               monitor="bit_errors", start_step=None, phase_monitor=None,
               phase=None):
    super().__init__(below, floor, monitor, phase_monitor, phase)
    if isinstance(half_life, bool) or not isinstance(half_life, int) or (
        half_life < 0):
      raise ValueError(f"half_life must be an int >= 0, got {half_life!r}")
    self.half_life = half_life
    self.start_step = start_step

  def _step(self):
    return int(self.model.optimizer.iterations.numpy())

  def _rate(self):
    return decayed_rate(self.base_rate, self._step(), self.start_step,
                        self.half_life, self.floor)

  def on_train_batch_begin(self, batch, logs=None):
    if self.start_step is not None:
      self._apply()

  def on_epoch_end(self, epoch, logs=None):
    logs = logs or {}
    if self._new_phase(logs):
      self.start_step = None
    value = logs.get(self.monitor)
    if self.start_step is None and value is not None and value < self.below:
      self.start_step = self._step()
    self._apply()


def error_scaled_rate(base, best, below, floor, power):
  """base * (best / below) ** power, within [floor * base, base]: the learning
  rate of ErrorScaledRate once the lowest error so far is `best` (None: none
  yet)."""
  if best is None:
    return base
  return base * min(1.0, max((best / below) ** power, floor))


class ErrorScaledRate(_RateSchedule):
  """Scales the learning rate with the lowest error reached so far.

  The rate stays at its initial value until the monitored error (bit errors
  per sequence) falls below `below`; from then on it is the initial rate
  times (best / below) ** power, where best is the lowest monitored value so
  far, and never less than `floor` times the initial rate. With power 0.5 a
  run at 0.5 bit errors trains at 0.71 of the initial rate, one at 0.1 at
  0.32, one at 0.01 at a tenth (power 1: 0.5, 0.1, 0.01): the closer the
  model is to the solution, the smaller its steps, and the rate never rises
  again after a relapse.

  Args:
    below: the error at and above which the rate is the initial one.
    floor: the rate never falls below floor * the initial rate.
    power: how steeply the rate follows the error (> 0).
    monitor: the logged value to watch at the end of each epoch (see
      DecayOnSolve).
    best: the lowest monitored value of a run being resumed (None: none).
    phase_monitor: optional logged value naming the phase of training; when
      it changes, the lowest error starts again from that epoch's value.
    phase: the phase of a resumed run's `best` (None: not known yet).
  """

  def __init__(self, below=1.0, floor=0.01, monitor="bit_errors", best=None,
               power=DEFAULT_ERROR_POWER, phase_monitor=None, phase=None):
    super().__init__(below, floor, monitor, phase_monitor, phase)
    if not power > 0:
      raise ValueError(f"power must be > 0, got {power!r}")
    self.best = best
    self.power = power

  def _rate(self):
    return error_scaled_rate(self.base_rate, self.best, self.below, self.floor,
                             self.power)

  def on_epoch_end(self, epoch, logs=None):
    logs = logs or {}
    if self._new_phase(logs):
      self.best = None  # a new phase: its own lowest error
    value = logs.get(self.monitor)
    if value is not None and (self.best is None or value < self.best):
      self.best = float(value)
    self._apply()


class EndSoftHold(keras.callbacks.Callback):
  """Ends a hard model's soft-to-hard curriculum hold once it works.

  A hard NTM with soft_curriculum_hold = H trains every batch soft for up to
  H steps; this callback ends the hold at the end of the first epoch whose
  logged `monitor` (the model's bit errors with greedy hard choices, e.g.
  the validation metric 'val_bit_errors') is below `below`, or whose
  `soft_monitor` (its bit errors when run softly) is below `soft_below`; a
  threshold of 0 is not checked. So soft batches start fading out as soon
  as soft training has found the algorithm, and no later than H. A fixed
  hold ends too early for a seed whose soft phase is slow and wastes steps
  on a quick one; greedy hard choices alone can stay far above `below` long
  after the soft model has converged (associative recall: throughout the
  hold).
  """

  def __init__(self, below=1.0, monitor="val_bit_errors", soft_below=0.0,
               soft_monitor="val_soft_bit_errors"):
    super().__init__()
    for name, value in (("below", below), ("soft_below", soft_below)):
      if not value >= 0:
        raise ValueError(f"{name} must be >= 0, got {value!r}")
    if not (below > 0 or soft_below > 0):
      raise ValueError(f"below or soft_below must be > 0, got below={below!r}"
                       f", soft_below={soft_below!r}")
    self.below, self.monitor = below, monitor
    self.soft_below, self.soft_monitor = soft_below, soft_monitor

  def works(self, logs):
    """Whether `logs` show the model working, hard or soft."""
    logs = logs or {}
    hard, soft = logs.get(self.monitor), logs.get(self.soft_monitor)
    return ((self.below > 0 and hard is not None and hard < self.below) or
            (self.soft_below > 0 and soft is not None and
             soft < self.soft_below))

  def on_epoch_end(self, epoch, logs=None):
    if self.works(logs):
      self.model.end_soft_hold(int(self.model.optimizer.iterations.numpy()))
