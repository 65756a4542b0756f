"""benchmarks.cost end to end at tiny sizes (a smoke test: no timing claims)."""

import json
import os
import subprocess
import sys

import tensorflow as tf

from benchmarks import cost_model
from memtk import viz
from tests import background

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIELDS = {"mode", "content", "phase", "memory_size", "word_size", "batch_size",
          "seq_len", "ms_per_step", "peak_mb"}


def _cost_runs(out):
  """The cost benchmark at tiny sizes; its JSON; the same with --resume."""
  args = ["--modes=soft,hard,sparse", "--sparse_k=3",
          "--content=on,written,hash",
          "--phases=forward,train", "--memory_sizes=8", "--word_size=3",
          "--batch_size=2", "--seq_len=3", "--repeats=1",
          "--controller_units=4", f"--json={out}/cost.json",
          f"--plot={out}/cost.png"]

  def run(*extra):
    return subprocess.run(
        [sys.executable, "-m", "benchmarks.cost", *args, *extra],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)

  first = run()
  if first.returncode:
    return out, first, None, None  # the test reports the failure
  with open(f"{out}/cost.json") as f:
    rows = json.load(f)
  return out, first, rows, run("--resume")


COMMANDS = {"test_command_writes_table_json_and_plot": _cost_runs}


class CostBenchmarkTest(tf.test.TestCase):

  def test_command_writes_table_json_and_plot(self):
    out, process, rows, again = background.result(self._testMethodName,
                                                  _cost_runs)
    self.assertEqual(process.returncode, 0, process.stderr[-3000:])
    self.assertIn("memory bandwidth", process.stdout)
    self.assertIn("ms/step", process.stdout)
    self.assertIn("content_scores", process.stdout)  # the soft breakdown
    self.assertIn("content scan", process.stdout)  # hard and sparse scans
    # on: every mode; the indexes: sparse both, hard 'written'.
    self.assertLen(rows, 12)
    indexed_train = sorted((r["mode"], r["content"]) for r in rows
                           if r["content"] in ("written", "hash")
                           and r["phase"] == "train")
    self.assertEqual(indexed_train, [("hard", "written"), ("sparse", "hash"),
                                     ("sparse", "written")])
    for row in rows:
      self.assertContainsSubset(FIELDS, row)
      self.assertGreater(row["ms_per_step"], 0)
      self.assertGreaterEqual(row["peak_mb"], 0)
      self.assertEqual(row["memory_size"], 8)
      if row["mode"] == "soft":
        self.assertGreater(row["bandwidth_fraction"], 0)
      else:
        self.assertNotIn("bandwidth_fraction", row)
      indexed = row["content"] in ("written", "hash")
      self.assertTrue(row["mode"] == "sparse" or not indexed
                      or (row["mode"], row["content"]) == ("hard", "written"))
      self.assertEqual("index_mb" in row, indexed)
      if indexed:
        self.assertGreater(row["index_mb"], 0)
        self.assertEqual(row["memory_mb"], 2 * 8 * 3 * 4 / 2**20)
      scanned = (row["mode"] != "soft" and row["phase"] == "forward"
                 and not indexed)
      self.assertEqual("scan_ms" in row, scanned)
      if scanned:
        self.assertGreater(row["scan_bandwidth_fraction"], 0)
      self.assertEqual(row.get("sparse_k"),
                       3 if row["mode"] == "sparse" else None)
    breakdowns = [r["breakdown_ms"] for r in rows if "breakdown_ms" in r]
    self.assertLen(breakdowns, 1)  # soft forward
    self.assertEqual(list(breakdowns[0]),
                     ["content_scores", "read", "write", "backward"])
    self.assertGreater(os.path.getsize(os.path.join(out, "cost.png")), 10000)
    # --resume keeps every measured row and measures nothing again.
    self.assertEqual(again.returncode, 0, again.stderr[-3000:])
    self.assertEqual(again.stdout.count("kept from"), 12)
    with open(os.path.join(out, "cost.json")) as f:
      self.assertEqual(json.load(f), rows)

  def test_bytes_estimates_and_skips(self):
    config = dict(mode="soft", content="on", phase="forward",
                  memory_size=1024, word_size=20, batch_size=16, seq_len=100)
    # Content scores (2 heads) + read + write (read and write): 5 passes.
    self.assertEqual(cost_model.soft_bytes_per_step(config), 5 * 16 * 1024 * 20 * 4)
    self.assertEqual(cost_model.soft_bytes_per_step(dict(config, content="off")),
                     3 * 16 * 1024 * 20 * 4)
    self.assertEqual(cost_model.soft_bytes_per_step(dict(config, phase="train")),
                     3 * 5 * 16 * 1024 * 20 * 4)
    train = dict(config, phase="train", memory_size=2**20)
    self.assertGreater(cost_model.estimated_gb(train), 100)  # every step's memory
    self.assertLess(cost_model.estimated_gb(dict(train, mode="hard")), 10)

  def test_plot_takes_skipped_rows(self):
    rows = []
    for mode, content, n, ms in [("soft", "on", 8, 1.0), ("soft", "on", 64, 8.0),
                                 ("hard", "off", 8, 0.5), ("hard", "off", 64, 0.5),
                                 ("soft", "off", 64, None)]:
      rows.append(dict(mode=mode, content=content, phase="train",
                       memory_size=n, ms_per_step=ms,
                       peak_mb=None if ms is None else ms * 3))
    path = os.path.join(self.get_temp_dir(), "plot.png")
    viz.plot_cost(rows, path)
    self.assertGreater(os.path.getsize(path), 10000)
    self.assertIn("skipped", cost_model.format_table(
        [dict(rows[-1], skipped="needs ~40 GB")]))


if __name__ == "__main__":
  tf.test.main()
