r"""How much of the exact scan's support a content index finds.

    python -m benchmarks.index_recall --memory_size=1048576 \
        --trained=benchmarks/results/convergence_index/associative_recall-sparse-seed0 \
        --json=benchmarks/results/index_recall.json

For a sparse model at `--memory_size` cells, runs sequences step by step
with the exact scan (the model's own trajectory) and at every step and head
also asks each index of `--indexes` (memtk.content_index) for the key's K
cells, from an index fed with the same writes. The recall is the fraction
of the scan's K cells the index found, over steps, heads and sequences;
'exact' is the fraction of lookups that found all K. Sources: an untrained
model (its weights from `--seed`) on uniform random inputs of
`--seq_len` steps ("random"), and each trained run of `--trained` (a
tasks.train logdir of a sparse model) on its own task's sequences at its
training size. A model trained at N = 128 runs at `--memory_size` (its
weights do not depend on N), so a recall at N = 2^20 is measured on the
memory the model itself writes. Progress goes to stdout; the table and the
JSON at the end.
"""

import json
import sys
import time

from absl import app
from absl import flags
import numpy as np

_TRAINED = flags.DEFINE_list("trained", [], "tasks.train logdirs of trained "
                             "sparse models.")
_INDEXES = flags.DEFINE_list(
    "indexes", ["written", "hash"],
    "Indexes to measure: written, hash (default settings) or "
    "hash:tables:bits:slots.")
_MEMORY_SIZE = flags.DEFINE_integer("memory_size", 2**20, "N.")
_BATCH_SIZE = flags.DEFINE_integer("batch_size", 4, "Sequences per source.")
_SEQ_LEN = flags.DEFINE_integer("seq_len", 100,
                                "Steps of the random source's sequences.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the untrained model and of "
                             "every source's sequences.")
_JSON = flags.DEFINE_string("json", None, "Write the results here.")


def parse_index(text):
  """A content_index value from 'written', 'hash' or 'hash:L:b:S'."""
  parts = text.split(":")
  if parts[0] == "hash" and len(parts) == 4:
    try:
      tables, bits, slots = (int(p) for p in parts[1:])
    except ValueError:
      raise ValueError(f"--indexes: hash:tables:bits:slots takes ints, got "
                       f"{text!r}") from None
    return {"kind": "hash", "tables": tables, "bits": bits, "slots": slots}
  if len(parts) == 1 and parts[0] in ("written", "hash"):
    return parts[0]
  raise ValueError(f"--indexes entries must be written, hash or "
                   f"hash:tables:bits:slots, got {text!r}")


def sources():
  """(name, cell at --memory_size, inputs [B, T, I]) of every source."""
  import keras
  import tensorflow as tf
  import memtk
  from tasks import evaluation

  keras.utils.set_random_seed(_SEED.value)
  rng = np.random.default_rng(_SEED.value)
  model = memtk.NTM("lstm", 8, memory_size=_MEMORY_SIZE.value,
                    addressing="sparse")
  model.build((None, None, 10))
  inputs = rng.integers(0, 2, (_BATCH_SIZE.value, _SEQ_LEN.value, 10))
  yield "random", model.cell, tf.constant(inputs, tf.float32)
  for run in _TRAINED.value:
    model, task, _, _ = evaluation.load_run(run)
    if model.cell.addressing != "sparse":
      raise ValueError(f"--trained: {run} is a {model.cell.addressing} model; "
                       "the indexes are for sparse ones")
    model = model.with_memory_size(_MEMORY_SIZE.value)
    inputs, _, _ = task.sample(rng, _BATCH_SIZE.value)
    yield run, model.cell, tf.constant(inputs, tf.float32)


def main(argv):
  del argv
  try:
    return _measure_all()
  except ValueError as e:
    sys.exit(f"error: {e}")


def _measure_all():
  for name, flag in [("memory_size", _MEMORY_SIZE),
                     ("batch_size", _BATCH_SIZE), ("seq_len", _SEQ_LEN)]:
    if flag.value < 1:
      raise ValueError(f"--{name} must be >= 1, got {flag.value}")
  indexes = {text: parse_index(text) for text in _INDEXES.value}
  from memtk import diagnostics  # TensorFlow only once the flags are good

  results = []
  for name, cell, inputs in sources():
    start = time.perf_counter()
    counts = diagnostics.index_recall(cell, inputs, indexes)
    for label, (found, looked, lookups, complete) in counts.items():
      results.append(dict(source=name, index=label,
                          memory_size=_MEMORY_SIZE.value,
                          sparse_k=cell.mode.support_size(cell),
                          sequences=int(inputs.shape[0]),
                          steps=int(inputs.shape[1]), recall=found / looked,
                          exact_lookups=complete / lookups))
    print(f"{name}: {time.perf_counter() - start:.0f} s", flush=True)
  print(f"{'source':<60} {'index':<16} {'recall':>7} {'all K':>7}")
  for r in results:
    print(f"{r['source']:<60} {r['index']:<16} {r['recall']:>7.3f} "
          f"{r['exact_lookups']:>7.3f}")
  if _JSON.value:
    with open(_JSON.value, "w") as f:
      json.dump(results, f, indent=1)
  return 0


if __name__ == "__main__":
  sys.exit(app.run(main))
