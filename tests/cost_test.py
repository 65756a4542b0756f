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
  """The cost benchmark at tiny sizes, in two runs (each row is a process of
  its own, so the test measures only what it checks): every mode's forward
  step with the content scan ('forward'), the indexes' train steps
  ('train', with the plot, then again with --resume). Returns the
  directory and {run: (process, rows)}, and the resumed process."""
  common = ["--sparse_k=3", "--memory_sizes=8", "--word_size=3",
            "--batch_size=2", "--seq_len=3", "--repeats=1",
            "--controller_units=4"]
  runs = {"forward": ["--modes=soft,hard,sparse", "--content=on",
                      "--phases=forward"],
          "train": ["--modes=hard,sparse", "--content=written,hash",
                    "--phases=train", f"--plot={out}/cost.png"]}

  def run(name, *extra):
    return subprocess.run(
        [sys.executable, "-m", "benchmarks.cost", *common, *runs[name],
         f"--json={out}/{name}.json", *extra],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)

  got = {}
  for name in runs:
    process = run(name)
    rows = None
    if not process.returncode:  # else the test reports the failure
      with open(f"{out}/{name}.json") as f:
        rows = json.load(f)
    got[name] = process, rows
  return out, got, run("train", "--resume")


COMMANDS = {"test_command_writes_table_json_and_plot": _cost_runs}


class CostBenchmarkTest(tf.test.TestCase):

  def test_command_writes_table_json_and_plot(self):
    out, got, again = background.result(self._testMethodName, _cost_runs)
    for process, _ in got.values():
      self.assertEqual(process.returncode, 0, process.stderr[-3000:])
      self.assertIn("memory bandwidth", process.stdout)
      self.assertIn("ms/step", process.stdout)
    forward, rows = got["forward"][0], got["forward"][1] + got["train"][1]
    self.assertIn("content_scores", forward.stdout)  # the soft breakdown
    self.assertIn("content scan", forward.stdout)  # hard and sparse scans
    self.assertEqual(sorted((r["mode"], r["content"], r["phase"])
                            for r in rows),
                     [("hard", "on", "forward"), ("hard", "written", "train"),
                      ("soft", "on", "forward"), ("sparse", "hash", "train"),
                      ("sparse", "on", "forward"),
                      ("sparse", "written", "train")])
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
    self.assertEqual(again.stdout.count("kept from"), 3)
    with open(os.path.join(out, "train.json")) as f:
      self.assertEqual(json.load(f), got["train"][1])

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
