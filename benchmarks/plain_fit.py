r"""A plain loop of `model.fit` calls over fresh batches, as a user writes
it: does memtk.NTM learn, and does a solved model stay solved?

  python -m benchmarks.plain_fit --out=benchmarks/results/plain_fit/compile
  python -m benchmarks.plain_fit --optimizer=adam --clip_norm=50 \
      --out=benchmarks/results/plain_fit/adam_clip50

For every seed: `memtk.NTM("lstm", ...)` with its defaults, compiled, then
until --max_minutes of training (or --steps) have passed (batch is
--batch_size, 32 by default):

    x, y, mask = task.sample(rng, batch * eval_every)  fresh batches
    model.fit(x, y, sample_weight=mask, batch_size=batch, epochs=1)
    test on 1,000 fresh sequences (the numbers tasks.train reports)

--optimizer=compile is `model.compile()` with no optimizer and no callback
(the library's defaults alone); --optimizer=adam compiles with
keras.optimizers.Adam(--learning_rate, global_clipnorm=--clip_norm,
epsilon=--epsilon, amsgrad=--amsgrad), no callback; --optimizer=rmsprop
with the NTM paper's RMSProp (--learning_rate, momentum 0.9, every gradient
component clipped to [-10, 10]; the paper's rate was 1e-4), no callback;
all three compile with scale_steps=--scale_steps (on, compile's default:
the steps shrink with the training error; --noscale_steps: the optimizer's
steps as they are), restore_best=--restore_best (on, compile's default)
and the loss --loss_margin gives (compile()'s own, with its margin, by
default; 'none': the plain cross-entropy).
--optimizer=recipe is
`model.compile(scale_steps=False)` with memtk.training.ErrorScaledRate
watching the held-out error. --data=uniform
draws `task.sample` (every bit uniform: what a user generates), --data=train
the task's training distribution (`train_sample`, tasks.train's).

At every test the run also records memtk.diagnostics on a fixed batch of 64
(gradient norm per part of the model, gate, sharpening, key strength and
entropy per head kind), the numbers that show how a solved model collapses.
With --trace_steps every training step's batch loss, batch bit errors,
gradient norm and step scale go to <out>/seed<N>/steps.json too.
Writes <out>/seed<N>/history.json per seed, <out>/learning_curves.png and
<out>/plain_fit.md, the table: per seed the steps to < 1 and < 0.1, the
worst test after the first < 1 (above 10 bits: a collapse of a nearly solved
model) and after the first < 0.1 (above 1: a relapse the target forbids),
the final error, the count of seeds under 0.1 within the budget with its
Wilson interval and the count of collapses. A seed whose history is
finished is not run again (rerun the command to resume a study; an
unfinished seed starts over).
"""

import os
import subprocess
import sys
import time

from absl import app
from absl import flags
import keras
import numpy as np
import tensorflow as tf

from benchmarks.plain_fit_table import BATCH_SIZE
from benchmarks.plain_fit_table import compile_model
from benchmarks.plain_fit_table import curves
from benchmarks.plain_fit_table import finished
from benchmarks.plain_fit_table import loss_margin
from benchmarks.plain_fit_table import markdown
from benchmarks.plain_fit_table import model_kwargs
from benchmarks.plain_fit_table import seed_runs
import memtk
from tasks import common

# --- what to train ---
_TASK = flags.DEFINE_enum("task", "copy", sorted(common.TASKS), "Task.")
_SEEDS = flags.DEFINE_list("seeds", [str(s) for s in range(10)],
                           "Seeds (weights and data).")
_STEPS = flags.DEFINE_integer("steps", 100000, "Most training steps per seed.")
_MAX_MINUTES = flags.DEFINE_float("max_minutes", 10.0, "Training minutes per "
                                  "seed (tests and diagnostics not counted).")
_DATA = flags.DEFINE_enum("data", "uniform", ["uniform", "train"],
                          "uniform: task.sample; train: task.train_sample.")

# --- how ---
_OPTIMIZER = flags.DEFINE_enum(
    "optimizer", "compile", ["compile", "adam", "rmsprop", "recipe"],
    "compile: model.compile(), no callback; adam: Adam(--learning_rate, "
    "global_clipnorm=--clip_norm), no callback; rmsprop: the NTM paper's "
    "RMSprop(--learning_rate, momentum=0.9, clipvalue=10), no callback; "
    "recipe: model.compile() and ErrorScaledRate.")
_LEARNING_RATE = flags.DEFINE_float("learning_rate", 1e-3, "The rate of "
                                    "--optimizer=adam and rmsprop.")
_BATCH_SIZE = flags.DEFINE_integer("batch_size", BATCH_SIZE,
                                   "Sequences per step.")
_CLIP_NORM = flags.DEFINE_float("clip_norm", 50.0, "Global clip norm "
                                "(--optimizer=adam).")
_EPSILON = flags.DEFINE_float(
    "epsilon", 1e-7, "Adam's epsilon (--optimizer=adam; 1e-7 is Keras's and "
    "compile()'s): a step is about rate x gradient / epsilon where the "
    "gradient's running RMS is below it, the full rate above.")
_AMSGRAD = flags.DEFINE_bool(
    "amsgrad", False, "Adam's AMSGrad variant (--optimizer=adam): it divides "
    "by the largest second moment so far, so a solved model's steps shrink "
    "with its gradients.")
_SCALE_STEPS = flags.DEFINE_bool(
    "scale_steps", True, "compile(scale_steps=...) for --optimizer=compile "
    "and adam: the steps shrink with the training error (SequenceModel; "
    "compile's default); --noscale_steps: the optimizer's steps as they are.")
_RESTORE_BEST = flags.DEFINE_bool(
    "restore_best", True, "compile(restore_best=...) for --optimizer=compile, "
    "adam and rmsprop: once the training error's running mean has been "
    "below memtk.sequence_model.RESTORE_BELOW bits, a step that takes it "
    "above RESTORE_ABOVE sets the weights back to where it was lowest "
    "(compile's default); --norestore_best: off.")
_LOSS_MARGIN = flags.DEFINE_string(
    "loss_margin", "compile", "compile: compile()'s loss (its margin, "
    "memtk.metrics.COMPILE_MARGIN); none: the plain cross-entropy; a number: "
    "the cross-entropy with each right bit's logit counted up to this margin "
    "(memtk.metrics.masked_sigmoid_cross_entropy(margin)).")
_MODEL_FLAGS = flags.DEFINE_list(
    "model", [], "NTM keyword arguments as name=value (Python literals), "
    "e.g. memory_init='learned'.")

# --- output ---
_EVAL_EVERY = flags.DEFINE_integer("eval_every", 200, "Steps between tests.")
_DIAGNOSE_EVERY = flags.DEFINE_integer(
    "diagnose_every", 1000, "Steps between head diagnostics (a multiple of "
    "--eval_every; they cost a few seconds each, not counted as training).")
_TRACE_STEPS = flags.DEFINE_bool(
    "trace_steps", False, "Also record every training step's batch loss, "
    "batch bit errors per sequence, gradient norm (before any clipping) and "
    "step scale in <out>/seed<N>/steps.json (the shape of a collapse, which "
    "the tests every --eval_every steps only bracket; it reads the logs "
    "every step, which costs training time within --max_minutes: for "
    "development runs with --steps, not for the tables).")
_PARALLEL = flags.DEFINE_integer("parallel", 2, "Seeds trained at a time, "
                                 "each in its own process on one thread.")
_OUT = flags.DEFINE_string("out", "benchmarks/results/plain_fit/compile",
                           "Output directory.")

TEST_SEQUENCES = 1000
DIAGNOSIS_SEQUENCES = 64
DIAGNOSIS_STREAM = 7  # rng stream of the fixed diagnosis batch


class Test(keras.callbacks.Callback):
  """At the end of every fit call: the error on 1,000 fresh sequences and
  memtk.diagnostics on a fixed batch; puts the error in the logs as
  'eval_bit_errors' (what ErrorScaledRate watches)."""

  def __init__(self, task, seed, record, diagnose_every):
    super().__init__()
    self.task, self.seed, self.record = task, seed, record
    self.diagnose_every = diagnose_every
    self.evaluator = None
    self.diagnosis = task.sample(np.random.default_rng(
        [seed, DIAGNOSIS_STREAM]), DIAGNOSIS_SEQUENCES)

  def on_epoch_end(self, epoch, logs=None):
    if self.evaluator is None:
      self.evaluator = common.Evaluator(self.model)
    step = int(self.model.optimizer.iterations.numpy())
    bits = self.evaluator.bits_per_sequence(
        self.task, self.seed, common.EVAL_STREAM, step, TEST_SEQUENCES)
    logs[common.EVAL_MONITOR] = bits
    heads = {}
    if step % self.diagnose_every == 0:
      heads = memtk.diagnostics.head_statistics(self.model, *self.diagnosis)
      heads.update({f"grad_norm_{part}": value for part, value in
                    memtk.diagnostics.gradient_norms(
                        self.model, *self.diagnosis).items()})
      heads.update({f"weight_norm_{part}": value for part, value in
                    memtk.diagnostics.weight_norms(self.model).items()})
      inputs, targets, mask = self.diagnosis
      heads.update({f"margin_{key}": value for key, value in
                    memtk.diagnostics.output_margins(
                        self.model.predict_on_batch(inputs), targets,
                        mask).items()})
    self.record(step, bits, logs, heads)


def train_seed(seed, out):
  """Trains one seed (module docstring); writes out/history.json."""
  os.makedirs(out, exist_ok=True)
  task = common.make_task(_TASK.value)
  keras.utils.set_random_seed(seed)
  model = memtk.NTM("lstm", task.output_size,
                    **model_kwargs(_MODEL_FLAGS.value))
  callbacks = compile_model(model, _OPTIMIZER.value, _LEARNING_RATE.value,
                            _CLIP_NORM.value, _SCALE_STEPS.value,
                            _EPSILON.value, _LOSS_MARGIN.value,
                            _AMSGRAD.value, _RESTORE_BEST.value)
  sample = (task.sample if _DATA.value == "uniform"
            else getattr(task, "train_sample", task.sample))
  rng = np.random.default_rng([seed, common.TRAIN_STREAM])
  history = []
  clock = {"training": 0.0}

  def record(step, bits, logs, heads):
    history.append({
        "step": step, "seconds": clock["training"], "bits_per_sequence": bits,
        "loss": float(logs.get("loss", float("nan"))),
        "learning_rate": float(model.optimizer.learning_rate.numpy()),
        "skipped_steps": float(logs.get("skipped_steps", 0.0)),
        "step_scale": float(logs.get("step_scale", 1.0)),
        "restored_steps": float(logs.get("restored_steps", 0.0)),
        **({"heads": heads} if heads else {})})
    line = (f"seed {seed}  step {step:6d}  {bits:8.3f} bit errors per "
            f"sequence  ({clock['training']:.0f} s)  step scale "
            f"{history[-1]['step_scale']:.2f}")
    if history[-1]["restored_steps"]:
      line += f"  restored {history[-1]['restored_steps']:.0f}x"
    if heads:
      grads = " ".join(f"{k[10:]} {v:.3g}" for k, v in heads.items()
                       if k.startswith("grad_norm_"))
      weights = " ".join(f"{k[12:]} {v:.3g}" for k, v in heads.items()
                         if k.startswith("weight_norm_"))
      line += (f"  gamma_w {heads['gamma_write']:.2f}  entropy_w "
               f"{heads['entropy_write']:.3f}  gate_w "
               f"{heads['gate_write']:.2f}  grad {grads}  weights {weights}"
               f"  margin median {heads['margin_median']:.2f} "
               f"p5 {heads['margin_p5']:.2f}")
    print(line, flush=True)

  test = Test(task, seed, record, _DIAGNOSE_EVERY.value)
  steps_trace = StepTrace() if _TRACE_STEPS.value else None
  if steps_trace:
    callbacks = callbacks + [steps_trace]
  step = 0
  while step < _STEPS.value and clock["training"] < 60 * _MAX_MINUTES.value:
    steps = min(_EVAL_EVERY.value, _STEPS.value - step)
    inputs, targets, mask = sample(rng, _BATCH_SIZE.value * steps)
    start = time.time()
    model.fit(inputs, targets, sample_weight=mask,
              batch_size=_BATCH_SIZE.value,
              epochs=1, shuffle=False, verbose=0,
              callbacks=[_Clock(clock, start), test] + callbacks)
    step += steps
  if steps_trace:
    common.save_json(os.path.join(out, "steps.json"), steps_trace.columns)
  common.save_json(os.path.join(out, "history.json"),
                   {"finished": True, "seed": seed, "flags": _run_flags(),
                    "history": history})


class StepTrace(keras.callbacks.Callback):
  """--trace_steps: every training step's batch values, as columns.

  Keras logs the loss and the bit errors as means over the fit call so far;
  with batches of one size the batch's own value is k * mean_k - (k - 1) *
  mean_{k-1} (a skipped step, which counts in neither mean, is not told
  apart). The gradient norm and the step scale are the step's own; it sees
  every step from the first, so row i is step i + 1.
  """

  def __init__(self):
    super().__init__()
    self.columns = {"step": [], "loss": [], "bits_per_sequence": [],
                    "gradient_norm": [], "step_scale": []}
    self.means = None

  def on_epoch_begin(self, epoch, logs=None):
    self.means = None

  def on_train_batch_end(self, batch, logs=None):
    means = (float(logs["loss"]), float(logs["bit_errors"]))
    values = means if self.means is None else tuple(
        (batch + 1) * new - batch * old for new, old in zip(means,
                                                            self.means))
    self.means = means
    for name, value in (
        ("step", len(self.columns["step"]) + 1),
        ("loss", values[0]), ("bits_per_sequence", values[1]),
        ("gradient_norm", float(logs["gradient_norm"])),
        ("step_scale", float(logs.get("step_scale", 1.0)))):
      self.columns[name].append(value)


class _Clock(keras.callbacks.Callback):
  """Adds the fit call's training time to clock['training'] before the test
  runs (so tests and diagnostics are not counted)."""

  def __init__(self, clock, start):
    super().__init__()
    self.clock, self.start = clock, start

  def on_epoch_end(self, epoch, logs=None):
    self.clock["training"] += time.time() - self.start


def _run_flags():
  """Every flag a seed's run depends on (kept in its history, and passed on
  to the process that trains it)."""
  return {"task": _TASK.value, "optimizer": _OPTIMIZER.value,
          "data": _DATA.value, "learning_rate": _LEARNING_RATE.value,
          "batch_size": _BATCH_SIZE.value,
          "clip_norm": _CLIP_NORM.value, "epsilon": _EPSILON.value,
          "amsgrad": _AMSGRAD.value, "restore_best": _RESTORE_BEST.value,
          "model": _MODEL_FLAGS.value,
          "scale_steps": _SCALE_STEPS.value,
          "max_minutes": _MAX_MINUTES.value, "steps": _STEPS.value,
          "eval_every": _EVAL_EVERY.value,
          "diagnose_every": _DIAGNOSE_EVERY.value,
          "loss_margin": _LOSS_MARGIN.value,
          "trace_steps": _TRACE_STEPS.value}


def _one_seed_command(seed):
  flags_out = [
      f"--{name}={','.join(value) if isinstance(value, list) else value}"
      for name, value in _run_flags().items()]
  return [sys.executable, "-m", "benchmarks.plain_fit", f"--seeds={seed}",
          "--parallel=1", f"--out={_OUT.value}", *flags_out]


def main(argv):
  del argv
  try:
    seeds = [int(s) for s in _SEEDS.value]
    model_kwargs(_MODEL_FLAGS.value)
  except ValueError as error:
    sys.exit(f"error: {error}")
  for flag in (_STEPS, _EVAL_EVERY, _PARALLEL, _BATCH_SIZE):
    if flag.value < 1:
      sys.exit(f"error: --{flag.name} must be >= 1, got {flag.value}")
  if _DIAGNOSE_EVERY.value < 1 or _DIAGNOSE_EVERY.value % _EVAL_EVERY.value:
    sys.exit(f"error: --diagnose_every must be a positive multiple of "
             f"--eval_every={_EVAL_EVERY.value}, got {_DIAGNOSE_EVERY.value}")
  try:
    loss_margin(_LOSS_MARGIN.value)
  except ValueError as error:
    sys.exit(f"error: {error}")
  if not (_LEARNING_RATE.value > 0 and _CLIP_NORM.value > 0
          and _EPSILON.value > 0 and _MAX_MINUTES.value > 0):
    sys.exit(f"error: --learning_rate, --clip_norm, --epsilon and "
             f"--max_minutes must be > 0, got {_LEARNING_RATE.value}, "
             f"{_CLIP_NORM.value}, {_EPSILON.value} and {_MAX_MINUTES.value}")
  todo = [s for s in seeds
          if not finished(os.path.join(_OUT.value, f"seed{s}"))]
  if len(todo) == 1 or _PARALLEL.value == 1:
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    for seed in todo:
      train_seed(seed, os.path.join(_OUT.value, f"seed{seed}"))
  else:
    running = []
    for seed in todo:
      while len(running) >= _PARALLEL.value:
        running = [p for p in running if p.poll() is None]
        time.sleep(1)
      running.append(subprocess.Popen(_one_seed_command(seed)))
    for process in running:
      process.wait()
  command = "python -m benchmarks.plain_fit " + " ".join(sys.argv[1:])
  runs = seed_runs(_OUT.value, seeds)
  table = markdown(runs, command)
  with open(os.path.join(_OUT.value, "plain_fit.md"), "w") as f:
    f.write(table)
  print(table)
  from memtk import viz  # pylint: disable=g-import-not-at-top
  viz.plot_learning_curves(
      os.path.join(_OUT.value, "learning_curves.png"),
      curves(runs),
      title=f"a plain fit ({_OPTIMIZER.value}): bit errors on "
      f"{TEST_SEQUENCES:,} fresh sequences")


if __name__ == "__main__":
  app.run(main)
