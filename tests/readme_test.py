"""The README's code example runs as written."""

import os
import re

import tensorflow as tf

_README = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                       "README.md")


class ReadmeTest(tf.test.TestCase):

  def test_python_examples_run(self):
    # Every python block, in order, in one namespace (each builds on the
    # first's data).
    text = open(_README).read()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    self.assertLen(blocks, 4)
    namespace = {}
    for block in blocks:
      exec(compile(block, "README.md", "exec"), namespace)  # pylint: disable=exec-used
    self.assertEqual(tuple(namespace["logits"].shape), (4, 41, 8))
    self.assertEqual(tuple(namespace["trace"]["read_weights"].shape),
                     (4, 41, 1, 128))
    for name in ("greedy", "sampled"):  # the hard model's two readings
      self.assertEqual(tuple(namespace[name].shape), (4, 41, 8))
    self.assertEqual(namespace["model"].cell.controller.num_layers, 2)
    for name in ("read_weights", "write_weights"):  # the sparse model's
      support = tf.reduce_sum(
          tf.cast(namespace["sparse_trace"][name] > 0, tf.int32), -1)
      self.assertBetween(int(tf.reduce_max(support)), 1, 8)

  def test_quick_start_lines(self):
    text = open(_README).read()
    lines = re.findall(r"^python3 -m venv \.venv && .*$", text, re.M)
    self.assertLen(lines, 2)
    self.assertIn("tasks.train", lines[0])
    self.assertIn("pytest", lines[1])


if __name__ == "__main__":
  tf.test.main()
