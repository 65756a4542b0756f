"""benchmarks.index_recall: the recall of an index that holds every written
row is 1, a small hash's is below 1, and the command writes its table and
JSON (tiny sizes)."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import tensorflow as tf

import memtk
from memtk import diagnostics
from tests import background
from tests import train_test

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class IndexRecallTest(tf.test.TestCase):

  def test_recall_of_exact_and_small_indexes(self):
    keras.utils.set_random_seed(3)
    model = memtk.NTM("lstm", 4, memory_size=300, word_size=6,
                      addressing="sparse", sparse_k=3, controller_units=8)
    model.build((None, None, 5))
    inputs = tf.constant(np.random.default_rng(0).random((3, 12, 5)),
                         tf.float32)
    counts = diagnostics.index_recall(model.cell, inputs, {
        "written": "written",
        "large": {"kind": "hash", "tables": 24, "bits": 1, "slots": 64},
        "small": {"kind": "hash", "tables": 1, "bits": 6, "slots": 1}})
    lookups = 3 * 12 * 2  # sequences x steps x heads
    for label in ("written", "large"):
      self.assertEqual(counts[label], (lookups * 3, lookups * 3, lookups,
                                       lookups))
    found, looked, _, complete = counts["small"]
    self.assertLess(found, looked)
    self.assertLess(complete, lookups)

  def test_bad_index_names_are_one_line_errors(self):
    for text in ("hash:4:2", "hash:a:2:8", "exact"):
      process = subprocess.run(
          [sys.executable, "-m", "benchmarks.index_recall",
           f"--indexes={text}"],
          cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
      self.assertNotEqual(process.returncode, 0)
      self.assertIn("error: --indexes", process.stderr)
      self.assertNotIn("Traceback", process.stderr)

  def test_command_writes_table_and_json(self):
    # The trained source: tests.train_test's indexed sparse run of tasks.train
    # (10 steps of copy), whose commands run beside the suite.
    run, trained = background.result(
        "test_indexed_sparse_run_keeps_its_index",
        train_test.COMMANDS["test_indexed_sparse_run_keeps_its_index"])[:2]
    self.assertEqual(trained.returncode, 0, trained.stderr[-3000:])
    out = os.path.join(self.get_temp_dir(), "recall.json")
    process = subprocess.run(
        [sys.executable, "-m", "benchmarks.index_recall", "--memory_size=256",
         "--batch_size=2", "--seq_len=6", "--indexes=written,hash:2:2:4",
         f"--trained={run}", f"--json={out}"],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    self.assertEqual(process.returncode, 0, process.stderr[-3000:])
    self.assertIn("recall", process.stdout)
    with open(out) as f:
      rows = json.load(f)
    self.assertEqual([(r["source"], r["index"]) for r in rows],
                     [("random", "written"), ("random", "hash:2:2:4"),
                      (run, "written"), (run, "hash:2:2:4")])
    for row in rows:
      self.assertEqual(row["memory_size"], 256)
      self.assertBetween(row["recall"], 0.0, 1.0)
      if row["index"] == "written":
        self.assertEqual(row["recall"], 1.0)


if __name__ == "__main__":
  tf.test.main()
