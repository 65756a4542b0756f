r"""Where straight-through Gumbel breaks: a write head's relaxed gradient.

  python -m benchmarks.gumbel_gradients --seed=0 --soft_steps=1400 \
      --out=benchmarks/results/gumbel_gradients

Trains a Gumbel hard model through its soft phase with tasks.train (every
one of `--soft_steps` batches soft), then continues from its checkpoint
(weights and optimizer state) purely hard, once per estimator variant:

  gumbel, relaxed writes  a write head's gradient reaches its relaxed sample
                          at every cell, and the forward pass uses the
                          Gumbel-max sample (the plain straight-through
                          estimator: gumbel_writes='relaxed',
                          gumbel_forward='sample');
  gumbel, chosen writes   only at the cell it wrote, forward on the sample
                          (memtk's default);
  gumbel, chosen writes, greedy forward
                          the same gradient, forward on each head's most
                          likely cell (gumbel_forward='greedy');
  reinforce               the score-function estimator, for comparison.

For each it reports, on the next `--batches` batches of the run's own stream
and at the soft phase's weights, the gradient of the training loss as a
train step computes it (XLA): its global norm and largest entry, and how
many of those batches overflow (a global norm that is not finite: a train
step skips them); then it trains `--hard_steps` purely hard steps and
reports the skipped updates and the greedy bit errors per sequence on
`--test_sequences` fresh sequences every `--hard_eval_every` steps. Writes
<out>/result.json; the soft phase's run directory <out>/soft is reused when
it is there.

Why the relaxed write explodes: the forward pass writes one row, so every
other row keeps its value, and rows never written stay at the constant
initial memory (norm ~ sqrt(eps) in the cosine). The relaxed write still
puts a gradient on every row, and the cosine content score of a nearly empty
row has a gradient of ~1 / |M(i)| with respect to that row; going back
through time, each step multiplies by it again.
"""

import json
import os
import subprocess
import sys
import time

from absl import app
from absl import flags
# tasks before TensorFlow: it keeps TensorFlow's start-up lines out.
from tasks import common  # pylint: disable=g-bad-import-order
import keras
import numpy as np
import tensorflow as tf

_TASK = flags.DEFINE_string("task", "copy", "Task of the runs.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the soft phase and streams.")
_SOFT_STEPS = flags.DEFINE_integer(
    "soft_steps", 1400, "Training steps of the soft phase.")
_BATCHES = flags.DEFINE_integer(
    "batches", 20, "Hard batches whose gradient is measured at the soft "
    "phase's weights.")
_HARD_STEPS = flags.DEFINE_integer(
    "hard_steps", 500, "Purely hard training steps per variant afterwards.")
_HARD_EVAL_EVERY = flags.DEFINE_integer(
    "hard_eval_every", 125, "Greedy evaluation every this many hard steps.")
_TEST_SEQUENCES = flags.DEFINE_integer(
    "test_sequences", 500, "Sequences of each greedy evaluation.")
_TRAIN_FLAGS = flags.DEFINE_list(
    "train_flags", [], "Further tasks.train flags of the soft phase (its "
    "config is the hard runs' too), e.g. --train_flags=--memory_size=64.")
_OUT = flags.DEFINE_string(
    "out", "benchmarks/results/gumbel_gradients", "Output directory.")

_TEST_STREAM = 7  # fresh sequences, apart from the training stream


def soft_phase(logdir):
  """Runs tasks.train's soft phase of a Gumbel model (unless it is in
  `logdir` already, with its checkpoint); returns its config."""
  if os.path.exists(os.path.join(logdir, "history.json")):
    if common.latest_checkpoint(logdir) is None:
      sys.exit(f"error: {logdir} holds a soft phase without its checkpoint "
               "(a results directory keeps none): pass another --out, or "
               "delete it to train the soft phase again")
  else:
    command = [sys.executable, "-m", "tasks.train", f"--logdir={logdir}",
               f"--task={_TASK.value}", f"--seed={_SEED.value}",
               "--addressing=hard", "--estimator=gumbel",
               f"--max_steps={_SOFT_STEPS.value}", "--max_minutes=0",
               f"--soft_curriculum_hold={_SOFT_STEPS.value}",
               "--soft_curriculum_until=0", "--soft_curriculum_steps=0",
               "--target_bits=1e-12",  # never stop early
               "--final_eval=false", "--tensorboard=false",
               *_TRAIN_FLAGS.value]
    print("soft phase:", " ".join(command[1:]), flush=True)
    subprocess.run(command, check=True)
  return common.load_json(os.path.join(logdir, "config.json"))


def hard_model(logdir, config, task):
  """A purely hard model of `config` at the soft phase's last checkpoint,
  with its optimizer state (moments, step, learning rate)."""
  model = common.make_model(dict(config, soft_curriculum_hold=0,
                                 soft_curriculum_steps=0), task)
  checkpoint = tf.train.Checkpoint(model=model, optimizer=model.optimizer)
  checkpoint.restore(common.latest_checkpoint(logdir)
                     ).assert_existing_objects_matched()
  return model


def gradient_sizes(model, batches):
  """[(global norm, largest |entry|)] of each batch's training gradient."""
  variables = model.trainable_variables

  @tf.function(jit_compile=True)
  def sizes(x, y, mask):
    with tf.GradientTape() as tape:
      _, _, total, _ = model._batch_losses(x, y, mask)  # pylint: disable=protected-access
    grads = tape.gradient(total, variables)
    largest = tf.reduce_max([tf.reduce_max(tf.abs(g)) for g in grads])
    return tf.linalg.global_norm(grads), largest

  return [tuple(float(v) for v in sizes(*batch)) for batch in batches]


def train_hard(model, task, config, start):
  """(skipped updates, [greedy bit errors per sequence after every
  --hard_eval_every steps]) of --hard_steps purely hard steps."""
  data = common.train_dataset(task, _SEED.value, config["batch_size"], start)
  evaluator = common.Evaluator(model, "greedy")
  every, bits = _HARD_EVAL_EVERY.value, []
  history = model.fit(data, steps_per_epoch=every,
                      epochs=_HARD_STEPS.value // every, verbose=0,
                      callbacks=[keras.callbacks.LambdaCallback(
                          on_epoch_end=lambda epoch, logs: bits.append(
                              evaluator.bits_per_sequence(
                                  task, _SEED.value, _TEST_STREAM, 0,
                                  _TEST_SEQUENCES.value)))])
  return int(sum(history.history["skipped_steps"])), bits


# (name, config changes) of each estimator compared.
VARIANTS = [("gumbel, relaxed writes", dict(estimator="gumbel",
                                            gumbel_writes="relaxed",
                                            gumbel_forward="sample")),
            ("gumbel, chosen writes", dict(estimator="gumbel",
                                           gumbel_writes="chosen",
                                           gumbel_forward="sample")),
            ("gumbel, chosen writes, greedy forward",
             dict(estimator="gumbel", gumbel_writes="chosen",
                  gumbel_forward="greedy")),
            ("reinforce", dict(estimator="reinforce"))]


def main(argv):
  del argv
  for name, value in [("soft_steps", _SOFT_STEPS.value),
                      ("batches", _BATCHES.value),
                      ("hard_eval_every", _HARD_EVAL_EVERY.value),
                      ("test_sequences", _TEST_SEQUENCES.value)]:
    if value < 1:
      sys.exit(f"error: --{name} must be >= 1, got {value}")
  if _HARD_STEPS.value < 0 or _HARD_STEPS.value % _HARD_EVAL_EVERY.value:
    sys.exit(f"error: --hard_steps must be a multiple of --hard_eval_every="
             f"{_HARD_EVAL_EVERY.value}, got {_HARD_STEPS.value}")
  keras.utils.set_random_seed(_SEED.value)
  os.makedirs(_OUT.value, exist_ok=True)
  soft = os.path.join(_OUT.value, "soft")
  config = soft_phase(soft)
  task = common.make_task(config["task"])
  last = common.load_json(os.path.join(soft, "history.json"))[-1]
  start = last["step"]  # the soft phase's last step and checkpoint
  stream = common.train_batches(task, _SEED.value, config["batch_size"],
                                start)
  batches = [next(stream) for _ in range(_BATCHES.value)]
  result = {"command": "python -m benchmarks.gumbel_gradients "
                       + " ".join(sys.argv[1:]),
            "task": task.name, "seed": _SEED.value, "soft_steps": start,
            "soft_bits": last["bits_per_sequence"],
            "variants": {}}
  for name, changes in VARIANTS:
    began = time.time()
    model = hard_model(soft, dict(config, **changes), task)
    sizes = gradient_sizes(model, batches)
    norms = np.array([n for n, _ in sizes])
    row = {"global_norm_median": float(np.median(norms)),
           "global_norm_max": float(np.max(norms)),
           "largest_entry_max": max(e for _, e in sizes),
           "batches_overflowing": int(np.sum(~np.isfinite(norms))),
           "batches": len(sizes)}
    if _HARD_STEPS.value:  # the measured batches moved no weight
      row["hard_steps"] = _HARD_STEPS.value
      row["hard_steps_skipped"], row["bits_during"] = train_hard(
          model, task, config, start + _BATCHES.value)
    row["seconds"] = time.time() - began
    result["variants"][name] = row
    print(f"{name:24s} " + " ".join(
        f"{k}={v:.3g}" if isinstance(v, float) else
        f"{k}={','.join(f'{b:.3g}' for b in v)}" if isinstance(v, list) else
        f"{k}={v}" for k, v in row.items()), flush=True)
  with open(os.path.join(_OUT.value, "result.json"), "w") as f:
    json.dump(result, f, indent=2, allow_nan=True)


if __name__ == "__main__":
  app.run(main)
