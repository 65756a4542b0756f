"""benchmarks.plain_fit's parts that need no training (in
benchmarks.plain_fit_table, free of flags): its model arguments, the
compile it asks for and its table; and the command end to end at tiny
sizes."""

import os
import subprocess
import sys

import keras
import tensorflow as tf

from benchmarks import plain_fit_table as plain_fit
import memtk
from tasks import common
from tests import background

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _benchmark(out):
  """Four steps of 3 sequences with the paper's RMSProp on a tiny model,
  the run's history, and a bad flag's run."""
  command = [sys.executable, "-m", "benchmarks.plain_fit", "--seeds=0",
             "--parallel=1", "--steps=4", "--eval_every=2",
             "--diagnose_every=2", "--batch_size=3", "--optimizer=rmsprop",
             "--learning_rate=1e-4", "--trace_steps", f"--out={out}",
             "--model=memory_size=8,word_size=4,controller_units=8"]
  process = subprocess.run(command, cwd=ROOT, capture_output=True, text=True,
                           timeout=600, check=False)
  path = os.path.join(out, "seed0", "history.json")
  run = common.load_json(path) if os.path.exists(path) else None
  if run is not None:
    run["steps"] = common.load_json(os.path.join(out, "seed0", "steps.json"))
  bad = subprocess.run(
      [sys.executable, "-m", "benchmarks.plain_fit", "--batch_size=0"],
      cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
  return process, run, bad


COMMANDS = {"test_command_trains_with_its_batch_and_optimizer": _benchmark}


def _history(*points):
  return [{"step": 200 * (i + 1), "seconds": 10.0 * (i + 1),
           "bits_per_sequence": b} for i, b in enumerate(points)]


class PlainFitTest(tf.test.TestCase):

  def test_model_keyword_arguments(self):
    self.assertEqual(plain_fit.model_kwargs(
        ["memory_init='learned'", "num_read_heads=2"]),
                     {"memory_init": "learned", "num_read_heads": 2})
    with self.assertRaisesRegex(ValueError, "name=value, got 'oops'"):
      plain_fit.model_kwargs(["oops"])
    with self.assertRaisesRegex(ValueError, "memory_init: 'learned' is not"):
      plain_fit.model_kwargs(["memory_init=learned"])

  def test_compile_as_asked(self):
    for optimizer, scale, want_scale, callbacks in (
        ("compile", True, True, 0), ("compile", False, False, 0),
        ("adam", True, True, 0), ("rmsprop", True, True, 0),
        ("recipe", True, False, 1)):
      model = memtk.NTM("lstm", 4, memory_size=8, word_size=4,
                        controller_units=8)
      got = plain_fit.compile_model(model, optimizer, 1e-3, 50.0, scale,
                                    epsilon=1e-4)
      self.assertEqual(model.scale_steps, want_scale, optimizer)
      # restore_best: compile()'s default, off for the recipe (tasks.train).
      self.assertEqual(model.restore_best, optimizer != "recipe", optimizer)
      self.assertLen(got, callbacks)
      if optimizer == "adam":
        self.assertEqual(model.optimizer.global_clipnorm, 50.0)
        self.assertAllClose(model.optimizer.epsilon, 1e-4)
        self.assertFalse(model.optimizer.amsgrad)
      elif optimizer == "rmsprop":  # the NTM paper's
        self.assertIsInstance(model.optimizer, keras.optimizers.RMSprop)
        self.assertAllClose(model.optimizer.momentum, 0.9)
        self.assertEqual(model.optimizer.clipvalue,
                         plain_fit.RMSPROP_CLIP_VALUE)
        self.assertAllClose(model.optimizer.learning_rate, 1e-3)
        self.assertAllClose(model.optimizer.epsilon, 1e-4)
      else:  # compile()'s own optimizer
        self.assertAllClose(model.optimizer.epsilon, 1e-7)

  def test_amsgrad_and_restore_best_as_asked(self):
    model = memtk.NTM("lstm", 4, memory_size=8, word_size=4,
                      controller_units=8)
    plain_fit.compile_model(model, "adam", 1e-3, 10.0, True, amsgrad=True)
    self.assertTrue(model.optimizer.amsgrad)
    self.assertEqual(model.optimizer.global_clipnorm, 10.0)
    plain_fit.compile_model(model, "compile", 1e-3, 10.0, True,
                            restore_best=False)  # --norestore_best
    self.assertFalse(model.restore_best)

  def test_loss_as_asked(self):
    for flag, want in (("compile", memtk.metrics.COMPILE_MARGIN),
                       ("none", None), ("2.5", 2.5)):
      model = memtk.NTM("lstm", 4, memory_size=8, word_size=4,
                        controller_units=8)
      plain_fit.compile_model(model, "adam", 1e-3, 50.0, True, margin=flag)
      self.assertEqual(getattr(model.loss, "margin", None), want, flag)
    for bad in ("0", "-1", "big", "nan"):
      with self.assertRaisesRegex(ValueError, f"--loss_margin must be .* "
                                  f"got '{bad}'"):
        plain_fit.loss_margin(bad)

  def test_table_counts_successes_in_budget_and_collapses(self):
    out = self.get_temp_dir()
    runs = {0: _history(30.0, 0.05, 0.02),        # solved, held
            1: _history(30.0, 0.05, 35.0, 0.08),  # solved, collapsed
            2: _history(30.0, 20.0, 0.5, 1.5, 0.05)}  # after the budget
    for seed, history in runs.items():
      os.makedirs(os.path.join(out, f"seed{seed}"))
      common.save_json(os.path.join(out, f"seed{seed}", "history.json"),
                       {"finished": True, "seed": seed,
                        "flags": {"max_minutes": 0.5}, "history": history})
    self.assertTrue(plain_fit.finished(os.path.join(out, "seed0")))
    self.assertFalse(plain_fit.finished(os.path.join(out, "seed7")))
    runs = plain_fit.seed_runs(out, [0, 1, 2, 7])
    self.assertEqual(list(runs), [0, 1, 2])  # seed 7 has no history
    table = plain_fit.markdown(runs, "the command")
    self.assertIn("| 1 | 400 | 35.00 | 400 | 20 | 35.00 | 800 | 0.080 |",
                  table)
    self.assertIn("| 2 | 600 | 1.50 | 1000 | 50 | 0.05 | 1000 | 0.050 |",
                  table)
    self.assertIn("Under 0.1 within the budget: 2 of 3 (95% Wilson 21-94%); "
                  "of those, 1 never tested above 1 bit", table)
    self.assertIn("Tested above 10 bits after a test under 1 (a collapse): "
                  "1 of 3.", table)
    self.assertIn("median 0.050 (range 0.020-0.080)", table)
    got = plain_fit.curves(plain_fit.seed_runs(out, [0, 1, 7]),
                           batch_size=32)
    self.assertEqual([c[0] for c in got], ["seed 0", "seed 1"])
    self.assertEqual(got[1][1], [6400, 12800, 19200, 25600])
    self.assertEqual(got[1][2], [30.0, 0.05, 35.0, 0.08])
    run = common.load_json(os.path.join(out, "seed1", "history.json"))
    run["flags"]["batch_size"] = 8  # a run's own batch size counts
    common.save_json(os.path.join(out, "seed1", "history.json"), run)
    got = plain_fit.curves(plain_fit.seed_runs(out, [1]))
    self.assertEqual(got[0][1], [1600, 3200, 4800, 6400])

  def test_command_trains_with_its_batch_and_optimizer(self):
    process, run, bad = background.result(self._testMethodName, _benchmark)
    self.assertEqual(process.returncode, 0, process.stderr[-3000:])
    # The steps are the optimizer's: 2 per fit call only when both the draw
    # and fit take 3 sequences a step (6 sequences in batches of 32: 1).
    self.assertEqual([r["step"] for r in run["history"]], [2, 4])
    self.assertEqual(run["flags"]["batch_size"], 3)
    self.assertEqual(run["flags"]["optimizer"], "rmsprop")
    # RMSProp's rate, not compile()'s Adam's.
    self.assertAllClose(run["history"][-1]["learning_rate"], 1e-4)
    self.assertIn("gate_write", run["history"][-1]["heads"])
    # --trace_steps: one row a step; the batches' own losses average to the
    # loss each fit call logged (the means are unwound right).
    steps = run["steps"]
    self.assertEqual(steps["step"], [1, 2, 3, 4])
    self.assertTrue(all(g > 0 for g in steps["gradient_norm"]))
    self.assertAllClose(
        [sum(steps["loss"][:2]) / 2, sum(steps["loss"][2:]) / 2],
        [r["loss"] for r in run["history"]], atol=1e-5)
    self.assertNotAllClose(steps["loss"][0], steps["loss"][1])
    self.assertIn("| 0 |", process.stdout)
    self.assertNotEqual(bad.returncode, 0)
    self.assertIn("--batch_size must be >= 1, got 0", bad.stderr)


if __name__ == "__main__":
  tf.test.main()
