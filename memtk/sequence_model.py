"""SequenceModel: what every memtk model of sequences trains by.

inputs [B, T, I] -> logits [B, T, O]. `compile()` alone gives a trainable
model: the optimizer defaults to the recipe's (memtk.training), the loss to
sigmoid cross-entropy on the logits averaged over the steps where
`sample_weight` (the answer mask [B, T]) is 1, the weighted metric to bit
errors per sequence (masked by the same sample weights), and the train step
is XLA-compiled (`jit_compile=True`); under several replicas (mirrored, or
across workers) it runs one step per compiled call. The train
step skips an update whose loss or gradient norm is not finite and counts it
in `skipped_steps`.

`memtk.NTM` (with its estimators for hard access) and `memtk.LSTMBaseline`
(the memoryless baseline) are SequenceModels, so both train by the same
recipe.
"""

import warnings

import keras
import tensorflow as tf

from memtk import metrics as metrics_lib
from memtk import training


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
              jit_compile=True, **kwargs):
    """Keras's compile, with the recipe's defaults: `optimizer=None` gives
    memtk.training.default_optimizer() (Adam, 1e-3, global clip
    norm 10), the loss and metric are the masked ones of the module
    docstring."""
    if optimizer is None:
      optimizer = training.default_optimizer()
    if loss is None:
      loss = metrics_lib.masked_sigmoid_cross_entropy()
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
