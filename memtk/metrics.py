"""The measure of success on the algorithmic tasks, and the default loss."""

import keras
import tensorflow as tf


def bit_errors(logits, targets, mask):
  """Wrong bits per sequence, outputs thresholded at 0.5.

  Args:
    logits: [B, T, O] model outputs before the sigmoid.
    targets: [B, T, O] target bits.
    mask: [B, T] 1 where an answer is expected, 0 elsewhere.

  Returns:
    [B] number of wrong output bits in each sequence, counted where mask is 1.
  """
  wrong = tf.cast(tf.not_equal(logits > 0.0, targets > 0.5), logits.dtype)
  return tf.reduce_sum(tf.reduce_sum(wrong, axis=-1)
                       * tf.cast(mask, logits.dtype), axis=-1)


@keras.saving.register_keras_serializable(package="memtk")
class BitErrorsPerSequence(keras.metrics.Metric):
  """Mean bit errors per sequence; pass the answer mask as sample_weight."""

  def __init__(self, name="bit_errors", **kwargs):
    super().__init__(name=name, **kwargs)
    self.errors = self.add_variable(shape=(), initializer="zeros",
                                    aggregation="sum", name="errors")
    self.sequences = self.add_variable(shape=(), initializer="zeros",
                                       aggregation="sum", name="sequences")

  def update_state(self, y_true, y_pred, sample_weight=None):
    y_pred = tf.convert_to_tensor(y_pred)
    if sample_weight is None:
      sample_weight = tf.ones(tf.shape(y_pred)[:2], y_pred.dtype)
    errors = bit_errors(y_pred, tf.cast(y_true, y_pred.dtype), sample_weight)
    self.errors.assign_add(tf.reduce_sum(errors))
    self.sequences.assign_add(tf.cast(tf.shape(errors)[0], self.dtype))

  def result(self):
    return tf.math.divide_no_nan(self.errors, self.sequences)


def capped_sigmoid_cross_entropy(y_true, y_pred, margin=None):
  """[..., T] sigmoid cross-entropy of logits y_pred per step (mean over the
  last axis); with `margin` each logit counts at most `margin` in its
  target's direction (min(z, margin) where the target is >= 0.5, else
  max(z, -margin)), so a bit already right by that much takes no gradient."""
  y_pred = tf.convert_to_tensor(y_pred)
  y_true = tf.cast(y_true, y_pred.dtype)
  if margin is not None:
    y_pred = tf.where(y_true >= 0.5, tf.minimum(y_pred, margin),
                      tf.maximum(y_pred, -margin))
  return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(
      labels=y_true, logits=y_pred), axis=-1)


@keras.saving.register_keras_serializable(package="memtk")
class MaskedSigmoidCrossEntropy(keras.losses.Loss):
  """capped_sigmoid_cross_entropy averaged over the masked-in steps (pass
  the answer mask as sample_weight)."""

  def __init__(self, margin=None, name="masked_sigmoid_cross_entropy",
               reduction="mean_with_sample_weight", dtype=None):
    if margin is not None and (isinstance(margin, bool)
                               or not isinstance(margin, (int, float))
                               or not margin > 0):
      raise ValueError(f"margin must be None or a number > 0, got "
                       f"{margin!r}")
    super().__init__(name=name, reduction=reduction, dtype=dtype)
    self.margin = None if margin is None else float(margin)

  def call(self, y_true, y_pred):
    return capped_sigmoid_cross_entropy(y_true, y_pred, self.margin)

  def get_config(self):
    return {"name": self.name, "reduction": self.reduction,
            "margin": self.margin}


# The margin of compile()'s loss (memtk.sequence_model says why).
COMPILE_MARGIN = 5.0


def masked_sigmoid_cross_entropy(margin=None):
  """Sigmoid cross-entropy on logits, averaged over the masked-in steps.

  With the answer mask passed to fit as sample_weight, the loss is the mean
  cross-entropy per bit where an answer is expected (chance is ln 2 = 0.693).
  `margin`: None (the plain cross-entropy), or the margin in logits beyond
  which a right bit takes no gradient (capped_sigmoid_cross_entropy).
  """
  if margin is None:
    return keras.losses.BinaryCrossentropy(
        from_logits=True, reduction="mean_with_sample_weight",
        name="masked_sigmoid_cross_entropy")
  return MaskedSigmoidCrossEntropy(margin)
