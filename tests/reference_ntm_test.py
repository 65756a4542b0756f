"""The throughput benchmark's straightforward NTM computes memtk's function:
values and gradients equal a memtk.NTM's with the same weights (float64)."""

import numpy as np
import tensorflow as tf

import memtk
from benchmarks import reference_ntm
from tests import float64_case


class ReferenceNTMTest(float64_case.Float64TestCase):

  def test_equals_memtk_in_values_and_gradients(self):
    ntm = memtk.NTM("lstm", output_size=3, memory_size=7, word_size=4,
                    num_read_heads=2, num_write_heads=2, controller_units=6)
    reference = reference_ntm.ReferenceNTM.like(ntm)
    inputs = tf.constant(self.rng.uniform(size=(2, 5, 4)))
    ntm(inputs)
    reference(inputs)
    # Different initial weights until copied: the comparison sees them.
    self.assertNotAllClose(ntm(inputs), reference(inputs))
    # Learned w_0 away from its start, so every head's chain is exercised.
    ntm.cell.initial_weight_logits.assign(
        self.rng.normal(size=ntm.cell.initial_weight_logits.shape))
    reference.cell.set_weights(ntm.cell.get_weights())

    def loss_and_gradients(model):
      with tf.GradientTape() as tape:
        logits = model(inputs)
        loss = tf.reduce_sum(tf.sin(logits))  # every logit, unequal weights
      return logits, tape.gradient(loss, model.cell.trainable_weights)

    logits, gradients = loss_and_gradients(ntm)
    ref_logits, ref_gradients = loss_and_gradients(reference)
    self.assertAllClose(logits, ref_logits, rtol=1e-10, atol=1e-12)
    self.assertLen(gradients, len(ref_gradients))
    for variable, g, ref_g in zip(ntm.cell.trainable_weights, gradients,
                                  ref_gradients):
      self.assertAllClose(g, ref_g, rtol=1e-8, atol=1e-10, msg=variable.path)

  def test_trains_through_the_compiled_step(self):
    reference = reference_ntm.ReferenceNTM.like(memtk.NTM(
        "lstm", output_size=2, memory_size=6, word_size=3,
        controller_units=5))
    reference.compile()
    x = np.random.default_rng(0).uniform(size=(4, 5, 3))
    y = (x[..., :2] > 0.5).astype("float64")
    history = reference.fit(x, y, sample_weight=np.ones((4, 5)), batch_size=4,
                            epochs=3, verbose=0)
    self.assertTrue(np.all(np.isfinite(history.history["loss"])))
    self.assertEqual(history.history["skipped_steps"][-1], 0.0)
    self.assertLess(history.history["loss"][-1], history.history["loss"][0])

  def test_refuses_cells_it_does_not_compute(self):
    for kwargs in ({"addressing": "hard"}, {"content_addressing": False}):
      ntm = memtk.NTM("lstm", output_size=2, memory_size=6, **kwargs)
      with self.assertRaisesRegex(ValueError, "soft cell with content"):
        reference_ntm.ReferenceNTM.like(ntm)


if __name__ == "__main__":
  tf.test.main()
