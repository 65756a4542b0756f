"""The convergence table's statistics and the diagnosis plot."""

import os

import tensorflow as tf

from benchmarks import convergence_table as convergence
from memtk import viz
from tasks import common


class StatisticsTest(tf.test.TestCase):

  def test_wilson_interval_against_hand_values(self):
    # 10 of 10: [1 / (1 + z^2 / n), 1] with z = 1.96.
    low, high = convergence.wilson_interval(10, 10)
    self.assertAllClose(low, 1 / (1 + 1.96 ** 2 / 10))
    self.assertEqual(high, 1.0)
    low, high = convergence.wilson_interval(4, 5)
    self.assertAllClose((low, high), (0.3755, 0.9638), atol=1e-4)
    self.assertEqual(convergence.wilson_interval(0, 0), (0.0, 1.0))
    low, high = convergence.wilson_interval(0, 10)
    self.assertEqual(low, 0.0)
    self.assertAllClose(high, 1 - 1 / (1 + 1.96 ** 2 / 10))

  def test_worst_relapse_counts_only_after_the_first_success(self):
    history = [{"bits_per_sequence": b} for b in (30.0, 0.05, 2.5, 0.0)]
    self.assertEqual(convergence.worst_relapse(history), 2.5)
    self.assertIsNone(convergence.worst_relapse(history[:1]))

  def test_success_line(self):
    runs = [{"final_bits": 0.01, "to_0.1_seconds": 100.0, "worst_after": 0.5},
            {"final_bits": 0.3, "to_0.1_seconds": 300.0, "worst_after": 1.5},
            {"final_bits": None, "to_0.1_seconds": None, "worst_after": None}]
    line = convergence.success_line("copy", "soft", runs)
    self.assertIn("in 1 of 3 seeds", line)
    self.assertIn("median 200 s, worst 300 s over the 2 runs", line)
    self.assertIn("after first < 0.1: 1.50", line)


class TableTest(tf.test.TestCase):

  def test_a_run_directory_becomes_a_row_and_the_table_counts_it(self):
    logdir = os.path.join(self.get_temp_dir(), "copy-seed3")
    os.makedirs(logdir)
    history = [{"step": 200 * (i + 1), "seconds": 10.0 * (i + 1),
                "sequences": 6400 * (i + 1), "bits_per_sequence": b}
               for i, b in enumerate((30.0, 0.5, 0.05, 1.2, 0.02))]
    common.save_json(os.path.join(logdir, "history.json"), history)
    common.save_json(os.path.join(logdir, "evaluation.json"), {
        "bits_per_sequence": 0.03, "size_name": "length",
        "generalisation": {"40": 0.5}})
    row = convergence.summarise("copy", 3, logdir)
    self.assertEqual((row["to_1_steps"], row["to_1_seconds"]), (400, 20.0))
    self.assertEqual((row["to_0.1_steps"], row["to_0.1_seconds"]), (600, 30.0))
    self.assertEqual(row["worst_after"], 1.2)
    self.assertEqual((row["steps"], row["final_bits"]), (1000, 0.03))
    table = convergence.markdown([row], "python -m benchmarks.convergence")
    self.assertIn("| soft | 3 | 400 | 20 | 600 | 30 | 1.20 | 1000 | 0.030 | "
                  "0.50 |", table)
    self.assertIn("in 1 of 1 seeds (95% Wilson interval 21-100%)", table)

  def test_hold_end_of_a_hard_run(self):
    # The first evaluation below the greedy threshold (1) or, run softly,
    # below the soft one (0.1) ends the hold; none before the cap: the cap.
    config = {"addressing": "hard", "soft_curriculum_hold": 1000,
              "soft_curriculum_steps": 200, "soft_curriculum_until": 1.0,
              "soft_curriculum_until_soft": 0.1}
    history = [{"step": 200, "bits_per_sequence": 30.0,
                "soft_bits_per_sequence": 0.5},
               {"step": 400, "bits_per_sequence": 30.0,
                "soft_bits_per_sequence": 0.05},
               {"step": 600, "bits_per_sequence": 0.5}]
    self.assertEqual(convergence.hold_end(config, history), 400)
    self.assertEqual(convergence.hold_end(
        dict(config, soft_curriculum_until_soft=0.0), history), 600)
    # A run saved before the soft threshold existed had none.
    older = {k: v for k, v in config.items()
             if k != "soft_curriculum_until_soft"}
    self.assertEqual(convergence.hold_end(older, history), 600)
    self.assertEqual(convergence.hold_end(
        dict(config, soft_curriculum_hold=300), history), 300)
    self.assertEqual(convergence.hold_end(
        dict(config, soft_curriculum_until=0.0,
             soft_curriculum_until_soft=0.0), history), 1000)
    self.assertIsNone(convergence.hold_end(
        dict(config, soft_curriculum_hold=0, soft_curriculum_steps=0),
        history))
    self.assertIsNone(convergence.hold_end(
        dict(config, addressing="soft"), history))

  def test_the_hold_column_shows_for_hard_runs(self):
    rows = []
    for method, addressing in (("soft", "soft"), ("reinforce", "hard")):
      logdir = os.path.join(self.get_temp_dir(), f"copy-{method}-seed0")
      os.makedirs(logdir)
      common.save_json(os.path.join(logdir, "config.json"), dict(
          common.DEFAULT_CONFIG, addressing=addressing))
      common.save_json(os.path.join(logdir, "history.json"), [
          {"step": 200, "seconds": 10.0, "sequences": 6400,
           "bits_per_sequence": 0.5}])
      common.save_json(os.path.join(logdir, "evaluation.json"), {
          "bits_per_sequence": 0.03, "size_name": "length",
          "generalisation": {}})
      rows.append(convergence.summarise("copy", 0, logdir, method))
    table = convergence.markdown(rows, "python -m benchmarks.convergence")
    self.assertIn("| method | seed | soft hold ended | steps to <1 |", table)
    self.assertIn("| soft | 0 | — | 200 | 10 |", table)
    self.assertIn("| reinforce | 0 | 200 | 200 | 10 |", table)

  def test_a_task_with_its_own_measure_reports_its_errors(self):
    rows = []
    for seed, final in ((0, 2.5), (1, 4.0), (2, 3.0)):
      logdir = os.path.join(self.get_temp_dir(), f"ngrams-seed{seed}")
      os.makedirs(logdir)
      common.save_json(os.path.join(logdir, "history.json"), [
          {"step": 200, "seconds": 60.0, "sequences": 6400,
           "bits_per_sequence": 9.0},
          {"step": 400, "seconds": 120.0, "sequences": 12800,
           "bits_per_sequence": final - 0.5}])
      common.save_json(os.path.join(logdir, "evaluation.json"), {
          "bits_per_sequence": final, "size_name": "length",
          "error_name": "excess bits", "generalisation": {"400": 2 * final}})
      rows.append(convergence.summarise("ngrams", seed, logdir))
    table = convergence.markdown(rows, "python -m benchmarks.convergence")
    self.assertIn("**ngrams** (error: excess bits)", table)
    self.assertIn("| soft | 1 | 400 | 120 | 3.50 | 4.00 | 8.00 |", table)
    self.assertIn("ngrams, soft: final excess bits: median 3.00, worst 4.00 "
                  "over 3 seeds; best evaluation of any run 2.00.", table)
    self.assertNotIn("Wilson", table)


class RunDirTest(tf.test.TestCase):

  def test_soft_only_study_finds_the_runs_of_a_study_of_several(self):
    out = self.get_temp_dir()
    # A study of several methods names each run by its method.
    self.assertEqual(convergence.run_dir(out, "copy", "lstm", 2,
                                         ["soft", "lstm"]),
                     os.path.join(out, "copy-lstm-seed2"))
    # A soft-only study keeps the older name while no such run is there ...
    self.assertEqual(convergence.run_dir(out, "tasks.x:make", "soft", 2,
                                         ["soft"]),
                     os.path.join(out, "tasks.x.make-seed2"))
    # ... and takes the soft run of a study of several methods when it is.
    os.makedirs(os.path.join(out, "copy-soft-seed2"))
    self.assertEqual(convergence.run_dir(out, "copy", "soft", 2, ["soft"]),
                     os.path.join(out, "copy-soft-seed2"))


class DiagnosisPlotTest(tf.test.TestCase):

  def test_plot_writes_a_png(self):
    heads = {key: 0.5 for key in (
        "bits", "bits_no_memory", "entropy_write", "entropy_read",
        "gate_write", "gate_read", "shift_write", "shift_read", "gamma_write",
        "gamma_read", "grad_norm_controller", "grad_norm_interface")}
    history = [{"sequences": 32 * i, "heads": dict(heads, bits=float(i))}
               for i in range(3)]
    path = os.path.join(self.get_temp_dir(), "diagnosis.png")
    viz.plot_diagnostics(path, [("run", history)], title="t")
    self.assertGreater(os.path.getsize(path), 10000)


if __name__ == "__main__":
  tf.test.main()
