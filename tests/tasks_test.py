"""Formats and masks of the task generators."""

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from tasks import associative_recall
from tasks import common
from tasks import contract
from tasks import copy
from tasks import curriculum
from tasks import ngrams
from tasks import priority_sort
from tasks import repeat_copy
from tasks import reverse


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
      for name in ("train_zero_start", "train_zero_vector"):
        with self.assertRaisesRegex(ValueError, f"{name}.*{share}"):
          copy.CopyTask(**{name: share})

  def _zero_first_share(self, batch):
    return np.mean(batch[0][:, 0, :8].sum(-1) == 0)

  def test_training_starts_with_zero_vectors_more_often_test_does_not(self):
    task = copy.CopyTask(train_zero_start=0.25, train_zero_vector=0.0)
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

  def test_training_holds_a_zero_vector_anywhere_more_often(self):
    task = copy.CopyTask(train_zero_start=0.0, train_zero_vector=0.25)
    x, y, m = task.train_sample(np.random.default_rng(1), 8000)
    lengths = m.sum(1).astype(int)
    zero = (x[:, :, :8].sum(-1) == 0) & (
        np.arange(x.shape[1]) < lengths[:, None])
    # P(a zero vector) = 0.25 + 0.75 P(one under uniform bits); uniform bits
    # give 1 - (255/256)^L, about 4% over lengths 1-20.
    natural = np.mean(1 - (255 / 256) ** lengths)
    self.assertAllClose(zero.any(1).mean(), 0.25 + 0.75 * natural, atol=0.02)
    # Its step is uniform over the input (the mean of (step + 1/2) / L is
    # 1/2), and at the first step in about 1 / L of the sequences.
    held = zero.any(1)
    where = (np.argmax(zero, 1)[held] + 0.5) / lengths[held]
    self.assertAllClose(where.mean(), 0.5, atol=0.03)
    self.assertGreater(np.mean(zero[:, 0]), 0.01)
    self.assertLess(np.mean(zero[:, 0]), 0.05)
    # The targets are the zeroed inputs; the test distribution is untouched.
    for i in range(200):
      self.assertAllEqual(y[i, lengths[i] + 1:2 * lengths[i] + 1],
                          x[i, :lengths[i], :8])
    tx, _, tm = task.sample(np.random.default_rng(1), 8000)
    test_zero = (tx[:, :, :8].sum(-1) == 0) & (
        np.arange(tx.shape[1]) < tm.sum(1)[:, None])
    self.assertAllClose(test_zero.any(1).mean(), natural, atol=0.01)

  def test_zero_share_off_trains_on_the_test_distribution(self):
    task = copy.CopyTask(train_zero_start=0.0, train_zero_vector=0.0)
    for u, v in zip(task.train_sample(np.random.default_rng(5), 16, 0.5),
                    task.sample(np.random.default_rng(5), 16, 0.5)):
      self.assertAllEqual(u, v)

  def test_variant_keeps_the_training_share(self):
    variant = copy.CopyTask(train_zero_start=0.2,
                            train_zero_vector=0.3).variant(40)
    self.assertEqual((variant.train_zero_start, variant.train_zero_vector),
                     (0.2, 0.3))


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
    self.assertEqual(curriculum.linear_difficulty(10, 0), 1.0)
    self.assertAllClose(curriculum.linear_difficulty(99, 200), 0.5)
    self.assertEqual(curriculum.linear_difficulty(5000, 200), 1.0)
    task = copy.CopyTask()
    linear = curriculum.Linear(1000)
    early = next(common.train_batches(task, 0, 200, 0, linear))
    late = next(common.train_batches(task, 0, 200, 999, linear))
    self.assertEqual(early[2].sum(1).max(), 1)
    self.assertEqual(late[2].sum(1).max(), 20)

  def test_unknown_task(self):
    with self.assertRaisesRegex(ValueError, "task must be one of"):
      common.make_task("sorting")

  @parameterized.parameters(sorted(common.TASKS))
  def test_every_built_in_task_keeps_the_contract(self, name):
    task = common.make_task(name)  # checks the contract
    self.assertEqual(task.name, name)
    self.assertTrue(contract.generalises(task))
    for size in task.generalisation_sizes:
      variant = task.variant(size)
      x, y, m = variant.sample(np.random.default_rng(0), 2)
      self.assertEqual(x.shape[1], variant.num_steps)
      self.assertEqual(y.shape[-1], task.output_size)
      self.assertGreater(m.sum(), 0)

  def test_a_factory_path_builds_the_users_task(self):
    task = common.make_task("tasks.reverse:make")
    self.assertIsInstance(task, reverse.ReverseTask)
    self.assertFalse(contract.generalises(task))
    self.assertFalse(contract.takes_difficulty(task))
    self.assertEqual(contract.size_name(task), "size")
    self.assertEqual(contract.error_name(task), "bit errors per sequence")
    x, _, _ = next(common.train_batches(task, 0, 3, 0))
    self.assertEqual(x.shape, (3, 21, 7))
    with self.assertRaisesRegex(ValueError, "curriculum needs a task"):
      next(common.train_batches(task, 0, 3, 0, curriculum.Linear(10)))

  def test_reverse_task_format(self):
    x, y, m = reverse.make().sample(np.random.default_rng(2), 20)
    for i in range(20):
      length = int(m[i].sum())
      self.assertEqual(x[i, length, 6], 1.0)
      self.assertAllEqual(y[i, length + 1:2 * length + 1],
                          x[i, :length, :6][::-1])

  def test_bad_factory_paths_and_broken_tasks_name_the_problem(self):
    for path, message in [
        ("tasks.nowhere:make", "cannot import module 'tasks.nowhere'"),
        ("tasks.reverse:missing", "has no callable 'missing'"),
        ("tasks.reverse:", "expected 'package.module:factory'")]:
      with self.assertRaisesRegex(ValueError, message):
        common.make_task(path)

    class Broken:
      name = "broken"
      input_size, output_size = 3, 2

      def sample(self, rng, batch_size):
        del rng
        return (np.zeros((batch_size, 5, 3)), np.zeros((batch_size, 5, 2)),
                np.zeros((batch_size, 5)))

    cases = [("name", None, "has no name"),
             ("input_size", 0, "has no valid input_size"),
             ("output_size", 2.5, "has no valid output_size"),
             ("sample", None, "has no sample"),
             ("output_size", 4, r"sample returned targets of shape \(2, 5, 2\), expected "
                                r"\(2, 5, 4\)")]
    for attribute, value, message in cases:
      task = Broken()
      setattr(task, attribute, value)
      with self.assertRaisesRegex(ValueError, f"task 'mine' {message}"):
        contract.check_task(task, "mine")
    task = Broken()
    task.sample = lambda rng, batch_size: (np.full((2, 5, 3), np.nan),
                                           np.zeros((2, 5, 2)), np.zeros((2, 5)))
    with self.assertRaisesRegex(ValueError, "inputs holding NaN"):
      contract.check_task(task, "mine")
    contract.check_task(Broken(), "mine")  # the unbroken one passes


class RepeatCopyTaskTest(tf.test.TestCase):

  def test_format_end_marker_and_mask(self):
    task = repeat_copy.RepeatCopyTask()
    x, y, m = task.sample(np.random.default_rng(0), 200)
    self.assertEqual(x.shape, (200, 112, 10))
    self.assertEqual(y.shape, (200, 112, 9))
    counts = set()
    for i in range(200):
      length = int(np.nonzero(x[i, :, 8])[0][0])  # the delimiter step
      self.assertEqual(x[i, :, 8].sum(), 1.0)
      repeats = round(float(x[i, length, 9]) * np.sqrt(99 / 12) + 5.5)
      counts.add(repeats)
      end = length + 1 + length * repeats
      for r in range(repeats):
        block = slice(length + 1 + r * length, length + 1 + (r + 1) * length)
        self.assertAllEqual(y[i, block, :8], x[i, :length, :8])
      self.assertAllEqual(y[i, :, 8], np.eye(112)[end])  # one end marker
      self.assertAllEqual(np.nonzero(m[i])[0], np.arange(length + 1, end + 1))
      self.assertEqual(np.abs(x[i, length + 1:]).sum(), 0.0)
    self.assertEqual(counts, set(range(1, 11)))

  def test_count_is_normalised_over_the_training_counts(self):
    task = repeat_copy.RepeatCopyTask()
    counts = task.normalised_count(np.arange(1, 11))
    self.assertAllClose([counts.mean(), counts.var()], [0.0, 1.0], atol=1e-6)
    # A variant keeps the training normalisation, also for more repeats.
    longer = task.variant(20, repeats=20)
    self.assertAllClose(longer.normalised_count(10), counts[-1])
    x, _, m = longer.sample(np.random.default_rng(1), 2)
    self.assertAllEqual(m.sum(1), [20 * 20 + 1] * 2)
    self.assertEqual(x.shape[1], 20 + 1 + 400 + 1)

  def test_difficulty_and_bad_arguments(self):
    task = repeat_copy.RepeatCopyTask(cap_lengths=True)
    x, _, m = task.sample(np.random.default_rng(0), 300, difficulty=0.0)
    self.assertAllEqual(m.sum(1), [2.0] * 300)  # length 1, once, end marker
    # Level k of 10 trains up to k repeats (level 1: copy).
    x, _, m = task.sample(np.random.default_rng(0), 300, difficulty=0.3)
    lengths = x[:, :, 8].argmax(1)  # the delimiter's step
    self.assertEqual(set(lengths), {1, 2, 3, 4})
    self.assertEqual(set((m.sum(1) - 1) / lengths), {1, 2, 3})
    # By default difficulty caps the repeat counts only, every length stays
    # in play (so the lowest level is copy).
    first = repeat_copy.RepeatCopyTask()
    x, _, m = first.sample(np.random.default_rng(0), 300, difficulty=0.1)
    lengths = x[:, :, 8].argmax(1)  # the delimiter's step
    self.assertAllEqual(m.sum(1), lengths + 1)  # once, end marker
    self.assertEqual(set(lengths), set(range(1, 11)))
    self.assertFalse(first.variant(20).cap_lengths)
    with self.assertRaisesRegex(ValueError, "max_repeats"):
      repeat_copy.RepeatCopyTask(min_repeats=3, max_repeats=2)
    with self.assertRaisesRegex(ValueError, "min_length must be >= 1, got 0"):
      repeat_copy.RepeatCopyTask(min_length=0)


class PrioritySortTaskTest(tf.test.TestCase):

  def test_targets_are_the_highest_priorities_highest_first(self):
    task = priority_sort.PrioritySortTask()
    x, y, m = task.sample(np.random.default_rng(0), 50)
    self.assertEqual(x.shape, (50, 37, 10))
    self.assertAllEqual(m, np.tile(np.arange(37) > 20, (50, 1)))
    for i in range(50):
      priorities = x[i, :20, 8]
      self.assertTrue(np.all(np.abs(priorities) <= 1))
      ranked = sorted(range(20), key=lambda j: -priorities[j])[:16]
      self.assertAllEqual(y[i, 21:], x[i, ranked, :8])
      self.assertEqual(x[i, 20, 9], 1.0)
      self.assertEqual(np.abs(x[i, 21:]).sum(), 0.0)

  def test_variant_keeps_the_share_and_bad_arguments(self):
    variant = priority_sort.PrioritySortTask().variant(40)
    self.assertEqual((variant.num_inputs, variant.num_outputs), (40, 32))
    with self.assertRaisesRegex(ValueError, "num_outputs must be <= "
                                "num_inputs=4, got 5"):
      priority_sort.PrioritySortTask(num_inputs=4, num_outputs=5)


class NGramsTaskTest(tf.test.TestCase):

  def test_format_and_mask(self):
    task = ngrams.NGramsTask()
    x, y, m = task.sample(np.random.default_rng(0), 8)
    self.assertEqual(x.shape, (8, 199, 1))
    self.assertAllEqual(y[:, :-1], x[:, 1:])  # the target is the next bit
    self.assertAllEqual(m[:, :4], np.zeros((8, 4)))
    self.assertAllEqual(m[:, 4:], np.ones((8, 195)))

  def test_bits_follow_the_table(self):
    # A table of 0s and 1s makes every bit after the first five a function of
    # its context: here x_t = x_{t-5} (the context's oldest bit).
    table = np.tile((np.arange(32) >= 16).astype(float), (3, 1))
    bits = ngrams.generate(table, np.random.default_rng(1).random((3, 40)))
    self.assertAllEqual(bits[:, 5:], bits[:, :-5])

  def test_optimal_predictor_against_a_counting_loop(self):
    x, _, _ = ngrams.NGramsTask(60).sample(np.random.default_rng(4), 3)
    got = ngrams.optimal_probabilities(x)
    for b in range(3):
      bits = x[b, :, 0].astype(int)
      counts = {}
      for t in range(len(bits)):
        if t < 4:
          self.assertEqual(got[b, t], 0.5)
          continue
        context = tuple(bits[t - 4:t + 1])
        zeros, ones = counts.get(context, (0, 0))
        self.assertAllClose(got[b, t], (ones + 0.5) / (zeros + ones + 1))
        if t + 1 < len(bits):  # the outcome x_{t+1} is seen next step
          nxt = bits[t + 1]
          counts[context] = (zeros + (nxt == 0), ones + (nxt == 1))

  def test_measure_is_the_excess_over_the_optimum(self):
    task = ngrams.NGramsTask()
    x, y, m = task.sample(np.random.default_rng(5), 4)
    p = ngrams.optimal_probabilities(x)
    optimal_logits = np.log(p / (1 - p))[..., None]
    self.assertAllClose(task.sequence_errors(optimal_logits, x, y, m),
                        np.zeros(4), atol=1e-9)
    # Predicting 1/2 everywhere costs one bit per scored step.
    chance = task.sequence_errors(np.zeros_like(x), x, y, m)
    self.assertAllClose(chance, 195 - ngrams.cross_entropy_bits(p, y, m))
    self.assertTrue(np.all(chance > 0))
    self.assertEqual(contract.error_name(task), task.error_name)


if __name__ == "__main__":
  tf.test.main()
