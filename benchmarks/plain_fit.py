r"""A plain `model.fit` of memtk.NTM, as a user writes it, with or without the
recipe's parts: does it learn, and does it stay solved?

  python -m benchmarks.plain_fit --out=benchmarks/results/plain_fit/recipe
  python -m benchmarks.plain_fit --optimizer=adam --clip_norm=50 \
      --out=benchmarks/results/plain_fit/clip50

--optimizer=recipe compiles with `model.compile()` (no optimizer: the
recipe's, memtk.training.default_optimizer) and fits with
memtk.training.ErrorScaledRate watching the held-out error; --optimizer=adam
compiles with keras.optimizers.Adam(--learning_rate, global_clipnorm=
--clip_norm) and no schedule. The batches are tasks.train's (the same seeded
stream), and every --eval_every steps the model is tested on 1,000 fresh
sequences (the numbers tasks.train reports). Writes <out>/history.json and
prints the steps to < 1 and < 0.1 and the worst evaluation after the first
below 0.1 (a relapse).
"""

import os
import sys
import time

from absl import app
from absl import flags
import keras

from benchmarks import convergence_table
import memtk
from tasks import common

# --- what to train ---
_TASK = flags.DEFINE_enum("task", "copy", sorted(common.TASKS), "Task.")
_SEED = flags.DEFINE_integer("seed", 0, "Seeds the weights and the data.")
_STEPS = flags.DEFINE_integer("steps", 6000, "Training steps.")

# --- how ---
_OPTIMIZER = flags.DEFINE_enum(
    "optimizer", "recipe", ["recipe", "adam"], "recipe: model.compile() and "
    "ErrorScaledRate; adam: Adam(--learning_rate, global_clipnorm=--clip_norm), "
    "no schedule.")
_LEARNING_RATE = flags.DEFINE_float("learning_rate", 1e-3, "Adam's rate "
                                    "(--optimizer=adam).")
_CLIP_NORM = flags.DEFINE_float("clip_norm", 50.0, "Global clip norm "
                                "(--optimizer=adam).")

# --- output ---
_EVAL_EVERY = flags.DEFINE_integer("eval_every", 200, "Steps between tests.")
_OUT = flags.DEFINE_string("out", "benchmarks/results/plain_fit/recipe",
                           "Output directory.")


class HeldOut(keras.callbacks.Callback):
  """Tests on 1,000 fresh sequences at every epoch end; puts the result in
  the logs as 'eval_bit_errors' (what ErrorScaledRate then watches)."""

  def __init__(self, task, seed, out):
    super().__init__()
    self.task, self.seed, self.out = task, seed, out
    self.history = []
    self.evaluator = None
    self.start = time.time()

  def on_epoch_end(self, epoch, logs=None):
    if self.evaluator is None:
      self.evaluator = common.Evaluator(self.model)
    step = int(self.model.optimizer.iterations.numpy())
    bits = self.evaluator.bits_per_sequence(self.task, self.seed,
                                            common.EVAL_STREAM, step)
    logs[common.EVAL_MONITOR] = bits
    self.history.append({
        "step": step, "seconds": time.time() - self.start,
        "bits_per_sequence": bits,
        "learning_rate": float(self.model.optimizer.learning_rate.numpy()),
        "skipped_steps": float(logs.get("skipped_steps", 0.0))})
    common.save_json(os.path.join(self.out, "history.json"), self.history)
    print(f"step {step:6d}  {bits:8.3f} bit errors per sequence  lr "
          f"{self.history[-1]['learning_rate']:.2g}", flush=True)


def main(argv):
  del argv
  if _STEPS.value < 1 or _EVAL_EVERY.value < 1:
    sys.exit(f"error: --steps and --eval_every must be >= 1, got "
             f"{_STEPS.value} and {_EVAL_EVERY.value}")
  if _OPTIMIZER.value == "adam" and not (_LEARNING_RATE.value > 0
                                         and _CLIP_NORM.value > 0):
    sys.exit(f"error: --learning_rate and --clip_norm must be > 0, got "
             f"{_LEARNING_RATE.value} and {_CLIP_NORM.value}")
  os.makedirs(_OUT.value, exist_ok=True)
  task = common.make_task(_TASK.value)
  keras.utils.set_random_seed(_SEED.value)
  model = memtk.NTM("lstm", task.output_size)
  held_out = HeldOut(task, _SEED.value, _OUT.value)
  callbacks = [held_out]
  if _OPTIMIZER.value == "recipe":
    model.compile(steps_per_execution=10)
    callbacks.append(memtk.training.ErrorScaledRate(
        monitor=common.EVAL_MONITOR))
  else:
    model.compile(optimizer=keras.optimizers.Adam(
        _LEARNING_RATE.value, global_clipnorm=_CLIP_NORM.value),
                  steps_per_execution=10)
  model.fit(common.train_dataset(task, _SEED.value, 32, 0),
            steps_per_epoch=_EVAL_EVERY.value,
            epochs=-(-_STEPS.value // _EVAL_EVERY.value), verbose=0,
            callbacks=callbacks)
  history = held_out.history
  for threshold in (1.0, 0.1):
    print(f"first below {threshold}: step "
          f"{convergence_table.first_below(history, threshold)[0]}")
  worst = convergence_table.worst_relapse(history)
  if worst is not None:
    print(f"worst evaluation after that: {worst:.3f}")


if __name__ == "__main__":
  app.run(main)
