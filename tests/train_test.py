"""The training and evaluation CLIs, end to end on a tiny model."""

import glob
import json
import os
import signal
import subprocess
import sys
import time
from unittest import mock

import numpy as np
import tensorflow as tf

from tests import background

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_TINY = ["--memory_size=8", "--word_size=4", "--controller_units=8",
         "--eval_every=10", "--eval_sequences=20", "--test_sequences=30",
         "--log_every=10",
         "--generalisation_sizes=20,24"]
# The same, for tasks with other sizes than copy's or none.
_TINY_ANY_TASK = [a for a in _TINY if not a.startswith("--generalisation")]


def summary_tags(logdir):
  """Every tag in the TensorBoard events under <logdir>/tensorboard."""
  tags = set()
  for path in glob.glob(os.path.join(logdir, "tensorboard", "events.*")):
    for record in tf.data.TFRecordDataset(path):
      event = tf.compat.v1.Event.FromString(record.numpy())
      tags.update(value.tag for value in event.summary.value)
  return tags


def _env():
  return dict(os.environ, PYTHONPATH=_ROOT + os.pathsep
              + os.environ.get("PYTHONPATH", ""))


def run(module, *args):
  return subprocess.run([sys.executable, "-m", module, *args], cwd=_ROOT,
                        capture_output=True, text=True, env=_env(),
                        timeout=600)


# The commands of each test below: a function of a fresh directory that runs
# them in order and returns what the test checks (tests.background runs them
# beside the rest of the suite).
def _resume_and_evaluate(tmp):
  logdir = os.path.join(tmp, "run")
  got = {"logdir": logdir}
  got["first"] = run("tasks.train", f"--logdir={logdir}", "--max_steps=20",
                     *_TINY)
  if got["first"].returncode:
    return got  # the test reports the failure
  got["first_history"] = _load(logdir, "history.json")
  got["first_evaluation"] = _load(logdir, "evaluation.json")
  got["tags"] = summary_tags(logdir)
  # The same command with a larger budget resumes at step 20.
  got["second"] = run("tasks.train", f"--logdir={logdir}", "--max_steps=30",
                      *_TINY)
  if got["second"].returncode:
    return got
  got["evaluated"] = run("tasks.evaluate", f"--logdir={logdir}", "--sizes=21",
                         "--num_sequences=10", "--test_sequences=40")
  # The same logdir with another setting is refused (before it trains).
  got["changed"] = run("tasks.train", f"--logdir={logdir}", "--max_steps=40",
                       "--learning_rate=0.5", *_TINY)
  # Trained with N = 8, run with N = 48 on copies longer than 8 fit; written
  # to --out, the run's own evaluation untouched.
  got["before"] = open(os.path.join(logdir, "evaluation.json")).read()
  got["out"] = os.path.join(tmp, "larger")
  got["larger"] = run("tasks.evaluate", f"--logdir={logdir}", "--sizes=40",
                      "--num_sequences=10", "--test_sequences=10",
                      "--memory_size=48", f"--out={got['out']}")
  got["after"] = open(os.path.join(logdir, "evaluation.json")).read()
  # The saved .keras model, moved away from its run directory.
  got["saved"] = saved = os.path.join(tmp, "elsewhere", "copy.keras")
  os.makedirs(os.path.dirname(saved))
  os.replace(os.path.join(logdir, "model.keras"), saved)
  got["no_task"] = run("tasks.evaluate", f"--logdir={saved}")
  got["from_file"] = run("tasks.evaluate", f"--logdir={saved}", "--task=copy",
                         "--sizes=21", "--num_sequences=10",
                         "--test_sequences=40")
  return got


def _trained_and_evaluated(logdir, train_args, *evaluations):
  """(logdir, the 10-step run, its evaluation.json, each tasks.evaluate run
  of `evaluations`, a list of flags each)."""
  trained = run("tasks.train", f"--logdir={logdir}", "--max_steps=10",
                *train_args)
  evaluation = _load(logdir, "evaluation.json")  # before evaluate rewrites it
  return (logdir, trained, evaluation, *(
      run("tasks.evaluate", f"--logdir={logdir}", *args)
      for args in evaluations))


def _hard_custom_controller(tmp):
  return _trained_and_evaluated(
      os.path.join(tmp, "hard"),
      ["--addressing=hard", "--estimator=reinforce",
       "--soft_curriculum_hold=0", "--soft_curriculum_steps=5",
       "--nocontent_addressing", "--controller=tasks.custom_controller:make",
       *_TINY],
      ["--sizes=21", "--num_sequences=10", "--test_sequences=40"])


def _sparse_run(tmp):
  return _trained_and_evaluated(
      os.path.join(tmp, "sparse"),
      ["--addressing=sparse", "--sparse_k=3", "--empty_rows_as=0", *_TINY],
      ["--sizes=21", "--num_sequences=10", "--test_sequences=30"])


def _indexed_run(tmp):
  # The written-rows index, evaluated at a length the training never ran.
  return _trained_and_evaluated(
      os.path.join(tmp, "indexed"),
      ["--addressing=sparse", "--sparse_k=3", "--content_index=written",
       *_TINY, "--generalisation_sizes=24"],  # a compile per length
      ["--sizes=21", "--num_sequences=10", "--test_sequences=30"])


def _own_task(tmp):
  # A task with only the contract's required parts (no sizes, no fixed
  # num_steps, no difficulty), trained and evaluated by the baseline.
  return _trained_and_evaluated(
      os.path.join(tmp, "reverse"),
      ["--task=tasks.reverse:make", "--model=lstm", *_TINY_ANY_TASK],
      ["--test_sequences=30"], ["--sizes=30"])


def _own_task_ntm(tmp):
  # The same task through the NTM: its time axis is unknown to the compiled
  # step, which XLA compiles at the length of the batches.
  return _trained_and_evaluated(
      os.path.join(tmp, "reverse_ntm"),
      ["--task=tasks.reverse:make", *_TINY_ANY_TASK],
      ["--test_sequences=30"])


def _own_error_measure(tmp):
  logdir = os.path.join(tmp, "ngrams")
  return logdir, run("tasks.train", f"--logdir={logdir}", "--max_steps=10",
                     "--task=ngrams", "--generalisation_sizes=30",
                     *_TINY_ANY_TASK)


# Steps of the killed run: 70 after its first checkpoint (at 10), so the
# kill lands before the end even when the machine is busy (at 40 steps a
# loaded run once wrote its last checkpoint before the kill).
_KILLED_RUN_STEPS = 80


def _killed_and_resumed(tmp):
  # A hard run (sampled choices, curriculum) so the choice noise must resume
  # too. One run goes uninterrupted; the other is SIGKILLed once it has a
  # checkpoint, then restarted with the same command.
  args = [f"--max_steps={_KILLED_RUN_STEPS}", "--final_eval=false",
          "--tensorboard=false",
          "--deterministic", "--addressing=hard", "--estimator=reinforce",
          "--soft_curriculum_hold=0", "--soft_curriculum_steps=20", *_TINY]
  whole = os.path.join(tmp, "whole")
  killed = os.path.join(tmp, "killed")
  got = {"whole": whole, "killed": killed}
  got["result"] = run("tasks.train", f"--logdir={whole}", *args)
  process = subprocess.Popen(
      [sys.executable, "-m", "tasks.train", f"--logdir={killed}", *args],
      cwd=_ROOT, env=_env(), stdout=subprocess.DEVNULL,
      stderr=subprocess.DEVNULL)
  state = os.path.join(killed, "checkpoints", "checkpoint")
  deadline = time.time() + 300
  while not os.path.exists(state) and time.time() < deadline:
    time.sleep(0.05)
  process.send_signal(signal.SIGKILL)
  process.wait()
  got["killed_at"] = tf.train.latest_checkpoint(os.path.dirname(state))
  got["resumed"] = run("tasks.train", f"--logdir={killed}", *args)
  return got


def _bad_flags(tmp):
  # Through the command line: the one-line error and the exit code, for a
  # check of ours and for a flag absl rejects.
  flagged = [(flag, message, run("tasks.train", flag, "--max_steps=1",
                                 f"--logdir={tmp}/bad"))
             for flag, message in [
                 ("--memory_size=0", "--memory_size must be >= 1, got 0"),
                 ("--lr_schedule=cosine", "--lr_schedule")]]
  return flagged, run("tasks.evaluate", f"--logdir={tmp}/missing")


# Longest first (the pool takes them in this order), but the indexed run
# first of all: tests/index_recall_test.py reads it too.
COMMANDS = {
    "test_indexed_sparse_run_keeps_its_index": _indexed_run,
    "test_killed_run_resumes_with_the_same_losses": _killed_and_resumed,
    "test_train_resume_and_evaluate": _resume_and_evaluate,
    "test_hard_run_with_a_custom_controller": _hard_custom_controller,
    "test_sparse_run_saves_and_reloads_its_k": _sparse_run,
    "test_bad_flags_give_one_line_errors": _bad_flags,
    "test_a_task_with_its_own_error_measure": _own_error_measure,
    "test_own_task_with_the_lstm_baseline": _own_task,
    "test_own_task_with_the_ntm": _own_task_ntm,
}


def _load(logdir, name):
  """The JSON file, or None where a failed command wrote none."""
  path = os.path.join(logdir, name)
  if not os.path.exists(path):
    return None
  with open(path) as f:
    return json.load(f)


class TrainCliTest(tf.test.TestCase):

  def ran(self):
    """What this test's commands returned (tests.background)."""
    name = self._testMethodName
    return background.result(name, COMMANDS[name])

  def assert_evaluate_repeats_the_run(self, evaluated, evaluation):
    """tasks.evaluate on 30 test sequences printed the run's own figure."""
    self.assertEqual(evaluated.returncode, 0, evaluated.stderr)
    self.assertIn(f"{evaluation['bits_per_sequence']:.4f} bit errors per "
                  "sequence on 30", evaluated.stdout)

  def test_train_resume_and_evaluate(self):
    got = self.ran()
    first, logdir = got["first"], got["logdir"]
    self.assertEqual(first.returncode, 0, first.stderr + first.stdout)
    for notice in ("cuInit", "oneDNN", "absl::InitializeLog", "cuda drivers"):
      self.assertNotIn(notice, first.stderr + first.stdout)  # tasks.startup
    self.assertIn("eval      20", first.stdout)
    self.assertRegex(first.stdout, r"step +10/20 +loss")
    self.assertEqual([r["step"] for r in got["first_history"]], [10, 20])
    evaluation = got["first_evaluation"]
    self.assertEqual(set(evaluation["generalisation"]), {"20", "24"})
    self.assertEqual(evaluation["num_sequences"], 30)  # --test_sequences
    for name in ("heatmap.png", "heatmap_long.png"):
      self.assertGreater(os.path.getsize(os.path.join(logdir, name)), 1000)
    self.assertContainsSubset(
        {"eval/bits_per_sequence", "train/loss", "train/bit_errors",
         "train/learning_rate", "train/sequences_per_second", "attention"},
        got["tags"])

    second = got["second"]
    self.assertEqual(second.returncode, 0, second.stderr + second.stdout)
    self.assertIn("resuming from", second.stdout)
    self.assertIn("at step 20", second.stdout)
    self.assertEqual([r["step"] for r in _load(logdir, "history.json")],
                     [10, 20, 30])

    evaluated = got["evaluated"]
    self.assertEqual(evaluated.returncode, 0, evaluated.stderr)
    self.assertIn("length=21", evaluated.stdout)
    self.assertIn("on 40 fresh test sequences", evaluated.stdout)
    larger = got["larger"]
    self.assertEqual(larger.returncode, 0, larger.stderr)
    self.assertIn("evaluating with a memory of 48 cells", larger.stdout)
    evaluation = _load(got["out"], "evaluation.json")
    self.assertEqual(evaluation["memory_size"], 48)
    self.assertEqual(set(evaluation["generalisation"]), {"40"})
    self.assertTrue(os.path.exists(os.path.join(got["out"],
                                                "heatmap_long.png")))
    self.assertEqual(got["after"], got["before"])

    no_task = got["no_task"]
    self.assertNotEqual(no_task.returncode, 0)
    self.assertIn("pass --task", no_task.stderr)
    from_file = got["from_file"]
    self.assertEqual(from_file.returncode, 0, from_file.stderr)
    self.assertIn("length=21", from_file.stdout)
    self.assertTrue(os.path.exists(os.path.join(os.path.dirname(got["saved"]),
                                                "evaluation.json")))

  def test_hard_run_with_a_custom_controller(self):
    logdir, result, evaluation, evaluated = self.ran()
    self.assertEqual(result.returncode, 0, result.stderr + result.stdout)
    config = _load(logdir, "config.json")
    self.assertFalse(config["content_addressing"])
    self.assertIn("hard (reinforce) addressing: "
                  "tasks.custom_controller:make controller", result.stdout)
    self.assertIn("(sampled choices)", result.stdout)
    self.assertContainsSubset({"train/advantage_std", "train/soft_batch"},
                              summary_tags(logdir))
    self.assertEqual(evaluation["addressing"], "hard")
    self.assertEqual(set(evaluation["sampled"]["generalisation"]),
                     {"20", "24"})
    self.assertEqual(evaluated.returncode, 0, evaluated.stderr)
    self.assertIn("length=21 (sampled choices)", evaluated.stdout)

  def test_sparse_run_saves_and_reloads_its_k(self):
    logdir, result, evaluation, evaluated = self.ran()
    self.assertEqual(result.returncode, 0, result.stderr + result.stdout)
    self.assertIn("sparse (K=3) addressing", result.stdout)
    config = _load(logdir, "config.json")
    self.assertEqual((config["addressing"], config["sparse_k"]), ("sparse", 3))
    self.assertEqual(config["empty_rows_as"], 0.0)
    self.assertEqual(evaluation["addressing"], "sparse")
    self.assertNotIn("sampled", evaluation)
    # The saved model keeps K: evaluating it gives the run's own result.
    self.assert_evaluate_repeats_the_run(evaluated, evaluation)

  def test_indexed_sparse_run_keeps_its_index(self):
    logdir, result, evaluation, evaluated = self.ran()
    self.assertEqual(result.returncode, 0, result.stderr + result.stdout)
    self.assertIn("sparse (K=3, content index 'written') addressing",
                  result.stdout)
    self.assertEqual(_load(logdir, "config.json")["content_index"], "written")
    self.assertEqual(set(evaluation["generalisation"]), {"24"})
    # The saved model keeps its index; at length 21 it runs a loop whose
    # length the compiled step learns only when it runs.
    self.assert_evaluate_repeats_the_run(evaluated, evaluation)
    self.assertIn("length=21", evaluated.stdout)

  def test_own_task_with_the_lstm_baseline(self):
    logdir, result, evaluation, evaluated, sized = self.ran()
    self.assertEqual(result.returncode, 0, result.stderr + result.stdout)
    self.assertRegex(result.stdout, r"training tasks.reverse:make, LSTM "
                     r"baseline: \d+ units, no external memory, [\d,]+ "
                     r"parameters \(the NTM of these settings: [\d,]+\)")
    self.assertEqual((evaluation["model"], evaluation["generalisation"]),
                     ("lstm", {}))
    self.assertTrue(os.path.exists(os.path.join(logdir, "heatmap.png")))
    self.assertFalse(os.path.exists(os.path.join(logdir, "heatmap_long.png")))
    self.assert_evaluate_repeats_the_run(evaluated, evaluation)
    self.assertNotEqual(sized.returncode, 0)
    self.assertIn("has no variant(size)", sized.stderr)

  def test_own_task_with_the_ntm(self):
    logdir, result, evaluation, evaluated = self.ran()
    self.assertEqual(result.returncode, 0, result.stderr + result.stdout)
    self.assertIn("training tasks.reverse:make, soft addressing",
                  result.stdout)
    self.assertEqual((evaluation["model"], evaluation["generalisation"]),
                     ("ntm", {}))
    self.assertTrue(os.path.exists(os.path.join(logdir, "heatmap.png")))
    self.assert_evaluate_repeats_the_run(evaluated, evaluation)

  def test_a_task_with_its_own_error_measure(self):
    logdir, result = self.ran()
    self.assertEqual(result.returncode, 0, result.stderr + result.stdout)
    self.assertRegex(result.stdout, r"eval +10 +[\d.]+ excess bits per "
                     "sequence over the Bayes-optimal predictor")
    evaluation = _load(logdir, "evaluation.json")
    self.assertEqual(set(evaluation["generalisation"]), {"30"})
    self.assertIn("excess bits", evaluation["error_name"])

  def test_killed_run_resumes_with_the_same_losses(self):
    got = self.ran()
    self.assertEqual(got["result"].returncode, 0, got["result"].stderr)
    self.assertIsNotNone(got["killed_at"])
    self.assertNotIn(f"ckpt-{_KILLED_RUN_STEPS}",
                     got["killed_at"])  # killed before the end
    resumed = got["resumed"]
    self.assertEqual(resumed.returncode, 0, resumed.stderr)
    self.assertIn("resuming from", resumed.stdout)
    want = _load(got["whole"], "history.json")
    have = _load(got["killed"], "history.json")
    self.assertEqual([r["step"] for r in have], [r["step"] for r in want])
    for key in ("loss", "bits_per_sequence", "learning_rate"):
      self.assertEqual([r[key] for r in have], [r[key] for r in want], key)

  def test_changed_settings_in_same_logdir_are_refused(self):
    # The resumed run's logdir (its commands run once for both tests).
    got = background.result("test_train_resume_and_evaluate",
                            _resume_and_evaluate)
    self.assertIn("changed", got, "the run to resume failed")
    changed = got["changed"]
    self.assertNotEqual(changed.returncode, 0)
    self.assertIn("learning_rate", changed.stderr)

  def test_bad_flags_give_one_line_errors(self):
    flagged, missing = self.ran()
    for flag, message, result in flagged:
      self.assertNotEqual(result.returncode, 0, flag)
      self.assertIn(message, result.stderr, flag)
      self.assertNotIn("Traceback", result.stderr, flag)
      self.assertIn(message, result.stderr.splitlines()[0], flag)
    self.assertNotEqual(missing.returncode, 0)
    self.assertIn("no config.json", missing.stderr)
    self.assertNotIn("Traceback", missing.stderr)

  def test_every_bad_flag_is_named(self):
    # What main() makes of each bad flag, in this process (a process each
    # would cost TensorFlow's start every time): absl's parsing error, or
    # main's exit with the one-line message.
    from absl import flags  # pylint: disable=g-import-not-at-top
    from tasks import train  # pylint: disable=g-import-not-at-top
    for flag, message in [("--memory_size=0", "--memory_size must be >= 1, got 0"),
                          ("--controller=transformer", "'transformer'"),
                          ("--shift_range=70", "shift_range=70"),
                          ("--memory_init=ones", "'ones'"),
                          ("--temperature=0", "temperature must be > 0"),
                          ("--addressing=fuzzy", "--addressing"),
                          ("--sparse_k=0", "--sparse_k must be >= 1, got 0"),
                          ("--threads=-1", "--threads must be >= 0, got -1"),
                          ("--task=tasks.reverse:missing",
                           "has no callable 'missing'"),
                          ("--learning_rate=-1", "--learning_rate must be > 0"),
                          ("--lr_floor=0", "--lr_floor must be in (0, 1], got 0"),
                          ("--lr_error_power=-1", "--lr_error_power must be > 0, got -1"),
                          ("--soft_curriculum_until=-1",
                           "--soft_curriculum_until must be >= 0, got -1"),
                          ("--soft_curriculum_until_soft=-0.5",
                           "--soft_curriculum_until_soft must be >= 0, got "
                           "-0.5"),
                          ("--reinforce_samples=0",
                           "reinforce_samples must be an int >= 1, got 0"),
                          ("--adaptive_curriculum=-1",
                           "--adaptive_curriculum must be >= 0, got -1"),
                          ("--curriculum_full_share=0.4",
                           "--curriculum_full_share must be in [0, 0.35], "
                           "got 0.4"),
                          ("--adaptive_curriculum=1 --curriculum_steps=10",
                           "are two length curricula"),
                          ("--adaptive_curriculum=1 --task=tasks.reverse:make",
                           "--adaptive_curriculum=1.0 needs a task whose "
                           "sample takes a difficulty"),
                          ("--lr_schedule=cosine", "--lr_schedule")]:
      error = None
      try:
        flags.FLAGS(["tasks.train", *flag.split(), "--max_steps=1",
                     f"--logdir={self.get_temp_dir()}/bad"])
        train.main([])
      except flags.Error as e:
        error = str(e)
      except SystemExit as e:
        error = str(e.code)
      finally:
        flags.FLAGS.unparse_flags()
      self.assertIsNotNone(error, flag)
      self.assertIn(message, error, flag)


class ThreadsTest(tf.test.TestCase):

  def test_threads_set_the_ops_threads_before_tensorflow_starts(self):
    # A fresh process each: TensorFlow takes the setting only before it runs.
    code = ("import sys; from tasks import train; import tensorflow as tf; "
            "train.set_threads(int(sys.argv[1])); tf.constant(1.0) + 1.0; "
            "print(tf.config.threading.get_intra_op_parallelism_threads())")
    for threads in (3, 0):
      out = subprocess.run([sys.executable, "-c", code, str(threads)],
                           capture_output=True, text=True, check=True)
      self.assertEqual(out.stdout.split()[-1], str(threads))

  def test_main_passes_the_flag_on(self):
    # Here TensorFlow already runs, so main() can only say it was not applied.
    from absl import flags  # pylint: disable=g-import-not-at-top
    from tasks import train  # pylint: disable=g-import-not-at-top
    tf.constant(1.0)
    threads = tf.config.threading.get_intra_op_parallelism_threads() + 5
    try:
      flags.FLAGS(["tasks.train", f"--threads={threads}", "--memory_size=0",
                   f"--logdir={self.get_temp_dir()}/bad"])
      with self.assertLogs(level="WARNING") as logs, self.assertRaises(
          SystemExit):
        train.main([])
    finally:
      flags.FLAGS.unparse_flags()
    self.assertIn(f"--threads={threads} not applied", "\n".join(logs.output))


def _config_of(args):
  """tasks.train's run config for the flags `args`."""
  from absl import flags  # pylint: disable=g-import-not-at-top
  from tasks import train  # pylint: disable=g-import-not-at-top
  try:
    flags.FLAGS(["tasks.train", *args])
    return train.config_from_flags()
  finally:
    flags.FLAGS.unparse_flags()


class TaskSettingsTest(tf.test.TestCase):

  def test_repeat_copy_takes_its_curriculum_unless_flags_say_otherwise(self):
    # (flags, adaptive_curriculum, curriculum_full_share)
    for args, want_curriculum, want_share in [
        (["--task=repeat_copy"], 1.0, 0.0),
        (["--task=repeat_copy", "--adaptive_curriculum=0.5"], 0.5, 0.0),
        (["--task=repeat_copy", "--curriculum_full_share=0.1"], 1.0, 0.1),
        (["--task=repeat_copy", "--adaptive_curriculum=0"], 0.0, 0.0),
        (["--task=repeat_copy", "--curriculum_steps=100"], 0.0, 0.1),
        (["--task=copy"], 0.0, 0.1)]:
      config = _config_of(args)
      self.assertEqual(config["adaptive_curriculum"], want_curriculum, args)
      self.assertEqual(config["curriculum_full_share"], want_share, args)


class FromScratchConfigTest(tf.test.TestCase):

  def test_hard_from_the_first_step_takes_the_from_scratch_recipe(self):
    from tasks import common  # pylint: disable=g-import-not-at-top
    scratch = ["--addressing=hard", "--soft_curriculum_hold=0",
               "--soft_curriculum_steps=0"]
    curriculum = common.FROM_SCRATCH["adaptive_curriculum"]
    reward = common.FROM_SCRATCH["read_reward"]
    self.assertGreater(curriculum, 0)
    self.assertGreater(reward, 0)
    # (flags, adaptive_curriculum, read_reward)
    for args, want_curriculum, want_reward in [
        (scratch, curriculum, reward),
        (scratch + ["--estimator=gumbel"], curriculum, 0.0),
        (scratch + ["--adaptive_curriculum=0"], 0.0, reward),
        (scratch + ["--adaptive_curriculum=0.5"], 0.5, reward),
        (scratch + ["--read_reward=0"], curriculum, 0.0),
        (scratch + ["--read_reward=2"], curriculum, 2.0),
        (scratch + ["--curriculum_steps=100"], 0.0, reward),
        (scratch + ["--task=tasks.reverse:make"], 0.0, reward),
        (["--addressing=hard"], 0.0, 0.0),  # a soft phase first
        (scratch[1:], 0.0, 0.0)]:  # soft addressing
      config = _config_of(args)
      self.assertEqual(config["adaptive_curriculum"], want_curriculum, args)
      self.assertEqual(config["read_reward"], want_reward, args)
      self.assertEqual(config["read_reward_cells"], "answer", args)
      self.assertEqual(config["read_reward_heads"], "all", args)
    for key, value in common.FROM_SCRATCH.items():
      self.assertEqual(common.METHODS["reinforce_scratch"][key], value)


class DivergenceTest(tf.test.TestCase):

  def _model_and_callback(self, step, config=None, **kwargs):
    """A tiny model at optimizer step `step` and the trainer's evaluation
    callback on it (no checkpoint manager)."""
    from tasks import common  # pylint: disable=g-import-not-at-top
    from tasks import train  # pylint: disable=g-import-not-at-top
    config = dict(common.DEFAULT_CONFIG, memory_size=8, word_size=4,
                  controller_units=8, **(config or {}))
    task = common.make_task("copy")
    model = common.make_model(config, task)
    model.optimizer.iterations.assign(step)
    callback = train.EvaluateAndCheckpoint(
        task, config, self.get_temp_dir(), manager=None, history=[],
        num_sequences=1, target_bits=0.05, converge_evals=3, elapsed=0.0,
        **kwargs)
    callback.set_model(model)
    return model, callback

  def test_a_nan_loss_stops_with_the_step_and_the_bad_weights(self):
    model, callback = self._model_and_callback(37)
    kernel = model.cell.output_layer.kernel
    kernel.assign(np.where(np.arange(kernel.shape[1]) == 0, np.nan,
                           kernel.numpy()))
    callback.on_train_batch_end(3, {"loss": 0.5})
    self.assertIsNone(callback.diverged_at)
    callback.on_train_batch_end(4, {"loss": float("nan")})
    self.assertEqual(callback.diverged_at, 37)
    self.assertEqual(callback.bad_tensors, [kernel.path])
    self.assertTrue(model.stop_training)
    callback.on_epoch_end(0, {"loss": float("nan")})  # saves nothing
    self.assertFalse(os.path.exists(os.path.join(self.get_temp_dir(),
                                                 "history.json")))

  def _held(self, until, until_soft):
    """A hard model 40 steps into a million-step soft hold (fade-out 100)
    and the trainer's evaluation callback on it, begun."""
    model, callback = self._model_and_callback(40, config=dict(
        addressing="hard", soft_curriculum_hold=10**6,
        soft_curriculum_steps=100, soft_curriculum_until=until,
        soft_curriculum_until_soft=until_soft))
    callback.manager = mock.Mock()
    callback.on_train_begin()
    return model, callback

  def test_soft_hold_ends_below_soft_curriculum_until(self):
    # --soft_curriculum_until=1: the first evaluation below 1 bit ends the
    # hold at its step, before the checkpoint that keeps it.
    model, callback = self._held(1.0, 0.0)
    saved = []
    callback.manager = mock.Mock(save=lambda checkpoint_number: saved.append(
        (checkpoint_number, model.curriculum_end())))
    self.assertIsNone(callback.soft_evaluator)
    for bits, end in ((2.0, 10**6 + 100), (0.5, 140)):
      callback.evaluator = mock.Mock(bits_per_sequence=lambda *a, b=bits: b)
      callback.on_epoch_end(0, {"loss": 0.1})
      self.assertEqual(saved[-1], (40, end))
    # With --soft_curriculum_until=0 (and no soft threshold) the hold lasts
    # its steps.
    model, callback = self._held(0.0, 0.0)
    self.assertIsNone(callback.end_hold)
    callback.evaluator = mock.Mock(bits_per_sequence=lambda *a: 0.5)
    callback.on_epoch_end(0, {"loss": 0.1})
    self.assertEqual(model.curriculum_end(), 10**6 + 100)

  def test_soft_hold_ends_below_soft_curriculum_until_soft(self):
    # --soft_curriculum_until_soft=0.1: during the hold, each evaluation
    # also runs the model softly (recorded); below 0.1 the hold
    # ends even though greedy hard choices are far off. Once the hold is
    # over (hard batches fade in) nothing runs softly any more.
    from tasks import common  # pylint: disable=g-import-not-at-top
    from tasks import contract  # pylint: disable=g-import-not-at-top
    model, callback = self._held(1.0, 0.1)
    self.assertIsNotNone(callback.soft_evaluator)
    # The soft evaluator runs the hard model softly: its errors are a soft
    # forward pass's, not the greedy ones.
    task = common.make_task("copy")
    inputs, targets, mask = task.sample(np.random.default_rng(0), 4)
    soft = callback.soft_evaluator.errors(inputs, targets, mask, task=task)
    greedy = callback.evaluator.errors(inputs, targets, mask, task=task)
    self.assertAllClose(soft, contract.sequence_errors(
        task, model(inputs, choice="soft"), inputs, targets, mask))
    self.assertNotAllClose(soft, greedy)

    callback.evaluator = mock.Mock(bits_per_sequence=lambda *a: 30.0)
    logged = []
    callback.log = logged.append
    for soft_bits, end in ((0.5, 10**6 + 100), (0.05, 140)):
      callback.soft_evaluator = mock.Mock(
          bits_per_sequence=lambda *a, b=soft_bits: b)
      logs = {"loss": 0.1}
      callback.on_epoch_end(0, logs)
      self.assertEqual(model.curriculum_end(), end)
      self.assertEqual(callback.history[-1]["soft_bits_per_sequence"],
                       soft_bits)
      # The learning rate follows the lower of the two errors.
      self.assertEqual(logs[common.TRAINED_MONITOR], soft_bits)
      self.assertEqual(logs[common.PHASE_MONITOR], 1.0)
    self.assertIn("(0.0500 run softly)", logged[-1])
    # Mid-fade (the hold ended at step 40; soft batches run until 140).
    model.optimizer.iterations.assign(80)
    callback.soft_evaluator = mock.Mock(side_effect=AssertionError)
    logs = {"loss": 0.1}
    callback.on_epoch_end(0, logs)
    self.assertNotIn("soft_bits_per_sequence", callback.history[-1])
    # Hard batches run: a new phase for the rate (it restarts its lowest
    # error from the greedy hard one, so the fade runs at the hard error's
    # rate, not at the floor a solved soft phase left it at).
    self.assertEqual(logs[common.PHASE_MONITOR], 0.0)
    self.assertEqual(logs[common.TRAINED_MONITOR], 30.0)

  def test_adaptive_level_is_decided_before_the_checkpoint(self):
    from tasks import curriculum  # pylint: disable=g-import-not-at-top
    adaptive = curriculum.Adaptive(threshold=1.0, levels=20, period=40,
                                   start_step=40, level=3)
    model, callback = self._model_and_callback(80, curriculum=adaptive)
    saved, asked = [], []
    callback.manager = mock.Mock(save=lambda checkpoint_number: saved.append(
        (checkpoint_number, adaptive.level_at(checkpoint_number))))
    callback.on_train_begin()

    def bits(*args, difficulty=None, **kwargs):
      asked.append(difficulty)
      return 0.5 if difficulty is not None else 7.0

    callback.evaluator = mock.Mock(bits_per_sequence=bits)
    callback.on_epoch_end(0, {"loss": 0.1})
    self.assertEqual(asked, [None, 3 / 20])  # the test set, then the level
    self.assertEqual(saved, [(80, 4)])
    self.assertEqual(callback.history[-1]["curriculum_level"], 4)
    self.assertEqual(callback.history[-1]["level_bits_per_sequence"], 0.5)
    self.assertEqual(callback.history[-1]["bits_per_sequence"], 7.0)
    callback.on_train_end()  # releases a stream waiting for step 120
    self.assertEqual(adaptive.level_at(120), 4)

  def test_repeated_skipped_updates_stop_training(self):
    model, callback = self._model_and_callback(12, max_skipped=3)
    callback.on_train_batch_end(1, {"loss": 0.5, "skipped_steps": 2.0})
    self.assertIsNone(callback.diverged_at)  # a few skips: training goes on
    self.assertFalse(model.stop_training)
    callback.on_train_batch_end(2, {"loss": 0.5, "skipped_steps": 3.0})
    self.assertEqual(callback.diverged_at, 12)
    self.assertEqual(callback.bad_tensors,
                     ["the loss or its gradient in 3 skipped updates"])
    self.assertTrue(model.stop_training)


class ProgressTest(tf.test.TestCase):

  def test_eta_is_the_sooner_of_the_step_budget_and_the_time_limit(self):
    from tasks import train  # pylint: disable=g-import-not-at-top
    progress = train.Progress(every=10, max_steps=1000, batch_size=10)
    progress._start = 100.0
    # 900 steps of 10 sequences at 100 sequences/s: 90 s.
    self.assertAllClose(progress.eta(100, 100.0, now=130.0), 90.0)
    limited = train.Progress(every=10, max_steps=1000, batch_size=10,
                             max_seconds=360.0, elapsed=300.0)
    limited._start = 100.0
    # 60 s of the limit are left at the start, 30 s after 30 s of training.
    self.assertAllClose(limited.eta(100, 100.0, now=130.0), 30.0)
    self.assertAllClose(limited.eta(100, 100.0, now=200.0), 0.0)


class ConvergedTest(tf.test.TestCase):

  def test_needs_every_recent_evaluation_below_target(self):
    from tasks import train  # pylint: disable=g-import-not-at-top
    history = [{"step": 10 * i, "bits_per_sequence": b}
               for i, b in enumerate((3.0, 0.01, 0.2, 0.01, 0.02))]
    self.assertFalse(train.converged(history[:4], 0.05, 2))
    self.assertTrue(train.converged(history, 0.05, 2))
    self.assertFalse(train.converged(history, 0.05, 3))
    self.assertFalse(train.converged(history[:1], 0.05, 3))

  def test_a_hard_run_converges_only_after_its_curriculum(self):
    from tasks import common  # pylint: disable=g-import-not-at-top
    from tasks import train  # pylint: disable=g-import-not-at-top
    history = [{"step": 10 * i, "bits_per_sequence": 0.0} for i in range(6)]
    config = dict(common.DEFAULT_CONFIG, addressing="hard", memory_size=8,
                  controller_units=8, soft_curriculum_hold=20,
                  soft_curriculum_steps=10)
    task = common.make_task("copy")
    self.assertEqual(train.curriculum_end(common.make_model(config, task)), 30)
    self.assertEqual(train.curriculum_end(common.make_model(
        dict(config, addressing="soft"), task)), 0)
    self.assertFalse(train.converged(history[:5], 0.05, 2, after_step=30))
    self.assertTrue(train.converged(history, 0.05, 2, after_step=30))


if __name__ == "__main__":
  tf.test.main()
