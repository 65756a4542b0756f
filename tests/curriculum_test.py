"""The length curricula of the training stream (tasks/curriculum.py)."""

import threading

import numpy as np
import tensorflow as tf

from tasks import common
from tasks import copy
from tasks import curriculum


def _lengths(batch):
  return batch[2].sum(1)  # copy: one scored step per input vector


class MixedCapsTest(tf.test.TestCase):

  def test_shares_at_below_and_over_the_whole_range(self):
    rng = np.random.default_rng(0)
    caps = curriculum.mixed_caps(rng, 100000, level=5, levels=20)
    self.assertEqual(caps.min(), 1)
    self.assertEqual(caps.max(), 20)
    # 0.65 at the level (+ excess 0 with p 1/2): at 5 exactly 0.65/2 + the
    # 0.25/5 of the uniform draw below; 20 only from the full range (0.10)
    # and excesses of 15 or more (negligible).
    self.assertAllClose(np.mean(caps == 5), 0.65 / 2 + 0.25 / 5, atol=0.01)
    self.assertAllClose(np.mean(caps == 6), 0.65 / 4, atol=0.01)
    self.assertAllClose(np.mean(caps == 20), 0.10, atol=0.01)
    self.assertAllClose(np.mean(caps < 5), 0.25 * 4 / 5, atol=0.01)

  def test_full_share_moves_to_the_caps_below(self):
    rng = np.random.default_rng(0)
    caps = curriculum.mixed_caps(rng, 100000, level=5, levels=20,
                                 full_share=0.0)
    # Without the full range, 20 only from excesses of 15 or more.
    self.assertLess(np.mean(caps == 20), 0.001)
    self.assertAllClose(np.mean(caps < 5), 0.35 * 4 / 5, atol=0.01)
    self.assertAllClose(np.mean(caps == 6), 0.65 / 4, atol=0.01)

  def test_never_past_the_last_level(self):
    caps = curriculum.mixed_caps(np.random.default_rng(1), 1000, 20, 20)
    self.assertEqual(caps.max(), 20)
    self.assertGreater(np.mean(caps == 20), 0.7)


class MixedBatchTest(tf.test.TestCase):

  def test_each_row_is_drawn_at_its_own_cap(self):
    task = copy.CopyTask()
    caps = np.array([20, 1, 1, 10, 20, 1, 10] * 30)
    batch = curriculum.mixed_batch(task.sample, np.random.default_rng(2),
                                   caps, levels=20)
    self.assertEqual(batch[0].shape, (len(caps), 41, 9))
    lengths = _lengths(batch)
    # cap c of 20 levels: lengths 1 .. 1 + round(19 c / 20)
    for cap in (1, 10, 20):
      longest = 1 + round(19 * cap / 20)
      self.assertEqual(lengths[caps == cap].max(), longest)
      self.assertEqual(lengths[caps == cap].min(), 1)


class AdaptiveTest(tf.test.TestCase):

  def test_level_rises_only_below_the_threshold_and_stops_at_the_top(self):
    adaptive = curriculum.Adaptive(threshold=1.0, levels=3, period=10)
    self.assertEqual(adaptive.level_at(0), 1)
    self.assertEqual(adaptive.decide(10, 1.5), 1)
    self.assertEqual(adaptive.decide(20, 0.5), 2)
    self.assertEqual(adaptive.decide(30, 0.0), 3)
    self.assertEqual(adaptive.decide(40, 0.0), 3)
    self.assertEqual([adaptive.level_at(s) for s in (9, 10, 19, 20, 35, 49)],
                     [1, 1, 1, 2, 3, 3])
    self.assertAllClose(adaptive.difficulty(), 1.0)

  def test_the_stream_waits_for_the_decision_of_its_period(self):
    adaptive = curriculum.Adaptive(1.0, 20, period=5, timeout=60)
    got = []
    thread = threading.Thread(target=lambda: got.append(adaptive.level_at(5)))
    thread.start()
    thread.join(0.3)
    self.assertTrue(thread.is_alive())  # step 5 waits for the decision at 5
    adaptive.decide(5, 0.1)
    thread.join(10)
    self.assertEqual(got, [2])

  def test_close_releases_a_waiting_stream_and_a_timeout_raises(self):
    adaptive = curriculum.Adaptive(1.0, 20, period=5, timeout=60)
    thread = threading.Thread(target=adaptive.level_at, args=(7,))
    thread.start()
    adaptive.close()
    thread.join(10)
    self.assertFalse(thread.is_alive())
    with self.assertRaisesRegex(TimeoutError, "step 5"):
      curriculum.Adaptive(1.0, 20, period=5, timeout=0.05).level_at(5)

  def test_a_resumed_stream_draws_what_an_unbroken_one_drew(self):
    task = copy.CopyTask()
    decisions = [(4, 0.0), (8, 5.0), (12, 0.0)]  # levels 2, 2, 3

    def stream(start, level):
      adaptive = curriculum.Adaptive(1.0, 20, period=4, start_step=start,
                                     level=level)
      for step, error in decisions:
        if step > start:
          adaptive.decide(step, error)
      batches = common.train_batches(task, 5, 64, start, adaptive)
      return [next(batches) for _ in range(16 - start)]

    unbroken, resumed = stream(0, 1), stream(8, 2)
    for u, v in zip(unbroken[8:], resumed):
      for a, b in zip(u, v):
        self.assertAllEqual(a, b)
    # Longer sequences appear as the level rises (caps 1 .. level + excess).
    self.assertLess(np.median(_lengths(unbroken[0])),
                    np.median(_lengths(unbroken[15])))

  def test_bad_arguments_are_named(self):
    for kwargs, name in [({"full_share": 0.5}, "full_share"),
                         ({"full_share": -0.1}, "full_share"),
                         ({"threshold": 0.0}, "threshold"),
                         ({"levels": 0}, "levels"), ({"period": 2.5}, "period"),
                         ({"level": 21}, "level")]:
      args = {"threshold": 1.0, "levels": 20, "period": 10, **kwargs}
      with self.assertRaisesRegex(ValueError, name):
        curriculum.Adaptive(**args)


class LevelSamplerTest(tf.test.TestCase):

  def test_the_test_sampler_unless_only_training_takes_a_difficulty(self):
    from tasks import contract  # pylint: disable=g-import-not-at-top
    task = copy.CopyTask()
    self.assertEqual(contract.level_sampler(task), task.sample)

    class TrainingOnly:
      def sample(self, rng, batch_size):
        del rng, batch_size

      def train_sample(self, rng, batch_size, difficulty=1.0):
        del rng, batch_size, difficulty

    only = TrainingOnly()
    self.assertEqual(contract.level_sampler(only), only.train_sample)

  def test_the_evaluator_measures_at_a_difficulty(self):
    task = copy.CopyTask()
    config = dict(common.DEFAULT_CONFIG, memory_size=8, word_size=4,
                  controller_units=8)
    evaluator = common.Evaluator(common.make_model(config, task))
    at_level = evaluator.bits_per_sequence(task, 0, common.LEVEL_STREAM, 0,
                                           50, difficulty=1 / 20)
    full = evaluator.bits_per_sequence(task, 0, common.LEVEL_STREAM, 0, 50)
    # An untrained model errs on about half the bits: lengths 1-2 against
    # lengths 1-20.
    self.assertGreater(at_level, 0.0)
    self.assertLess(at_level, full / 3)


class MakeCurriculumTest(tf.test.TestCase):

  def test_config_picks_the_curriculum_and_a_resumed_run_its_level(self):
    task = copy.CopyTask()
    self.assertIsNone(common.make_curriculum({}, task, 0, [], 200))
    self.assertIsInstance(
        common.make_curriculum({"curriculum_steps": 100}, task, 0, [], 200),
        curriculum.Linear)
    resumed = common.make_curriculum(
        {"adaptive_curriculum": 0.5}, task, 400,
        [{"step": 200, "curriculum_level": 2},
         {"step": 400, "curriculum_level": 4}], 200)
    self.assertEqual((resumed.threshold, resumed.levels), (0.5, 20))
    self.assertEqual(resumed.level_at(400), 4)
    self.assertEqual(resumed.full_share, curriculum.FULL_SHARE)

  def test_full_share_reaches_the_batches(self):
    task = copy.CopyTask()
    config = {"adaptive_curriculum": 1.0, "curriculum_full_share": 0.0}
    adaptive = common.make_curriculum(config, task, 0, [], 200)
    rng = np.random.default_rng(3)
    lengths = np.concatenate([_lengths(adaptive.batch(task.sample, rng, 64, 0))
                              for _ in range(20)])
    # Level 1 of 20: caps 1 .. 1 + excess, lengths <= 2 + excess; with the
    # full range's 10%, about 128 sequences of length above 8.
    self.assertLess(np.sum(lengths > 8), 3)


if __name__ == "__main__":
  tf.test.main()
