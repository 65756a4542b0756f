"""Formats and masks of the task generators."""

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from tasks import associative_recall
from tasks import common
from tasks import copy


class CopyTaskTest(tf.test.TestCase):

  def test_format_and_mask(self):
    task = copy.CopyTask(num_bits=8, min_length=1, max_length=20)
    x, y, m = task.sample(np.random.default_rng(0), 64)
    self.assertEqual(x.shape, (64, 41, 9))
    self.assertEqual(y.shape, (64, 41, 8))
    self.assertEqual(m.shape, (64, 41))
    for i in range(64):
      length = int(m[i].sum())
      self.assertBetween(length, 1, 20)
      self.assertEqual(x[i, length, 8], 1.0)  # delimiter right after the bits
      self.assertEqual(x[i, :, 8].sum(), 1.0)
      self.assertAllEqual(y[i, length + 1:2 * length + 1], x[i, :length, :8])
      self.assertAllEqual(m[i, length + 1:2 * length + 1], np.ones(length))
      self.assertEqual(y[i].sum(), y[i, length + 1:2 * length + 1].sum())
      self.assertEqual(np.abs(x[i, length + 1:]).sum(), 0.0)

  def test_seeded(self):
    task = copy.CopyTask()
    a = task.sample(np.random.default_rng(3), 4)
    b = task.sample(np.random.default_rng(3), 4)
    for u, v in zip(a, b):
      self.assertAllEqual(u, v)

  def test_lengths_cover_range(self):
    task = copy.CopyTask(min_length=1, max_length=20)
    _, _, m = task.sample(np.random.default_rng(0), 2000)
    self.assertEqual(set(m.sum(1).astype(int)), set(range(1, 21)))

  def test_difficulty_caps_lengths_but_not_padding(self):
    task = copy.CopyTask(min_length=1, max_length=20)
    x, _, m = task.sample(np.random.default_rng(0), 500, difficulty=0.25)
    self.assertEqual(x.shape, (500, 41, 9))
    self.assertEqual(m.sum(1).max(), 6)  # 1 + round(19 * 0.25)
    self.assertEqual(m.sum(1).min(), 1)

  def test_variant_is_fixed_length(self):
    x, _, m = copy.CopyTask().variant(120).sample(np.random.default_rng(0), 3)
    self.assertEqual(x.shape, (3, 241, 9))
    self.assertAllEqual(m.sum(1), [120] * 3)

  def test_bad_arguments(self):
    with self.assertRaisesRegex(ValueError, "max_length"):
      copy.CopyTask(min_length=5, max_length=2)
    with self.assertRaisesRegex(ValueError, "num_bits"):
      copy.CopyTask(num_bits=0)
    for share in (-0.1, 1.0):
      with self.assertRaisesRegex(ValueError, f"train_zero_start.*{share}"):
        copy.CopyTask(train_zero_start=share)

  def _zero_first_share(self, batch):
    return np.mean(batch[0][:, 0, :8].sum(-1) == 0)

  def test_training_starts_with_zero_vectors_more_often_test_does_not(self):
    task = copy.CopyTask(train_zero_start=0.25)
    train = task.train_sample(np.random.default_rng(0), 4000)
    test = task.sample(np.random.default_rng(0), 4000)
    # P(first vector all zero) = 0.25 + 0.75 / 256 in training, 1 / 256 in test.
    self.assertAllClose(self._zero_first_share(train), 0.253, atol=0.02)
    self.assertLess(self._zero_first_share(test), 0.01)
    # Later vectors keep uniform bits (the third one, in sequences that long).
    long_enough = train[2].sum(1) >= 3
    self.assertLess(np.mean(train[0][long_enough, 2, :8].sum(-1) == 0), 0.01)
    # The training targets are the zeroed inputs, the format is unchanged.
    x, y, m = train
    for i in range(50):
      length = int(m[i].sum())
      self.assertAllEqual(y[i, length + 1:2 * length + 1], x[i, :length, :8])
      self.assertEqual(x[i, length, 8], 1.0)

  def test_zero_share_off_trains_on_the_test_distribution(self):
    task = copy.CopyTask(train_zero_start=0.0)
    for u, v in zip(task.train_sample(np.random.default_rng(5), 16, 0.5),
                    task.sample(np.random.default_rng(5), 16, 0.5)):
      self.assertAllEqual(u, v)

  def test_variant_keeps_the_training_share(self):
    self.assertEqual(
        copy.CopyTask(train_zero_start=0.2).variant(40).train_zero_start, 0.2)


class AssociativeRecallTaskTest(tf.test.TestCase):

  def test_format_and_answer(self):
    task = associative_recall.AssociativeRecallTask()
    x, y, m = task.sample(np.random.default_rng(0), 64)
    self.assertEqual(x.shape, (64, 6 * 4 + 8, 8))
    self.assertEqual(y.shape, (64, 32, 6))
    for i in range(64):
      item_starts = np.nonzero(x[i, :, 6])[0]
      count = len(item_starts)
      self.assertBetween(count, 2, 6)
      self.assertAllEqual(item_starts, np.arange(count) * 4)
      query_marks = np.nonzero(x[i, :, 7])[0]
      self.assertAllEqual(query_marks, [count * 4, count * 4 + 4])
      query = x[i, count * 4 + 1:count * 4 + 4, :6]
      items = [x[i, s + 1:s + 4, :6] for s in item_starts]
      j = [k for k in range(count - 1) if np.array_equal(items[k], query)][0]
      answer = np.nonzero(m[i])[0]
      self.assertAllEqual(answer, np.arange(count * 4 + 5, count * 4 + 8))
      self.assertAllEqual(y[i, answer], items[j + 1])
      self.assertEqual(np.abs(x[i, answer]).sum(), 0.0)

  def test_difficulty_caps_item_count(self):
    task = associative_recall.AssociativeRecallTask()
    x, _, _ = task.sample(np.random.default_rng(0), 300, difficulty=0.0)
    self.assertEqual(x.shape, (300, 32, 8))
    self.assertAllEqual(x[:, :, 6].sum(1), np.full(300, 2.0))

  def test_variant_and_bad_arguments(self):
    task = associative_recall.AssociativeRecallTask().variant(12)
    _, _, m = task.sample(np.random.default_rng(1), 5)
    self.assertEqual(m.shape, (5, 12 * 4 + 8))
    with self.assertRaisesRegex(ValueError, "min_items"):
      associative_recall.AssociativeRecallTask(min_items=1)


class CommonTest(tf.test.TestCase, parameterized.TestCase):

  def test_train_stream_resumes_at_step(self):
    task = copy.CopyTask()
    stream = common.train_batches(task, 7, 4, 0)
    batches = [next(stream) for _ in range(3)]
    resumed = next(common.train_batches(task, 7, 4, 2))
    for u, v in zip(batches[2], resumed):
      self.assertAllEqual(u, v)

  def test_train_stream_draws_the_training_distribution(self):
    task = copy.CopyTask(train_zero_start=0.5)
    rng = np.random.default_rng([3, common.TRAIN_STREAM, 0])
    for u, v in zip(next(common.train_batches(task, 3, 8, 0)),
                    task.train_sample(rng, 8)):
      self.assertAllEqual(u, v)
    # A task without train_sample trains on sample.
    recall = associative_recall.AssociativeRecallTask()
    rng = np.random.default_rng([3, common.TRAIN_STREAM, 0])
    for u, v in zip(next(common.train_batches(recall, 3, 8, 0)),
                    recall.sample(rng, 8)):
      self.assertAllEqual(u, v)

  def test_curriculum_grows_linearly_then_stays_full(self):
    self.assertEqual(common.curriculum_difficulty(10, 0), 1.0)
    self.assertAllClose(common.curriculum_difficulty(99, 200), 0.5)
    self.assertEqual(common.curriculum_difficulty(5000, 200), 1.0)
    task = copy.CopyTask()
    early = next(common.train_batches(task, 0, 200, 0, curriculum_steps=1000))
    late = next(common.train_batches(task, 0, 200, 999, curriculum_steps=1000))
    self.assertEqual(early[2].sum(1).max(), 1)
    self.assertEqual(late[2].sum(1).max(), 20)

  def test_unknown_task(self):
    with self.assertRaisesRegex(ValueError, "task must be one of"):
      common.make_task("sorting")


if __name__ == "__main__":
  tf.test.main()
