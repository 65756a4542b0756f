"""The README's code example runs as written."""

import json
import os
import re
import subprocess
import sys

import tensorflow as tf

from tests import background

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_README = os.path.join(_ROOT, "README.md")

# Runs every python block of the README, in order, in one namespace (each
# builds on the first's data), in a fresh process as a reader would, and
# prints what the test checks as JSON.
_SCRIPT = r"""
import json
import re
import sys

blocks = re.findall(r"```python\n(.*?)```", open(sys.argv[1]).read(), re.S)
namespace = {}
for block in blocks:
  exec(compile(block, "README.md", "exec"), namespace)
import tensorflow as tf
support = {
    name: int(tf.reduce_max(tf.reduce_sum(
        tf.cast(namespace["sparse_trace"][name] > 0, tf.int32), -1)))
    for name in ("read_weights", "write_weights")}
print(json.dumps({
    "blocks": len(blocks),
    "shapes": {name: list(namespace[name].shape)
               for name in ("logits", "greedy", "sampled")},
    "read_weights": list(namespace["trace"]["read_weights"].shape),
    "num_layers": namespace["model"].cell.controller.num_layers,
    "sparse_support": support}))
"""


def _examples(directory):
  """The README's python blocks run in a fresh process: (process, checks)."""
  del directory
  process = subprocess.run([sys.executable, "-c", _SCRIPT, _README],
                           cwd=_ROOT, capture_output=True, text=True,
                           timeout=900, check=False)
  lines = process.stdout.strip().splitlines()
  return process, json.loads(lines[-1]) if process.returncode == 0 else None


COMMANDS = {"test_python_examples_run": _examples}


class ReadmeTest(tf.test.TestCase):

  def test_python_examples_run(self):
    process, got = background.result(self._testMethodName, _examples)
    self.assertEqual(process.returncode, 0, process.stderr[-3000:])
    self.assertEqual(got["blocks"], 4)
    self.assertEqual(got["shapes"]["logits"], [4, 41, 8])
    self.assertEqual(got["read_weights"], [4, 41, 1, 128])
    for name in ("greedy", "sampled"):  # the hard model's two readings
      self.assertEqual(got["shapes"][name], [4, 41, 8])
    self.assertEqual(got["num_layers"], 2)
    for name in ("read_weights", "write_weights"):  # the sparse model's
      self.assertBetween(got["sparse_support"][name], 1, 8)

  def test_quick_start_lines(self):
    text = open(_README).read()
    lines = re.findall(r"^python3 -m venv \.venv && .*$", text, re.M)
    self.assertLen(lines, 2)
    self.assertIn("tasks.train", lines[0])
    self.assertIn("pytest", lines[1])


if __name__ == "__main__":
  tf.test.main()
