"""NTM: a keras.Model that runs an NTMCell over whole sequences.

Soft and sparse models train by plain backpropagation (a sparse model's
weights on its K cells are differentiable; it runs in `memtk.sparse_unroll`).

A hard model (`addressing="hard"`) trains through its own `train_step`, so
`fit` needs no extra user code. Its estimator is one object
(memtk.hard_training, whose docstring gives the terms and their settings),
which the model asks for its choice, the options of its run and the terms it
adds to the task loss:

  * estimator="reinforce": the choices i_t ~ w_t are sampled and REINFORCE
    (NVIL's baseline and scaling, optionally VIMCO's leave-one-out
    centring, the read heads' own signal and a read reward) adds its
    surrogate, baseline and entropy terms;
  * estimator="gumbel": straight-through Gumbel-softmax, one-hot forward
    and the relaxed gradient backward, with the entropy term.

The soft-to-hard curriculum (the Dynamic NTM's) runs each batch soft with
probability 1 for the first `soft_curriculum_hold` steps (or fewer:
`end_soft_hold(step)` ends the hold earlier, as memtk.training.EndSoftHold
does once the model works), then falling linearly to 0 over
`soft_curriculum_steps`, so the model ends purely hard (both 0: hard from the
start). A soft batch trains exactly as a soft model's step from the same
weights (the estimator adds nothing). Greedy and sampled choices run in
`memtk.sparse_unroll` (O(W) memory work per step); Gumbel and the
curriculum's batches need the dense weights and run in `memtk.unroll`, at
soft access's cost; once the curriculum is over `fit` runs a purely hard
compiled step (make_train_function). Inference (`call`, `predict`,
`evaluate`) uses greedy choices unless `call(..., choice="sample")`. The
choice noise of a train step is drawn by the count of steps attempted
(`draws`), so a step skipped for a non-finite update retries with new choices.
Besides the compiled metrics, a hard train step logs `soft_batch` (1 when the
batch ran soft) and `advantage_std` (REINFORCE: the spread of its learning
signal R^ - b over the batch) or `temperature` (Gumbel).
"""

import keras
import tensorflow as tf

from memtk import cell as cell_lib
from memtk import controllers as controllers_lib
from memtk import estimators
from memtk import hard_training
from memtk import heads as heads_lib
from memtk import sequence_model
from memtk import sparse_unroll
from memtk.hard_training import HARD_DEFAULTS
from memtk.unroll import unroll


@keras.saving.register_keras_serializable(package="memtk")
class NTM(sequence_model.SequenceModel):
  """A Neural Turing Machine over sequences: inputs [B, T, I] -> logits [B, T, O].

  Takes the arguments of `memtk.cell.NTMCell` (controller, output_size,
  memory_size=128, word_size=20, num_read_heads=1, num_write_heads=1,
  addressing='soft', shift_range=1, memory_init='constant', clip_value=20,
  controller_units=100, content_addressing=True, gate_bias=0,
  gamma_bias=0, shift_bias=0, sparse_k=8, initial_window=None,
  empty_rows_as=None, content_index=None), and
  for a hard model the estimator settings of HARD_DEFAULTS (see the module
  docstring).

  `check_numerics=True` raises InvalidArgumentError when the inputs or the
  logits hold NaN or Inf. XLA drops such checks, so a model built with it
  compiles its train step without XLA (slower; off by default).

  `compile()` alone gives a trainable model (memtk.sequence_model: the
  recipe's optimizer, the masked loss with its margin and the bit-error
  metric, XLA, and a train step that skips non-finite updates).
  """

  def __init__(self, controller, output_size, memory_size=128, word_size=20,
               num_read_heads=1, num_write_heads=1, addressing="soft",
               shift_range=1, memory_init="constant", clip_value=20.0,
               controller_units=controllers_lib.DEFAULT_UNITS,
               content_addressing=True,
               gate_bias=heads_lib.DEFAULT_GATE_BIAS,
               gamma_bias=heads_lib.DEFAULT_GAMMA_BIAS,
               shift_bias=heads_lib.DEFAULT_SHIFT_BIAS,
               estimator=HARD_DEFAULTS["estimator"],
               entropy_bonus=HARD_DEFAULTS["entropy_bonus"],
               entropy_steps=HARD_DEFAULTS["entropy_steps"],
               temperature=HARD_DEFAULTS["temperature"],
               temperature_final=HARD_DEFAULTS["temperature_final"],
               temperature_steps=HARD_DEFAULTS["temperature_steps"],
               soft_curriculum_hold=HARD_DEFAULTS["soft_curriculum_hold"],
               soft_curriculum_steps=HARD_DEFAULTS["soft_curriculum_steps"],
               stats_decay=HARD_DEFAULTS["stats_decay"],
               reinforce_samples=HARD_DEFAULTS["reinforce_samples"],
               gumbel_writes=HARD_DEFAULTS["gumbel_writes"],
               gumbel_forward=HARD_DEFAULTS["gumbel_forward"],
               read_discount=HARD_DEFAULTS["read_discount"],
               read_reward=HARD_DEFAULTS["read_reward"],
               read_reward_cells=HARD_DEFAULTS["read_reward_cells"],
               read_reward_heads=HARD_DEFAULTS["read_reward_heads"],
               check_numerics=False,
               sparse_k=cell_lib.DEFAULT_SPARSE_K, initial_window=None,
               empty_rows_as=None, content_index=None, **kwargs):
    super().__init__(check_numerics=check_numerics, **kwargs)
    self.hard_settings = hard_training.checked_hard_settings(
        estimator=estimator, entropy_bonus=entropy_bonus,
        entropy_steps=entropy_steps, temperature=temperature,
        temperature_final=temperature_final,
        temperature_steps=temperature_steps,
        soft_curriculum_hold=soft_curriculum_hold,
        soft_curriculum_steps=soft_curriculum_steps, stats_decay=stats_decay,
        reinforce_samples=reinforce_samples, gumbel_writes=gumbel_writes,
        gumbel_forward=gumbel_forward, read_discount=read_discount,
        read_reward=read_reward, read_reward_cells=read_reward_cells,
        read_reward_heads=read_reward_heads)
    self.cell = cell_lib.NTMCell(
        controller, output_size, memory_size=memory_size, word_size=word_size,
        num_read_heads=num_read_heads, num_write_heads=num_write_heads,
        addressing=addressing, shift_range=shift_range,
        memory_init=memory_init, clip_value=clip_value,
        controller_units=controller_units,
        content_addressing=content_addressing, gate_bias=gate_bias,
        gamma_bias=gamma_bias, shift_bias=shift_bias, sparse_k=sparse_k,
        initial_window=initial_window, empty_rows_as=empty_rows_as,
        content_index=content_index, name="ntm_cell")
    # Whether the train step being traced runs after the soft-to-hard
    # curriculum (make_train_function).
    self._purely_hard = False
    # The hard choices' random stream (seeded by keras.utils.set_random_seed;
    # made after the cell so that it leaves the cell's initial weights as
    # they were before hard addressing existed).
    self._noise_seed = keras.random.SeedGenerator(name="choice_noise")

  def build(self, input_shape):
    self._check_input_shape(input_shape)
    self.cell.build((None, input_shape[-1]))
    if self.cell.mode.estimated:
      # Running mean and variance of the return R_t (REINFORCE's scaling).
      # Every replica computes the same update (from cross-replica means).
      self.return_mean = self.add_weight(
          shape=(), initializer="zeros", trainable=False, name="return_mean",
          aggregation="only_first_replica")
      self.return_variance = self.add_weight(
          shape=(), initializer="ones", trainable=False,
          name="return_variance", aggregation="only_first_replica")
      # Train steps run so far, skipped ones included: the choice noise of a
      # step is drawn by this count, so a step skipped for a non-finite
      # gradient is retried with new choices (by the optimizer step it would
      # repeat the same draw, and the same failure, at every retry).
      self.draws = self.add_weight(
          shape=(), initializer="zeros", trainable=False, dtype="int64",
          name="choice_draws", aggregation="only_first_replica")
      # The step at which the soft-to-hard curriculum's hold ends: at most
      # soft_curriculum_hold, earlier once end_soft_hold is called.
      self.soft_hold_end = self.add_weight(
          shape=(), trainable=False, name="soft_hold_end",
          initializer=keras.initializers.Constant(
              float(self.hard_settings["soft_curriculum_hold"])),
          aggregation="only_first_replica")
      self.estimator = hard_training.make_estimator(
          self.hard_settings, (self.return_mean, self.return_variance),
          self.cell.num_read_heads, self.cell.memory_size)
    self.built = True

  def _check_input_shape(self, shape):
    shape = tuple(shape)
    if len(shape) != 3:
      raise ValueError(f"NTM inputs must be [batch, time, features], got "
                       f"shape {shape}")
    if shape[1] is not None and shape[1] < 1:
      raise ValueError(f"NTM inputs need at least one time step, got shape "
                       f"{shape}")
    expected = self.cell.input_size
    if expected is not None and shape[-1] != expected:
      raise ValueError(f"NTM inputs must have {expected} features (as built), "
                       f"got shape {shape}")

  def _noise(self, inputs, choice, step=None):
    """The random input of `choice` for every step: [B, T, H] U(0, 1) for
    'sample', [B, T, H, N] Gumbel(0, 1) for 'gumbel', else an empty tensor.
    With a training `step` (the count of train steps drawn so far) the draw
    depends on it alone (see _uniform).
    """
    batch, steps = tf.shape(inputs)[0], tf.shape(inputs)[1]
    heads, cells = self.cell.num_heads, self.cell.memory_size
    if choice not in ("sample", "gumbel"):
      return tf.zeros([batch, steps, 0], self.compute_dtype)
    shape = [steps, heads] + ([cells] if choice == "gumbel" else [])
    replica, replicas = sequence_model.replica()
    if step is not None and replicas > 1:
      # Each replica takes its rows of the global batch's noise, so a batch
      # split between replicas draws what one device would.
      noise = self._uniform([batch * replicas] + shape, step)
      noise = noise[replica * batch:(replica + 1) * batch]
    else:
      noise = self._uniform([batch] + shape, step)
    return noise if choice == "sample" else estimators.gumbel_from_uniform(noise)

  def _uniform(self, shape, step=None, stream=0):
    """U(0, 1) noise.

    Without `step`, the next draw of the model's seed generator. With a
    training `step`, a draw fixed by (the generator's initial seed, step,
    stream), so a run resumed from a checkpoint draws what the uninterrupted
    run drew. Philox explicitly: the generator XLA picks on CPU by default took
    167 ms for the 344k numbers of one Gumbel batch (32 x 42 x 2 x 128),
    Philox 1.5 ms.
    """
    if step is None:
      seed = self._noise_seed.next()
    else:
      seed = tf.stack([self._noise_seed.state[0],
                       2 * tf.cast(step, self._noise_seed.state.dtype) + stream])
    seed = tf.cast(tf.math.floormod(seed, 2**31 - 1), tf.int32)
    return tf.random.stateless_uniform(shape, seed, dtype=self.compute_dtype,
                                       alg="philox")

  def _run(self, inputs, choice=None, noise=None, temperature=1.0, soft=None,
           collect=None, gumbel=estimators.GumbelForm()):
    """Unrolls the cell; returns (StepOutput [B, T, ...], final state,
    collected); the state and collected are None from the sparse loop."""
    inputs = tf.convert_to_tensor(inputs, self.compute_dtype)
    if not self.built:  # train_step and trace call _run, not __call__
      self.build(inputs.shape)
    self._check_input_shape(inputs.shape)
    if self.check_numerics:
      inputs = tf.debugging.check_numerics(
          inputs, "NTM inputs [B, T, I] hold NaN or Inf")
    choice = choice or self.cell.default_choice
    if noise is None:
      noise = self._noise(inputs, choice)

    if self.cell.mode.uses_rows(choice, soft, collect):
      # The row-access loop (O(K W) memory work per step); it reports no
      # final state.
      outputs = sparse_unroll.unroll(self.cell, inputs, noise, choice)
      state = collected = None
    else:
      initial = self.cell.initial_ntm_state(tf.shape(inputs)[0])

      def step(x, state):
        return self.cell.choice_step(x[0], state, choice, noise=x[1],
                                     temperature=temperature, soft=soft,
                                     gumbel=gumbel)

      outputs, state, collected = unroll(step, (inputs, noise), initial,
                                         collect=collect)
    if self.check_numerics:
      outputs = outputs._replace(logits=tf.debugging.check_numerics(
          outputs.logits, "NTM logits hold NaN or Inf: a weight or the "
          "memory state went bad"))
    return outputs, state, collected

  def call(self, inputs, training=None, choice=None):
    """Logits [B, T, O]; `choice` (hard models): 'greedy' (default), 'sample'."""
    del training
    # Gumbel's relaxation is for training only.
    allowed = tuple(c for c in self.cell.mode.choices if c != "gumbel")
    if choice is not None and choice not in allowed:
      raise ValueError(f"choice must be one of {allowed} for a "
                       f"{self.cell.addressing} model, got {choice!r}")
    outputs, _, _ = self._run(inputs, choice)
    return outputs.logits

  def _batch_losses(self, x, y, sample_weight):
    """Soft and sparse models train by backpropagation; hard ones through
    their estimator (_hard_losses)."""
    if not self.cell.mode.estimated:
      return super()._batch_losses(x, y, sample_weight)
    return self._hard_losses(x, y, sample_weight)

  def _update_state(self):
    """Every variable a train step changes, with a hard model's return
    statistics."""
    kept = super()._update_state()
    if self.cell.mode.estimated:
      kept += [self.return_mean, self.return_variance]
    return kept

  def _hard_losses(self, x, y, sample_weight):
    """(logits, task loss, total loss with the estimator's terms, logs) of a
    hard model's training batch (module docstring)."""
    step = self.optimizer.iterations  # the schedules follow the updates
    draw = tf.identity(self.draws)  # the noise follows the attempts
    self.draws.assign_add(1)
    soft_batch = self._soft_batch(step, draw)
    samples = self.estimator.samples
    if samples > 1:  # every sequence runs `samples` times, in adjacent rows
      x, y, sample_weight = (None if t is None else tf.repeat(t, samples, 0)
                             for t in (x, y, sample_weight))
    choice = self.estimator.choice
    out = self._run(x, choice, self._noise(x, choice, draw), soft=soft_batch,
                    **self.estimator.run_options(step))[0]
    # Under a strategy, Keras scales the compiled loss by 1 / replicas so
    # that summing the replicas' gradients averages them; the terms below
    # are scaled alike.
    loss = self._compute_loss(x=x, y=y, y_pred=out.logits,
                              sample_weight=sample_weight, training=True)
    _, replicas = sequence_model.replica()
    extra, estimator_logs = self.estimator.terms(out, x, y, sample_weight,
                                                 step, soft_batch)
    logs = {"soft_batch": (tf.cast(soft_batch, tf.float32)
                           if soft_batch is not None else tf.constant(0.0)),
            **estimator_logs}
    # The metrics see each sequence's first run.
    return out.logits[::samples], loss, loss + extra / replicas, logs

  def _soft_batch(self, step, draw):
    """The curriculum's flag for this batch: a scalar bool tensor, true with
    the curriculum's soft probability at `step`; None without a curriculum
    or once it is over (make_train_function)."""
    if not self._has_curriculum() or self._purely_hard:
      return None
    # A tensor flag rather than tf.cond: XLA cannot compile a time loop over
    # variables inside a conditional branch.
    hold = tf.cast(self.soft_hold_end, step.dtype)
    soft_probability = tf.where(
        step < hold, 1.0, estimators.linear_schedule(
            1.0, 0.0, step - hold, self.hard_settings["soft_curriculum_steps"]))
    return self._uniform((), draw, stream=1) < soft_probability

  def _error_phase(self):
    """1.0 once a hard model's soft hold has ended, else 0.0: the hard
    phase's steps follow the hard error, not the one the soft phase
    reached (SequenceModel's scale_steps)."""
    if not self._has_curriculum():
      return super()._error_phase()
    return tf.cast(self.optimizer.iterations >= tf.cast(
        self.soft_hold_end, self.optimizer.iterations.dtype), tf.float32)

  def _has_curriculum(self):
    return self.cell.mode.estimated and bool(
        self.hard_settings["soft_curriculum_hold"]
        or self.hard_settings["soft_curriculum_steps"])

  def curriculum_end(self):
    """The optimizer step from which every batch runs hard (0: from the
    start; soft and sparse models never run the curriculum): the hold's end
    plus soft_curriculum_steps."""
    if not self._has_curriculum():
      return 0
    return self.hold_end() + self.hard_settings["soft_curriculum_steps"]

  def hold_end(self):
    """The optimizer step at which the curriculum's soft hold ends (every
    batch soft before it; 0 without a curriculum)."""
    if not self._has_curriculum():
      return 0
    return (int(self.soft_hold_end.numpy()) if self.built
            else self.hard_settings["soft_curriculum_hold"])

  def end_soft_hold(self, step):
    """Ends the curriculum's soft hold at `step` (if it would end later):
    from there soft batches fade out over soft_curriculum_steps. For a hold
    that lasts until the model works hard (memtk.training.EndSoftHold)."""
    if not self._has_curriculum():
      raise ValueError("end_soft_hold needs a hard model with a soft-to-hard "
                       "curriculum (soft_curriculum_hold or "
                       "soft_curriculum_steps > 0)")
    self.soft_hold_end.assign(tf.minimum(self.soft_hold_end, float(step)))

  def make_train_function(self, force=False):
    """Keras's compiled train function; for a hard model with a soft-to-hard
    curriculum, two: the curriculum's (its soft flag is a tensor, so every
    batch goes through dense access) until the optimizer reaches
    curriculum_end(), then a purely hard one whose sampled batches run in
    the row-access loop. The switch happens between compiled calls (a call
    that spans the end finishes in the curriculum's function, where the
    flag is already hard); the hard function is compiled at its first use.
    """
    if self.train_function is not None and not force:
      return self.train_function
    self._purely_hard = False
    super().make_train_function(force=True)
    if not self._has_curriculum():
      return self.train_function
    curriculum, purely_hard = self.train_function, []

    def function(iterator):
      # Until the switch the end is read at every call (end_soft_hold can
      # move it, only earlier); after it, no host read at all.
      if not purely_hard:
        if int(self.optimizer.iterations.numpy()) < self.curriculum_end():
          return curriculum(iterator)
        self._purely_hard = True  # read when the train step is traced
        super(NTM, self).make_train_function(force=True)
        purely_hard.append(self.train_function)
        self.train_function = function
      return purely_hard[0](iterator)

    self.train_function = function
    return function

  @tf.autograph.experimental.do_not_convert
  def trace(self, inputs):
    """Runs the model and records its attention.

    Args:
      inputs: [B, T, I].

    Returns:
      dict with 'logits' [B, T, O], 'read_weights' [B, T, H_r, N] and
      'write_weights' [B, T, H_w, N] (for a hard model, the one-hot of its
      greedy choices).
    """
    num_read = self.cell.num_read_heads
    outputs, _, weights = self._run(inputs, collect=lambda s: s.weights)
    return {"logits": outputs.logits,
            "read_weights": weights[:, :, :num_read],
            "write_weights": weights[:, :, num_read:]}

  def with_memory_size(self, memory_size):
    """This model with a memory of `memory_size` cells: a new NTM holding the
    same weights (none depends on N: the initial weighting keeps its
    window), compiled for inference as this one; for inputs longer than the
    training memory holds. Not for memory_init='learned' (an [N, W] weight).
    """
    if self.cell.memory_init == "learned":
      raise ValueError(f"memory_size={memory_size}: memory_init='learned' "
                       "learned an [N, W] memory, which cannot change its N")
    if memory_size == self.cell.memory_size:
      return self
    config = self.get_config()
    config.update(memory_size=memory_size,
                  initial_window=self.cell.initial_window,
                  name=f"{self.name}_n{memory_size}")
    resized = type(self).from_config(config)
    resized.build((None, None, self.cell.input_size))
    resized.set_weights(self.get_weights())
    resized.compile(jit_compile=getattr(self, "jit_compile", True))
    return resized

  def get_config(self):
    config = self.cell.get_config()
    for key in ("trainable", "dtype"):
      config.pop(key, None)
    config["name"] = self.name
    config.update(self.hard_settings)
    config["check_numerics"] = self.check_numerics
    return config

  @classmethod
  def from_config(cls, config):
    return cls(**cell_lib.with_controller(config))
