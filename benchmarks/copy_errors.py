r"""Where a trained copy model's bit errors come from: sequences holding an
all-zero input vector against the others, and where the read head starts.

  python -m benchmarks.copy_errors \
      --runs=benchmarks/results/convergence/copy-seed6,benchmarks/results/convergence/copy-seed3
  python -m benchmarks.copy_errors --runs=runs/copy --length=120
  python -m benchmarks.copy_errors --runs=runs/copy --length=120 \
      --zero_at=5,15,25,40,60,90,119 --sequences=1000

For every run directory (its model.keras, written by tasks.train) it tests
--sequences fresh copy sequences (the test distribution: uniform bits; with
--length=L all of length L, e.g. 120 to see where the generalisation errors
come from) and prints the mean bit errors, the share of sequences copied
wrong, their mean bit errors and the worst sequence's, the share of
sequences holding an all-zero vector, the share of all bit errors they
make, how often a sequence of either kind is copied wrong, and, for the
wrong ones of each kind, how often the read head does not start the output
on the cell written first; then the same split for the sequences whose
first vector is all zeros. It also writes heatmap_zero_start.png into the
run directory: the model's attention on one fixed test sequence of length
10 that starts with an all-zero vector.

With --zero_at (and --length) it measures instead how the model takes one
all-zero vector at each of those steps: the same --sequences sequences with
no all-zero vector (every one redrawn), then each with the vector at that
step zeroed, printing for each the mean bit errors, the share of sequences
copied wrong and the share derailed (more than a quarter of the copy's bits
wrong), and drawing the first derailed sequence of the step that derails
most into the run directory's heatmap_zero_at<length>.png.
"""

import os
import sys

from absl import app
from absl import flags
import keras
import numpy as np

from tasks import common
from tasks import evaluation

_RUNS = flags.DEFINE_list("runs", [], "Run directories of copy runs.")
_SEQUENCES = flags.DEFINE_integer("sequences", 10000, "Fresh sequences.")
_TEST_SEED = flags.DEFINE_integer("test_seed", 12345, "Seeds the test "
                                  "sequences.")
_LENGTH = flags.DEFINE_integer(
    "length", None, "Test sequences of this one length (e.g. 120, the "
    "longest generalisation size) instead of the training distribution.")


_ZERO_AT = flags.DEFINE_list(
    "zero_at", [], "Steps of the input (< --length) at which to test one "
    "all-zero vector in otherwise zero-free sequences.")


def _zero_vectors(inputs, num_bits):
  """[B, T] bool: the data channels of that step are all zeros."""
  return inputs[:, :, :num_bits].sum(-1) == 0


def sample_sequences(task, count, seed, length=None):
  """(inputs, targets, mask) of `count` seeded copy sequences: the training
  distribution, or all of `length` when it is given."""
  if length is not None:
    if length < 1:
      raise ValueError(f"length must be >= 1, got {length!r}")
    task = task.variant(length)
  return task.sample(np.random.default_rng(seed), count)


def has_zero_vector(inputs, lengths, num_bits):
  """[B] bool: the sequence's input phase holds an all-zero data vector."""
  steps = np.arange(inputs.shape[1])[None, :]
  return (_zero_vectors(inputs, num_bits) & (steps < lengths[:, None])).any(1)


def starts_with_zero(inputs, num_bits):
  """[B] bool: the sequence's first data vector is all zeros."""
  return _zero_vectors(inputs, num_bits)[:, 0]


def zero_start_sequence(task, seed, length=10):
  """One test sequence (inputs, targets, mask, each with a batch axis of 1)
  of `length` whose first vector is all zeros: the first such one of
  task.variant(length)'s seeded stream."""
  variant = task.variant(length)
  rng = np.random.default_rng(seed)
  while True:
    inputs, targets, mask = variant.sample(rng, 256)
    hits = np.nonzero(starts_with_zero(inputs, variant.output_size))[0]
    if len(hits):
      i = hits[:1]
      return inputs[i], targets[i], mask[i]


def without_zero_vectors(inputs, targets, mask, num_bits, rng):
  """Copies of a batch in which every all-zero data vector of the input
  phase is redrawn (its target too), so that none is left."""
  inputs, targets = inputs.copy(), targets.copy()
  lengths = mask.sum(1).astype(int)
  while True:
    b, t = np.nonzero(_zero_vectors(inputs, num_bits)
                      & (np.arange(inputs.shape[1]) < lengths[:, None]))
    if not len(b):
      return inputs, targets
    inputs[b, t, :num_bits] = rng.integers(0, 2, (len(b), num_bits))
    targets[b, lengths[b] + 1 + t] = inputs[b, t, :num_bits]


def with_zero_vector_at(inputs, targets, mask, num_bits, step):
  """Copies of a batch with the data vector at input `step` (and its
  target) all zeros."""
  lengths = mask.sum(1).astype(int)
  if np.any(step >= lengths) or step < 0:
    raise ValueError(f"zero_at step {step} is outside the input "
                     f"(lengths {lengths.min()}-{lengths.max()})")
  inputs, targets = inputs.copy(), targets.copy()
  inputs[:, step, :num_bits] = 0.0
  targets[np.arange(len(lengths)), lengths + 1 + step] = 0.0
  return inputs, targets


def zero_vector_batches(inputs, targets, mask, num_bits, steps):
  """[(step or None, inputs, targets)]: the batch as given (None; see
  without_zero_vectors), then with one all-zero vector at each step."""
  return [(None, inputs, targets)] + [
      (step, *with_zero_vector_at(inputs, targets, mask, num_bits, step))
      for step in steps]


def zero_vector_rows(errors_of, batches, mask):
  """[(step or None, [B] bit errors)] of zero_vector_batches; errors_of maps
  (inputs, targets, mask) to [B] bit errors."""
  return [(step, errors_of(x, y, mask)) for step, x, y in batches]


def derailed(errors, mask, num_bits):
  """[B] bool: more than a quarter of the copy's bits wrong."""
  return errors > mask.sum(1) * num_bits / 4


def error_split(errors, flagged):
  """Error statistics of the flagged sequences against the others."""
  total = max(float(errors.sum()), 1e-12)
  return {"share_of_sequences": float(flagged.mean()),
          "share_of_errors": float(errors[flagged].sum()) / total,
          "wrong_flagged": float(np.mean(errors[flagged] > 0)) if flagged.any() else 0.0,
          "wrong_others": float(np.mean(errors[~flagged] > 0)) if (~flagged).any() else 0.0,
          "mean": float(errors.mean()),
          "wrong": float(np.mean(errors > 0)),
          "bits_per_wrong": (float(errors[errors > 0].mean())
                             if (errors > 0).any() else 0.0)}


def read_start_misses(model, inputs, lengths, picks):
  """Share of the sequences `picks` whose read head, at the delimiter step,
  is not on the cell the write head used first."""
  if not len(picks):
    return None
  trace = model.trace(inputs[picks])
  write = np.argmax(trace["write_weights"][:, :, 0].numpy(), -1)
  read = np.argmax(trace["read_weights"][:, :, 0].numpy(), -1)
  starts = read[np.arange(len(picks)), lengths[picks]]
  return float(np.mean(starts != write[:, 0]))


def main(argv):
  del argv
  if not _RUNS.value:
    sys.exit("error: --runs names no run directory")
  if _SEQUENCES.value < 1:
    sys.exit(f"error: --sequences must be >= 1, got {_SEQUENCES.value}")
  task = common.make_task("copy")
  try:
    inputs, targets, mask = sample_sequences(task, _SEQUENCES.value,
                                           _TEST_SEED.value, _LENGTH.value)
  except ValueError as e:
    sys.exit(f"error: --{e}")
  if _ZERO_AT.value:
    return _zero_at(task, inputs, targets, mask)
  lengths = mask.sum(1).astype(int)
  flagged = has_zero_vector(inputs, lengths, task.output_size)
  zero_first = starts_with_zero(inputs, task.output_size)
  for logdir in _RUNS.value:
    model = _load(logdir)
    errors = common.Evaluator(model).errors(inputs, targets, mask)
    split = error_split(errors, flagged)
    misses = [read_start_misses(model, inputs, lengths,
                                np.nonzero((errors > 0) & kind)[0][:200])
              for kind in (flagged, ~flagged)]
    zero_start = error_split(errors, zero_first)
    print(f"{logdir}: {split['mean']:.3f} bit errors per sequence "
          f"({100 * split['wrong']:.2f}% of sequences wrong, "
          f"{split['bits_per_wrong']:.0f} bits in a wrong one, worst "
          f"{errors.max():.0f}); "
          f"{100 * split['share_of_sequences']:.1f}% of sequences hold an "
          f"all-zero vector and make {100 * split['share_of_errors']:.0f}% "
          f"of the errors; wrong: {100 * split['wrong_flagged']:.1f}% of "
          f"those, {100 * split['wrong_others']:.2f}% of the others; read "
          "head not starting on the first written cell in the wrong ones: "
          + ", ".join("—" if m is None else f"{100 * m:.0f}%" for m in misses)
          + " (zero-vector, other); first vector all zeros: "
          f"{100 * zero_start['share_of_sequences']:.2f}% of sequences, "
          f"{100 * zero_start['share_of_errors']:.0f}% of the errors, "
          f"{100 * zero_start['wrong_flagged']:.0f}% of them wrong", flush=True)
    heatmap = os.path.join(logdir, "heatmap_zero_start.png")
    evaluation.plot_sequence(model, *zero_start_sequence(task, _TEST_SEED.value),
                             path=heatmap,
                             title=f"{os.path.basename(logdir)}, first vector "
                             "all zeros")
    print(f"wrote {heatmap}", flush=True)


def _zero_at(task, inputs, targets, mask):
  if _LENGTH.value is None:
    sys.exit("error: --zero_at needs --length")
  bits = task.output_size
  inputs, targets = without_zero_vectors(
      inputs, targets, mask, bits, np.random.default_rng(_TEST_SEED.value))
  try:
    steps = [int(s) for s in _ZERO_AT.value]
  except ValueError:
    sys.exit(f"error: --zero_at must list steps, got {_ZERO_AT.value!r}")
  try:
    batches = zero_vector_batches(inputs, targets, mask, bits, steps)
  except ValueError as e:
    sys.exit(f"error: --{e}")
  for logdir in _RUNS.value:
    model = _load(logdir)
    rows = zero_vector_rows(common.Evaluator(model).errors, batches, mask)
    off = [derailed(errors, mask, bits) for _, errors in rows]
    for (step, errors), wrong in zip(rows, off):
      where = "no all-zero vector" if step is None else f"zero at {step:4d}"
      print(f"{logdir}: length {_LENGTH.value}, {where}: {errors.mean():.3f} "
            f"bit errors per sequence, {100 * np.mean(errors > 0):.1f}% "
            f"wrong, {100 * wrong.mean():.1f}% derailed", flush=True)
    # The first derailed sequence of the step that derails most, drawn.
    most = 1 + int(np.argmax([wrong.sum() for wrong in off[1:]]))
    hits = np.nonzero(off[most])[0][:1]
    if len(hits):
      step, x, y = batches[most]
      heatmap = os.path.join(logdir, f"heatmap_zero_at{_LENGTH.value}.png")
      evaluation.plot_sequence(
          model, x[hits], y[hits], mask[hits], path=heatmap,
          title=f"{os.path.basename(os.path.normpath(logdir))}, all-zero "
          f"vector at step {step}")
      print(f"wrote {heatmap}", flush=True)


def _load(logdir):
  path = os.path.join(logdir, "model.keras")
  if not os.path.exists(path):
    sys.exit(f"error: --runs entry {logdir!r} has no model.keras")
  return keras.models.load_model(path)


if __name__ == "__main__":
  app.run(main)
