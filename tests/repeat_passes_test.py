"""tasks.evaluation.repeat_pass_errors (benchmarks.repeat_passes): errors
counted in the pass and on the end marker where they are."""

import numpy as np
import tensorflow as tf

from tasks import evaluation
from tasks import repeat_copy


class _Answers:
  """A model whose logits are the targets of `task.variant(length, repeats)`
  at `seed`, with the given (step, channel) answers flipped."""

  def __init__(self, task, length, repeats, seed, count, flipped=()):
    _, targets, _ = task.variant(length, repeats).sample(
        np.random.default_rng(seed), count)
    self.logits = 10.0 * (2.0 * targets - 1.0)
    for step, channel in flipped:
      self.logits[:, step, channel] *= -1.0

  def predict(self, inputs, batch_size, verbose):
    del batch_size, verbose
    assert inputs.shape[:2] == self.logits.shape[:2]
    return self.logits


class RepeatPassErrorsTest(tf.test.TestCase):

  def test_errors_land_in_their_pass_and_on_the_end_marker(self):
    task = repeat_copy.RepeatCopyTask()
    length, repeats, count, seed = 4, 3, 5, 7
    perfect = _Answers(task, length, repeats, seed, count)
    total, passes, end = evaluation.repeat_pass_errors(
        perfect, task, length, repeats, count, seed)
    self.assertEqual((total, end), (0.0, 0.0))
    self.assertAllEqual(passes, np.zeros(repeats))
    # Pass 2 starts at step length + 1 + length; the end marker is on the
    # step after the last pass (channel 8); an unscored step counts nothing.
    second = length + 1 + length
    finish = length + 1 + repeats * length
    flipped = [(second, 0), (second + 3, 5), (finish, 8), (1, 1)]
    wrong = _Answers(task, length, repeats, seed, count, flipped)
    total, passes, end = evaluation.repeat_pass_errors(
        wrong, task, length, repeats, count, seed)
    self.assertAllEqual(passes, [0.0, 2.0, 0.0])
    self.assertEqual(end, 1.0)
    self.assertEqual(total, 3.0)


if __name__ == "__main__":
  tf.test.main()
