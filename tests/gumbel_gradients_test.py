"""benchmarks.gumbel_gradients end to end at tiny sizes."""

import json
import os
import subprocess
import sys

import tensorflow as tf

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class GumbelGradientsTest(tf.test.TestCase):

  def test_command_measures_both_options(self):
    out = self.get_temp_dir()
    args = ["--soft_steps=10", "--batches=2", "--hard_steps=2",
            "--test_sequences=10", f"--out={out}",
            "--train_flags=--memory_size=8,--word_size=4,"
            "--controller_units=8,--eval_every=10,--eval_sequences=10"]
    process = subprocess.run(
        [sys.executable, "-m", "benchmarks.gumbel_gradients", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    self.assertEqual(process.returncode, 0, process.stderr[-3000:])
    with open(os.path.join(out, "result.json")) as f:
      result = json.load(f)
    self.assertEqual(result["soft_steps"], 10)
    self.assertEqual(set(result["options"]), {"chosen", "relaxed"})
    for row in result["options"].values():
      self.assertEqual((row["batches"], row["hard_steps"]), (2, 2))
      self.assertGreater(row["global_norm_median"], 0)
      self.assertBetween(row["hard_steps_skipped"], 0, 2)
      self.assertGreaterEqual(row["bits_after"], 0)
    # Even after 10 soft steps of a tiny model the relaxed write's gradient
    # is orders of magnitude larger (2.6e5 times when this was written).
    options = result["options"]
    self.assertGreater(options["relaxed"]["global_norm_max"],
                       100 * options["chosen"]["global_norm_max"])
    self.assertIn("gumbel_writes=relaxed", process.stdout)
    bad = subprocess.run(
        [sys.executable, "-m", "benchmarks.gumbel_gradients", "--batches=0"],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    self.assertNotEqual(bad.returncode, 0)
    self.assertIn("--batches must be >= 1, got 0", bad.stderr)


if __name__ == "__main__":
  tf.test.main()
