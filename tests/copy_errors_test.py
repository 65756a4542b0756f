"""The copy error analysis: which sequences hold an all-zero vector, and the
error split between them and the others."""

import numpy as np
import tensorflow as tf

from benchmarks import copy_errors
from tasks import copy


class CopyErrorsTest(tf.test.TestCase):

  def test_zero_vectors_count_only_in_the_input_phase(self):
    inputs = np.ones((3, 5, 3), np.float32)
    inputs[0, 1, :2] = 0  # a zero data vector at step 1 of a length-2 input
    inputs[1, 3, :2] = 0  # step 3, past the length-2 input: not counted
    inputs[2, 0, 0] = 0   # one bit off: not a zero vector
    flagged = copy_errors.has_zero_vector(inputs, np.array([2, 2, 2]), 2)
    self.assertAllEqual(flagged, [True, False, False])

  def test_zero_start_is_the_first_vector_only(self):
    inputs = np.ones((3, 4, 3), np.float32)
    inputs[0, 0, :2] = 0  # first vector all zeros
    inputs[1, 1, :2] = 0  # second vector: not a zero start
    inputs[2, 0, 0] = 0   # one bit of the first vector
    self.assertAllEqual(copy_errors.starts_with_zero(inputs, 2),
                        [True, False, False])

  def test_zero_start_sequence(self):
    task = copy.CopyTask()
    inputs, targets, mask = copy_errors.zero_start_sequence(task, 7, length=6)
    self.assertEqual(inputs.shape, (1, 13, 9))
    self.assertEqual(inputs[0, 0, :8].sum(), 0.0)
    self.assertEqual(mask.sum(), 6)
    self.assertAllEqual(targets[0, 7:13], inputs[0, :6, :8])
    again = copy_errors.zero_start_sequence(task, 7, length=6)[0]
    self.assertAllEqual(again, inputs)  # seeded

  def test_sequences_of_one_length(self):
    task = copy.CopyTask()
    inputs, _, mask = copy_errors.sample_sequences(task, 50, 3, length=30)
    self.assertAllEqual(mask.sum(1), np.full(50, 30))  # every one of 30
    self.assertEqual(inputs.shape[1], 2 * 30 + 1)
    _, _, mask = copy_errors.sample_sequences(task, 50, 3)  # training sizes
    self.assertLessEqual(mask.sum(1).max(), 20)
    self.assertGreater(len(np.unique(mask.sum(1))), 1)
    with self.assertRaisesRegex(ValueError, "length must be >= 1, got 0"):
      copy_errors.sample_sequences(task, 5, 3, length=0)

  def test_error_split_against_hand_values(self):
    errors = np.array([80.0, 0.0, 0.0, 20.0, 0.0])
    flagged = np.array([True, True, False, False, False])
    split = copy_errors.error_split(errors, flagged)
    self.assertAllClose(split["share_of_sequences"], 0.4)
    self.assertAllClose(split["share_of_errors"], 0.8)
    self.assertAllClose(split["wrong_flagged"], 0.5)
    self.assertAllClose(split["wrong_others"], 1 / 3)
    self.assertAllClose(split["mean"], 20.0)
    self.assertAllClose(split["wrong"], 0.4)  # 2 of the 5
    self.assertAllClose(split["bits_per_wrong"], 50.0)  # (80 + 20) / 2
    none = copy_errors.error_split(np.zeros(2), np.array([False, False]))
    self.assertEqual((none["share_of_errors"], none["wrong_flagged"],
                      none["bits_per_wrong"]), (0.0, 0.0, 0.0))

  def _consistent(self, inputs, targets, mask):
    lengths = mask.sum(1).astype(int)
    for i, length in enumerate(lengths):
      self.assertAllEqual(targets[i, length + 1:2 * length + 1],
                          inputs[i, :length, :8])

  def test_zero_vectors_redrawn_then_one_placed(self):
    task = copy.CopyTask().variant(12)
    rng = np.random.default_rng(0)
    inputs, targets, mask = task.sample(rng, 400)
    inputs[:5, 3, :8] = 0  # several for sure
    targets[:5, 12 + 1 + 3] = 0
    x, y = copy_errors.without_zero_vectors(inputs, targets, mask, 8, rng)
    self.assertFalse(copy_errors.has_zero_vector(x, mask.sum(1), 8).any())
    self._consistent(x, y, mask)
    self.assertTrue(copy_errors.has_zero_vector(inputs, mask.sum(1), 8)[:5]
                    .all())  # the batch given is left as it was
    z, w = copy_errors.with_zero_vector_at(x, y, mask, 8, 7)
    zero = z[:, :12, :8].sum(-1) == 0
    self.assertTrue(zero[:, 7].all())
    self.assertEqual(int(zero.sum()), 400)  # that step only
    self._consistent(z, w, mask)
    for step in (12, -1):
      with self.assertRaisesRegex(ValueError, f"zero_at step {step}"):
        copy_errors.with_zero_vector_at(x, y, mask, 8, step)

  def test_zero_vector_rows_of_a_model_that_derails_on_them(self):
    # A stand-in for a model: copies right unless a zero vector comes after
    # step 4, then gets every bit of the copy wrong in half the sequences.
    def errors_of(x, y, m):
      zero = (x[:, :10, :8].sum(-1) == 0)
      derails = zero[:, 5:].any(1) & (np.arange(len(x)) % 2 == 0)
      return np.where(derails, m.sum(1) * 8, 0.0)

    task = copy.CopyTask().variant(10)
    inputs, targets, mask = task.sample(np.random.default_rng(1), 100)
    inputs, targets = copy_errors.without_zero_vectors(
        inputs, targets, mask, 8, np.random.default_rng(2))
    rows = copy_errors.zero_vector_rows(
        errors_of,
        copy_errors.zero_vector_batches(inputs, targets, mask, 8, [2, 6]),
        mask)
    self.assertEqual([r[0] for r in rows], [None, 2, 6])
    for _, errors in rows[:2]:
      self.assertAllEqual(errors, np.zeros(100))
    self.assertAllEqual(rows[2][1], np.where(np.arange(100) % 2, 0.0, 80.0))
    derailed = copy_errors.derailed(rows[2][1], mask, 8)
    self.assertAllEqual(derailed, np.arange(100) % 2 == 0)
    # A quarter of the copy's 80 bits is not yet derailed; one more is.
    self.assertAllEqual(copy_errors.derailed(np.array([20.0, 21.0]),
                                             mask[:2], 8), [False, True])


if __name__ == "__main__":
  tf.test.main()
