"""benchmarks.gumbel_gradients end to end at tiny sizes."""

import json
import os
import subprocess
import sys

import tensorflow as tf

from tests import background

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _benchmark(out):
  """The benchmark at tiny sizes, its result.json, and a bad flag's run."""
  args = ["--soft_steps=10", "--batches=2", "--hard_steps=2",
          "--hard_eval_every=1", "--test_sequences=10", f"--out={out}",
          "--train_flags=--memory_size=8,--word_size=4,"
          "--controller_units=8,--eval_every=10,--eval_sequences=10"]
  process = subprocess.run(
      [sys.executable, "-m", "benchmarks.gumbel_gradients", *args],
      cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
  path = os.path.join(out, "result.json")
  result = None
  if os.path.exists(path):
    with open(path) as f:
      result = json.load(f)
  bad = subprocess.run(
      [sys.executable, "-m", "benchmarks.gumbel_gradients", "--batches=0"],
      cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
  # A soft phase kept without its checkpoint, as a results directory is.
  kept = os.path.join(out, "kept")
  os.makedirs(os.path.join(kept, "soft"))
  with open(os.path.join(kept, "soft", "history.json"), "w") as f:
    json.dump([], f)
  no_checkpoint = subprocess.run(
      [sys.executable, "-m", "benchmarks.gumbel_gradients", f"--out={kept}"],
      cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
  return process, result, (bad, no_checkpoint)


COMMANDS = {"test_command_measures_every_variant": _benchmark}


class GumbelGradientsTest(tf.test.TestCase):

  def test_command_measures_every_variant(self):
    process, result, (bad, no_checkpoint) = background.result(
        self._testMethodName, _benchmark)
    self.assertEqual(process.returncode, 0, process.stderr[-3000:])
    self.assertEqual(result["soft_steps"], 10)
    variants = result["variants"]
    self.assertEqual(set(variants), {
        "gumbel, relaxed writes", "gumbel, chosen writes",
        "gumbel, chosen writes, greedy forward", "reinforce"})
    for row in variants.values():
      self.assertEqual((row["batches"], row["hard_steps"]), (2, 2))
      self.assertGreater(row["global_norm_median"], 0)
      self.assertBetween(row["hard_steps_skipped"], 0, 2)
      self.assertLen(row["bits_during"], 2)  # --hard_eval_every=1
    # Even after 10 soft steps of a tiny model the relaxed write's gradient
    # is orders of magnitude larger (2.6e5 times when this was written).
    self.assertGreater(variants["gumbel, relaxed writes"]["global_norm_max"],
                       100 * variants["gumbel, chosen writes"][
                           "global_norm_max"])
    self.assertIn("gumbel, relaxed writes", process.stdout)
    self.assertNotEqual(bad.returncode, 0)
    self.assertIn("--batches must be >= 1, got 0", bad.stderr)
    self.assertNotEqual(no_checkpoint.returncode, 0)
    self.assertIn("holds a soft phase without its checkpoint",
                  no_checkpoint.stderr)


if __name__ == "__main__":
  tf.test.main()
