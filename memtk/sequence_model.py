"""SequenceModel: what every memtk model of sequences trains by.

inputs [B, T, I] -> logits [B, T, O]. `compile()` alone gives a trainable
model: the optimizer defaults to the recipe's (memtk.training), the loss to
sigmoid cross-entropy on the logits averaged over the steps where
`sample_weight` (the answer mask [B, T]) is 1, with a margin: a bit already
right by more than memtk.metrics.COMPILE_MARGIN logits takes no gradient
(memtk.metrics.masked_sigmoid_cross_entropy), the weighted metric to bit
errors per sequence (masked by the same sample weights), and the train step
is XLA-compiled (`jit_compile=True`); under several replicas (mirrored, or
across workers) it runs one step per compiled call. The train
step skips an update whose loss or gradient norm is not finite and counts it
in `skipped_steps`.

`compile()` also shrinks every update as the model nears the solution
(`scale_steps=True`, the default), whatever optimizer it was given: the step
the optimizer takes is scaled by

    s = memtk.training.error_scaled_rate(1, best, below=1, floor=0.01,
                                         power=0.5)

where best is the lowest running mean (over about STEP_ERROR_STEPS
batches) of the training batches' bit errors per sequence so far: full
steps until that mean falls below 1 bit, then sqrt(best) of them (0.32 at
0.1 bit errors). Adam's step does not shrink with the gradient, so at a
constant rate a nearly solved NTM keeps taking full-size steps and can be
thrown back to chance (docs/convergence.md, "A plain fit"); this is the
recipe's ErrorScaledRate inside the train step, on the training error, so a
plain `fit` needs no callback. A model with phases (a hard NTM's soft-to-hard
curriculum) starts `best` again when its phase changes. On by default since
benchmarks.plain_fit measured it over copy seeds 0-9 (docs/convergence.md):
seeds that tested above 10 bit errors per sequence after one under 1, 7 of
10 with plain steps and 2 of 10 with scaled ones. `scale_steps=False` gives
the optimizer's steps as they are; tasks.train passes it, as its
ErrorScaledRate watches the held-out error (use one or the other, not
both).

The loss's margin: the plain cross-entropy keeps rewarding larger logits
on bits that are already right, and Adam, which divides by the gradient's
running RMS, turns that small steady pull into steps of its full size; a
solved model drifted and fell back (docs/convergence.md, "A loss that stops
rewarding solved bits"). With a margin of 5 logits (a right bit at a
probability of 0.993) such bits take no gradient. Over copy seeds 0-9 of
benchmarks.plain_fit with compile()'s defaults: 9 under 0.1 bit errors in
10 minutes, 8 of them never above 1 after, against 8 and 5 of 10 with the
plain loss. `loss=memtk.metrics.masked_sigmoid_cross_entropy()` gives the
plain one; tasks.train passes it, so the recipe's tables stand.

`compile()` also keeps the best weights (`restore_best=True`, the default):
whenever the training error's running mean (the one behind scale_steps)
reaches a new low, the weights and the optimizer's moments are copied
aside; once it has been below RESTORE_BELOW (0.5 bit errors per sequence),
a step that takes it above RESTORE_ABOVE (1) sets them back to that copy.
A nearly solved model falls within a few steps, not in one update: a batch
with one slipped sequence gives a gradient 10-200 times the quiet steps'
(the margin silences the solved bits), Adam's momentum carries it on, and
the batches' errors climb to chance within about ten steps
(docs/convergence.md, "What a collapse looks like step by step"). That
batch is also the only one that still teaches the model, so cutting it
stops learning; restoring undoes only a fall. A second fall within
RESTORE_WINDOW steps of a restore is not undone: the lowest error starts
again there, so data that became harder (a user's own curriculum) is
trained on, not undone forever. `restored_steps` logs the restores of an
epoch. The copy costs memory for one more set of the weights and the
optimizer's moments (not for the memory or the activations) and one select
per variable per step. tasks.train passes `restore_best=False` (the
recipe's tables were measured without it).

`memtk.NTM` (with its estimators for hard access) and `memtk.LSTMBaseline`
(the memoryless baseline) are SequenceModels, so both train by the same
recipe.
"""

import warnings

import keras
import tensorflow as tf

from memtk import metrics as metrics_lib
from memtk import training

# The running mean of the training error behind scale_steps: an exponential
# mean over about this many batches (one batch of 32 copy sequences is too
# noisy to set a step size by).
STEP_ERROR_STEPS = 50

# compile(restore_best=True): once that running mean has been below
# RESTORE_BELOW bits, a step that takes it above RESTORE_ABOVE sets the
# weights and the optimizer's moments back to where it was lowest.
RESTORE_BELOW = 0.5
RESTORE_ABOVE = 1.0
# A fall within this many steps of a restore is not restored: the lowest
# error starts again (a user's curriculum that makes the data harder must
# not be undone again and again).
RESTORE_WINDOW = 4 * STEP_ERROR_STEPS


def replica():
  """(this replica's index, the number of replicas) of the current context."""
  context = tf.distribute.get_replica_context()
  if context is None:  # cross-replica context
    return 0, 1
  return context.replica_id_in_sync_group, context.num_replicas_in_sync


def across_workers(strategy=None):
  """Whether `strategy` (default: the current one) is
  MultiWorkerMirroredStrategy over several workers."""
  strategy = strategy or tf.distribute.get_strategy()
  return (isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
          and strategy.extended._in_multi_worker_mode())  # pylint: disable=protected-access


def for_reduction(logs):
  """A step's logs as Keras can reduce them across workers.

  Keras reduces each logged value of a multi-worker step with a mean over
  axis 0, which a scalar does not have; as a [1] vector the mean over
  replicas' values comes out a scalar again. Elsewhere the logs are
  returned unchanged.
  """
  if not across_workers():
    return logs
  return {name: tf.reshape(value, [1]) for name, value in logs.items()}


def global_mean(values, axis=None):
  """The mean of `values` over the whole batch, across replicas (over `axis`
  only, e.g. 0 for the mean over the rows; equal-sized replica batches)."""
  mean = tf.reduce_mean(values, axis)
  if replica()[1] > 1:
    mean = tf.distribute.get_replica_context().all_reduce("mean", mean)
  return mean


class SequenceModel(keras.Model):
  """A keras.Model over sequences with the recipe's compile defaults and a
  train step that skips non-finite updates (module docstring).

  `check_numerics=True` compiles without XLA (which would drop the checks a
  subclass adds).
  """

  def __init__(self, check_numerics=False, **kwargs):
    super().__init__(**kwargs)
    self.check_numerics = bool(check_numerics)
    # Updates skipped for a non-finite loss or gradient (train_step).
    self._skipped_tracker = keras.metrics.Sum(name="skipped_steps")
    # [running mean of the batches' bit errors (-1: none yet), lowest
    # running mean, phase, steps since restore_best last restored]:
    # compile(scale_steps=True)'s and compile(restore_best=True)'s state. A
    # plain tf.Variable, not a weight: saved models keep their weight lists.
    self._step_error = None
    # compile(restore_best=True)'s copy of the weights where the training
    # error was lowest (plain tf.Variables, made at the first trace).
    self._best_weights = None
    self._restored_tracker = keras.metrics.Sum(name="restored_steps")
    self.scale_steps = self.restore_best = False  # until compiled

  def _batch_losses(self, x, y, sample_weight):
    """(logits, task loss, total loss to differentiate, extra logs) of a
    training batch: plain backpropagation of the compiled loss."""
    logits = self(x, training=True)
    loss = self._compute_loss(x=x, y=y, y_pred=logits,
                              sample_weight=sample_weight, training=True)
    return logits, loss, loss, {}

  def train_step(self, data):
    """One optimizer step; an update whose loss or gradient norm is not
    finite is skipped (weights and optimizer state unchanged) and counted in
    the logged `skipped_steps` (steps skipped in this epoch)."""
    x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
    if not self.built:  # every variable must exist before the snapshot
      self.build(x.shape)
    if not self.optimizer.built:
      self.optimizer.build(self.trainable_variables)
    kept = self._update_state()
    old = [tf.identity(v) for v in kept]
    with tf.GradientTape() as tape:
      logits, loss, total, logs = self._batch_losses(x, y, sample_weight)
    variables = self.trainable_weights
    finite, norm = self._apply_if_finite(
        total, tape.gradient(total, variables), variables, kept, old)
    if self.scale_steps or self.restore_best:
      logs.update(self._track_error(logits, y, sample_weight, finite,
                                    variables, old[:len(variables)]))
    _, replicas = replica()
    # A skipped batch counts nowhere: not in the loss, not in the metrics.
    self._loss_tracker.update_state(
        tf.where(finite, loss * replicas, 0.0),
        sample_weight=tf.where(finite, tf.shape(x)[0], 0))
    self._skipped_tracker.update_state(1.0 - tf.cast(finite, tf.float32))
    if sample_weight is None:
      sample_weight = tf.ones(tf.shape(logits)[:2], logits.dtype)
    logs.update(self.compute_metrics(
        x, y, tf.where(finite, logits, tf.zeros_like(logits)),
        sample_weight=sample_weight * tf.cast(finite, logits.dtype)))
    logs["skipped_steps"] = self._skipped_tracker.result()
    logs["gradient_norm"] = norm  # of this step, before any clipping
    return for_reduction(logs)

  def _error_phase(self):
    """A scalar float tensor naming the phase of training (0: one phase);
    scale_steps starts its lowest error again when it changes."""
    return tf.constant(0.0)

  def _track_error(self, logits, targets, mask, finite, variables, old):
    """Updates the running mean of the training error after a step (a
    skipped one changes nothing) and acts on it: with scale_steps, scales
    the update just applied to `variables` (from `old`) by the error's rule;
    with restore_best, keeps or restores the best weights (module
    docstring). Returns the logs it adds."""
    if mask is None:
      mask = tf.ones(tf.shape(logits)[:2], logits.dtype)
    # The state is float32 whatever the model's dtype (a float64 model too).
    error = tf.cast(global_mean(metrics_lib.bit_errors(logits, targets, mask)),
                    self._step_error.dtype)
    mean, previous_best, phase, since = tf.unstack(self._step_error)
    new_phase = self._error_phase()
    restart = tf.logical_or(mean < 0.0, tf.not_equal(phase, new_phase))
    decay = 1.0 - 1.0 / STEP_ERROR_STEPS
    mean = tf.where(restart, error, decay * mean + (1.0 - decay) * error)
    previous_best = tf.where(restart, float("inf"), previous_best)
    best = tf.minimum(previous_best, mean)
    logs = {}
    if self.scale_steps:
      # error_scaled_rate(1, best, 1, 0.01, 0.5); a skipped update stays
      # undone.
      scale = tf.where(finite, tf.clip_by_value(tf.sqrt(best), 0.01, 1.0),
                       1.0)
      for variable, value in zip(variables, old):
        variable.assign(
            value + tf.cast(scale, variable.dtype) * (variable - value))
      logs["step_scale"] = scale
    since = since + 1.0
    if self.restore_best:
      improved = tf.logical_and(finite, best < previous_best)
      # Never with `improved`: a new lowest mean is the mean itself.
      fell = tf.logical_and(finite, tf.logical_and(best < RESTORE_BELOW,
                                                   mean > RESTORE_ABOVE))
      # A second fall soon after a restore: the data changed (or the model
      # cannot hold), so the lowest error starts again instead.
      again = tf.logical_and(fell, since <= RESTORE_WINDOW)
      restored = tf.logical_and(fell, tf.logical_not(again))
      self._keep_or_restore(improved, restored)
      mean = tf.where(restored, best, mean)  # the restored weights' mean
      best = tf.where(again, mean, best)
      since = tf.where(restored, 0.0, since)
      self._restored_tracker.update_state(tf.cast(restored, tf.float32))
      logs["restored_steps"] = self._restored_tracker.result()
    self._step_error.assign(tf.where(
        finite, tf.stack([mean, best, new_phase, since]), self._step_error))
    return logs

  def _restore_sources(self):
    """What restore_best keeps and restores: every variable a step changes
    but the optimizer's step count and learning rate."""
    skip = {id(self.optimizer.iterations),
            id(getattr(self.optimizer, "_learning_rate", None))}
    return [v for v in self._update_state() if id(v) not in skip]

  def _keep_or_restore(self, improved, restore):
    """Copies the weights (and the optimizer's moments) aside where
    `improved`, sets them back to that copy where `restore` (scalar bool
    tensors, not both true)."""
    sources = self._restore_sources()
    if self._best_weights is None:
      with tf.init_scope():  # created once, at the first trace
        self._best_weights = [
            tf.Variable(tf.zeros(v.shape, v.dtype), trainable=False,
                        name="best_weights") for v in sources]
    for kept, variable in zip(self._best_weights, sources):
      kept.assign(tf.where(improved, variable, kept))
      variable.assign(tf.where(restore, kept, variable))

  def test_step(self, data):
    return for_reduction(super().test_step(data))

  def _update_state(self):
    """Every variable a train step changes: the weights and the optimizer's
    variables (a subclass adds its own)."""
    return list(self.trainable_variables) + list(self.optimizer.variables)

  def _apply_if_finite(self, loss, gradients, variables, kept, old):
    """Applies the gradients when the loss and their global norm are finite;
    returns that condition (a scalar bool tensor) and the norm.

    A select, not a branch: the update runs on zeroed gradients and then
    every variable in `kept` is set back to its value `old` from before the
    step where the condition is false, which XLA compiles without a
    conditional.
    """
    gradients = [tf.convert_to_tensor(g) if g is not None else None
                 for g in gradients]
    norm = tf.linalg.global_norm([g for g in gradients if g is not None])
    finite = tf.logical_and(tf.math.is_finite(loss), tf.math.is_finite(norm))
    self.optimizer.apply_gradients(zip(
        [None if g is None else tf.where(finite, g, tf.zeros_like(g))
         for g in gradients], variables))
    for variable, value in zip(kept, old):
      variable.assign(tf.where(finite, variable, value))
    return finite, norm

  def compile(self, optimizer=None, loss=None, weighted_metrics=None,
              jit_compile=True, scale_steps=True, restore_best=True,
              **kwargs):
    """Keras's compile, with the recipe's defaults: `optimizer=None` gives
    memtk.training.default_optimizer() (Adam, 1e-3, global clip
    norm 10), the loss (with its margin) and metric are the masked ones of
    the module docstring, `scale_steps` (on unless False) shrinks the
    optimizer's steps with the training error and `restore_best` sets a
    solved model that falls back to its best weights (module docstring)."""
    for name, value in (("scale_steps", scale_steps),
                        ("restore_best", restore_best)):
      if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    self.scale_steps = scale_steps
    self.restore_best = restore_best
    self._best_weights = None  # for this compile's optimizer
    if (scale_steps or restore_best) and self._step_error is None:
      # Every replica computes the same values (global_mean).
      self._step_error = tf.Variable(
          [-1.0, float("inf"), 0.0, float("inf")], trainable=False,
          name="step_error",
          aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
    if optimizer is None:
      optimizer = training.default_optimizer()
    if loss is None:
      loss = metrics_lib.masked_sigmoid_cross_entropy(
          metrics_lib.COMPILE_MARGIN)
    if weighted_metrics is None:
      weighted_metrics = [metrics_lib.BitErrorsPerSequence()]
    if self.check_numerics:
      jit_compile = False  # XLA would drop the checks
    strategy = (getattr(self, "_distribute_strategy", None)
                or tf.distribute.get_strategy())
    if (kwargs.get("steps_per_execution", 1) > 1
        and strategy.num_replicas_in_sync > 1):
      # TensorFlow fails on several steps of collective ops in one call
      # ("You must feed a value for placeholder ... while/cond"), across
      # workers and across the replicas of one (mirrored) alike.
      warnings.warn(f"steps_per_execution={kwargs['steps_per_execution']} "
                    "runs as 1 under several replicas")
      kwargs["steps_per_execution"] = 1
    super().compile(optimizer=optimizer, loss=loss,
                    weighted_metrics=weighted_metrics, jit_compile=jit_compile,
                    **kwargs)
    # Saved with the model, so a loaded model compiles as this one did.
    self._compile_config.config["scale_steps"] = scale_steps
    self._compile_config.config["restore_best"] = restore_best

  def _maybe_symbolic_build(self, iterator=None, data_batch=None):
    """Keras's build from the first batch before fit or evaluate, made to
    work across workers. Keras reduces a distributed batch to one value with
    strategy.reduce, which fails under MultiWorkerMirroredStrategy (a
    PerReplica it cannot convert); the build only needs the batch's shapes,
    so this takes this worker's first replica's part instead."""
    strategy = getattr(self, "_distribute_strategy", None)
    if iterator is not None and strategy is not None:
      for _, _, batches in iterator:
        data_batch = tf.nest.map_structure(
            lambda x: (strategy.experimental_local_results(x)[0]
                       if isinstance(x, tf.distribute.DistributedValues)
                       else x), next(batches))
        break
      iterator = None
    return super()._maybe_symbolic_build(iterator=iterator,
                                         data_batch=data_batch)

  def compile_from_config(self, config):
    """Recompiles a loaded model with its saved compile arguments."""
    self.compile(**keras.saving.deserialize_keras_object(config))
    if self.built:
      self.optimizer.build(self.trainable_variables)
