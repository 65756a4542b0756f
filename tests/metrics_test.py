"""The loss with a margin (memtk.metrics): a numpy reference, no gradient
from bits right by more than the margin, the plain loss without one, and
bad margins as ValueErrors."""

import keras
import numpy as np
import tensorflow as tf

from memtk import metrics


def numpy_loss(targets, logits, mask, margin):
  """Mean over masked-in steps of the mean over bits of the cross-entropy
  of the capped logits."""
  capped = np.where(targets >= 0.5, np.minimum(logits, margin),
                    np.maximum(logits, -margin))
  per_bit = (np.maximum(capped, 0) - capped * targets
             + np.log1p(np.exp(-np.abs(capped))))
  per_step = per_bit.mean(-1)
  return (per_step * mask).sum() / mask.sum()


class MarginLossTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    rng = np.random.default_rng(0)
    self.targets = rng.integers(0, 2, (3, 5, 4)).astype(np.float64)
    self.logits = rng.normal(scale=6.0, size=(3, 5, 4))
    self.mask = (rng.random((3, 5)) < 0.7).astype(np.float64)

  def test_values_equal_the_numpy_reference(self):
    for margin in (1.0, 4.0):
      loss = metrics.masked_sigmoid_cross_entropy(margin)
      got = loss(tf.constant(self.targets), tf.constant(self.logits),
                 sample_weight=tf.constant(self.mask))
      self.assertAllClose(got, numpy_loss(self.targets, self.logits,
                                          self.mask, margin))

  def test_no_gradient_from_bits_right_by_the_margin(self):
    margin = 4.0
    logits = tf.Variable(self.logits)
    with tf.GradientTape() as tape:
      value = metrics.masked_sigmoid_cross_entropy(margin)(
          tf.constant(self.targets), logits,
          sample_weight=tf.constant(self.mask))
    grad = tape.gradient(value, logits).numpy()
    signed = np.where(self.targets >= 0.5, self.logits, -self.logits)
    beyond = (signed > margin) & (self.mask[..., None] > 0)
    inside = (signed < margin) & (self.mask[..., None] > 0)
    self.assertTrue(beyond.any() and inside.any())
    self.assertAllEqual(grad[beyond], np.zeros(beyond.sum()))
    self.assertTrue(np.all(grad[inside] != 0))  # wrong bits keep theirs

  def test_a_large_margin_is_the_plain_loss(self):
    plain = metrics.masked_sigmoid_cross_entropy()
    wide = metrics.masked_sigmoid_cross_entropy(1e3)
    args = (tf.constant(self.targets), tf.constant(self.logits))
    self.assertAllClose(wide(*args, sample_weight=self.mask),
                        plain(*args, sample_weight=self.mask))

  def test_serialises_and_rejects_bad_margins(self):
    loss = metrics.masked_sigmoid_cross_entropy(2.5)
    again = keras.losses.deserialize(keras.losses.serialize(loss))
    self.assertEqual(again.margin, 2.5)
    for bad in (0, -1.0, True, "2"):
      with self.assertRaisesRegex(ValueError, "margin must be"):
        metrics.masked_sigmoid_cross_entropy(bad)
