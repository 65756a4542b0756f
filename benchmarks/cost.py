"""What soft attention costs: time and memory per step, soft, hard and sparse
against N.

    python -m benchmarks.cost --json=cost.json --plot=cost.png

For every configuration (mode x content x phase x memory size) a fresh
subprocess builds an NTM (LSTM controller, one read and one write head,
`--word_size`, `--batch_size`, `--seq_len`), compiles its step with XLA and
runs it once (the warm-up, outside the timing), then times `--repeats` calls
(fewer when they would take more than `--seconds`) and
reports the median milliseconds per time step (call time / seq_len). Phases:
'forward' is the model call (greedy choices for hard), 'train' one optimizer
step of `fit` (REINFORCE for hard). Sparse heads attend to `--sparse_k`
cells. Peak memory is the most memory
TensorFlow's allocator held during the timed calls above what it held just
before them (the memory, the activations kept for the backward pass, every
temporary). The workers use TensorFlow's pooling CPU allocator
(TF_CPU_ALLOCATOR_USE_BFC=true), which counts that and reuses freed buffers:
repeated calls then pay no page faults for fresh buffers, as in training.

The parent process measures the machine's memory bandwidth (the best of a few
large array copies, bytes read + written per second) and, for soft rows,
prints the fraction of it the step achieves, counting the bytes soft attention
must move per step and head (the cost model of the design notes): content
scores read the memory once (N W), a read reads it once (N W), a write reads
and writes it (2 N W); a train step moves at least three times the forward
bytes (the backward pass of each N W product reads the memory and writes a
gradient of the same size). The soft forward rows also carry a breakdown:
each of content scores, read and write timed alone on the same tensors, and the
backward pass of the fused soft access. Hard and sparse forward rows with
content carry the content scan timed alone (the cosine of every key against
every cell with the kept row norms; sparse: and its top-K; hard: and its
maximum), as a fraction of the copy bandwidth for the bytes it must read
(the memory and its norms).

Configurations whose estimated memory exceeds `--max_memory_gb` are reported
as skipped with the estimate (soft training keeps the memory of every step for
its backward pass: T B N W floats).
"""

import json
import os
import statistics
import subprocess
import sys
import time

from absl import app
from absl import flags
import numpy as np

from benchmarks import cost_model

_MODES = flags.DEFINE_list("modes", ["soft", "hard", "sparse"],
                           "soft, hard and/or sparse.")
_SPARSE_K = flags.DEFINE_integer("sparse_k", 8, "K of the sparse mode.")
_CONTENT = flags.DEFINE_list(
    "content", ["on", "off"],
    "Heads with ('on') and/or without ('off') content addressing; for sparse "
    "heads also 'written' and/or 'hash', for hard heads 'written': content "
    "lookups through that memtk.content_index instead of the scan of every "
    "row (other modes skip these).")
_MEMORY_SIZES = flags.DEFINE_list(
    "memory_sizes",
    ["128", "1024", "8192", "16384", "65536", "1048576"],
    "Memory sizes N to measure.")
_WORD_SIZE = flags.DEFINE_integer("word_size", 20, "W.")
_BATCH_SIZE = flags.DEFINE_integer("batch_size", 16, "B.")
_SEQ_LEN = flags.DEFINE_integer("seq_len", 100, "T, time steps per call.")
_PHASES = flags.DEFINE_list("phases", ["forward", "train"],
                            "forward and/or train.")
_REPEATS = flags.DEFINE_integer("repeats", 5, "Timed calls per configuration.")
_SECONDS = flags.DEFINE_float(
    "seconds", 60.0, "Timing budget per configuration: fewer repeats (at least "
    "one) when the warm-up call shows that repeats would take longer.")
_MAX_MEMORY_GB = flags.DEFINE_float(
    "max_memory_gb", 16.0, "Skip configurations estimated to need more.")
_UNITS = flags.DEFINE_integer("controller_units", 100, "LSTM units.")
_THREADS = flags.DEFINE_integer(
    "threads", 0, "Intra-op threads per configuration (0: TensorFlow's choice).")
_JSON = flags.DEFINE_string("json", None, "Write the results here.")
_RESUME = flags.DEFINE_boolean(
    "resume", False, "Keep the rows of an existing --json file measured with "
    "the same configuration and measure only the others (a long run that was "
    "interrupted continues).")
_PLOT = flags.DEFINE_string("plot", None, "Write the log-log PNG here.")
_WORKER = flags.DEFINE_string("worker", None, "Internal: run one configuration "
                              "given as JSON and print its result.")

INDEXES = cost_model.INDEXES  # content lookups through memtk.content_index
CONTENT_KINDS = ("on", "off") + INDEXES
_INPUT_SIZE = 10
_OUTPUT_SIZE = 8
_RESULT_PREFIX = "COST_RESULT "


# --- the parent: configurations, bandwidth, table, JSON, plot -------------

def configurations():
  for name, values, allowed in [("modes", _MODES.value,
                                 ("soft", "hard", "sparse")),
                                ("content", _CONTENT.value, CONTENT_KINDS),
                                ("phases", _PHASES.value, ("forward", "train"))]:
    bad = [v for v in values if v not in allowed]
    if bad or not values:
      raise ValueError(f"--{name} takes values from {allowed}, got {values}")
  sizes = []
  for value in _MEMORY_SIZES.value:
    if not value.isdigit() or int(value) < 3:
      raise ValueError(f"--memory_sizes must be ints >= 3, got {value!r}")
    sizes.append(int(value))
  for name, flag in [("word_size", _WORD_SIZE), ("batch_size", _BATCH_SIZE),
                     ("seq_len", _SEQ_LEN), ("repeats", _REPEATS)]:
    if flag.value < 1:
      raise ValueError(f"--{name} must be >= 1, got {flag.value}")
  if _SPARSE_K.value < 1:
    raise ValueError(f"--sparse_k must be >= 1, got {_SPARSE_K.value}")
  return [dict(mode=mode, content=content, phase=phase, memory_size=size,
               word_size=_WORD_SIZE.value, batch_size=_BATCH_SIZE.value,
               seq_len=_SEQ_LEN.value,
               **({"sparse_k": _SPARSE_K.value} if mode == "sparse" else {}))
          for phase in _PHASES.value for mode in _MODES.value
          for content in _CONTENT.value for size in sorted(sizes)
          if takes_content(mode, content)]


def takes_content(mode, content):
  """Whether heads of `mode` take `content`: every mode scans ('on') or
  has no content ('off'); sparse heads take either index, hard heads
  'written' (memtk.cell.NTMCell's content_index)."""
  if content not in INDEXES:
    return True
  return mode == "sparse" or (mode == "hard" and content == "written")


def run_configuration(config):
  """Runs one configuration in its own process; returns its result dict."""
  job = dict(config, repeats=_REPEATS.value, seconds=_SECONDS.value,
             controller_units=_UNITS.value, threads=_THREADS.value)
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2",
             TF_CPU_ALLOCATOR_USE_BFC="true")
  process = subprocess.run(
      [sys.executable, "-m", "benchmarks.cost", f"--worker={json.dumps(job)}"],
      capture_output=True, text=True, env=env, check=False)
  for line in process.stdout.splitlines():
    if line.startswith(_RESULT_PREFIX):
      return json.loads(line[len(_RESULT_PREFIX):])
  errors = [line for line in process.stderr.splitlines() if "Error" in line]
  reason = errors[-1] if errors else process.stderr.strip()[-300:]
  print(f"configuration {config} failed:\n{process.stderr[-3000:]}",
        file=sys.stderr)
  return dict(ms_per_step=None, peak_mb=None, skipped=f"failed: {reason}")


def main(argv):
  del argv
  if _WORKER.value:
    return worker(json.loads(_WORKER.value))
  configs = configurations()
  done = {}
  if _RESUME.value and _JSON.value and os.path.exists(_JSON.value):
    with open(_JSON.value) as f:
      done = {_key(row): row for row in json.load(f)
              if row.get("ms_per_step") is not None}
  bandwidth = cost_model.measure_bandwidth()
  print(f"memory bandwidth (large copy, read + write): "
        f"{bandwidth / 1e9:.1f} GB/s", flush=True)
  results = []
  for i, config in enumerate(configs):
    label = " ".join(f"{k}={config[k]}" for k in
                     ("mode", "content", "phase", "memory_size"))
    gb = cost_model.estimated_gb(config)
    if _key(config) in done:
      result = done[_key(config)]  # as measured, with that run's bandwidth
      label += f" (kept from {_JSON.value})"
    else:
      if gb > _MAX_MEMORY_GB.value:
        result = dict(config, ms_per_step=None, peak_mb=None,
                      skipped=f"needs ~{gb:.0f} GB > --max_memory_gb")
      else:
        start = time.perf_counter()
        result = dict(config, **run_configuration(config))
        label += f" ({time.perf_counter() - start:.0f} s)"
      if config["mode"] == "soft" and result.get("ms_per_step"):
        result["bandwidth_fraction"] = cost_model.soft_bytes_per_step(
            config) / (result["ms_per_step"] / 1e3) / bandwidth
      if result.get("scan_ms"):
        result["scan_bandwidth_fraction"] = cost_model.scan_bytes(
            config) / (result["scan_ms"] / 1e3) / bandwidth
      result["machine_bandwidth_gb_s"] = bandwidth / 1e9
    results.append(result)
    print(f"[{i + 1}/{len(configs)}] {label}: "
          f"{result.get('ms_per_step') or result.get('skipped')}", flush=True)
    if _JSON.value:  # as it goes: a long run that dies keeps what it measured
      with open(_JSON.value, "w") as f:
        json.dump(results, f, indent=1)
  print(cost_model.format_table(results))
  for extra in (cost_model.format_breakdown(results),
                cost_model.format_scans(results)):
    if extra:
      print(extra)
  if _PLOT.value:
    from memtk import viz  # matplotlib only when plotting
    viz.plot_cost(results, _PLOT.value)
  return 0


def _key(config):
  return tuple(config.get(k) for k in ("mode", "content", "phase",
                                       "memory_size", "word_size",
                                       "batch_size", "seq_len", "sparse_k"))


# --- the worker: one configuration in a fresh process ----------------------

def worker(job):
  import tensorflow as tf  # only the workers pay TensorFlow's import
  import keras
  from memtk.model import NTM

  if job["threads"]:
    tf.config.threading.set_intra_op_parallelism_threads(job["threads"])
  keras.utils.set_random_seed(0)
  batch, steps, n, w = (job["batch_size"], job["seq_len"], job["memory_size"],
                        job["word_size"])
  model = NTM("lstm", _OUTPUT_SIZE, memory_size=n, word_size=w,
              addressing=job["mode"], controller_units=job["controller_units"],
              sparse_k=job.get("sparse_k", 8),
              content_addressing=job["content"] != "off",
              content_index=(job["content"] if job["content"] in INDEXES
                             else None))
  # The step's own cost: no copy of the best weights (restore_best), which
  # tasks.train does not keep either.
  model.compile(optimizer="adam", restore_best=False)
  rng = np.random.default_rng(0)
  x = tf.constant(rng.integers(0, 2, (batch, steps, _INPUT_SIZE)),
                  tf.float32)
  y = tf.constant(rng.integers(0, 2, (batch, steps, _OUTPUT_SIZE)),
                  tf.float32)
  mask = tf.ones((batch, steps))
  if job["phase"] == "forward":
    forward = tf.function(lambda x: model(x), jit_compile=True)
    call = lambda: forward(x).numpy()
  else:
    call = lambda: model.train_on_batch(x, y, sample_weight=mask)
  # TensorFlow's pooling allocator keeps the timed calls free of page
  # faults (as in training, where the same step repeats) and counts the
  # bytes in use, so peaks are exact; see the module docstring.
  start = time.perf_counter()
  call()  # the warm-up: compiles, then runs once
  warm_seconds = time.perf_counter() - start
  repeats = max(1, min(job["repeats"], int(job["seconds"] / warm_seconds)))
  tf.config.experimental.reset_memory_stats("CPU:0")
  resting = tf.config.experimental.get_memory_info("CPU:0")["current"]
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    call()
    times.append(time.perf_counter() - start)
  peak = tf.config.experimental.get_memory_info("CPU:0")["peak"]
  result = dict(ms_per_step=1e3 * statistics.median(times) / steps,
                peak_mb=max(0, peak - resting) / 2**20,
                repeats=repeats, warm_up_seconds=warm_seconds)
  if job["mode"] == "soft" and job["phase"] == "forward":
    result["breakdown_ms"] = _soft_breakdown(
        batch, n, w, job["content"] == "on", repeats=max(3, repeats))
  if (job["mode"] != "soft" and job["phase"] == "forward"
      and job["content"] == "on"):
    result["scan_ms"] = _scan_ms(model.cell, batch, repeats=max(3, repeats))
  if job["content"] in INDEXES:
    from memtk import content_index
    cell = model.cell
    capacity, _ = content_index.sizes(n, steps, cell.num_write_heads,
                                      cell.mode.support_size(cell))
    # What the loop keeps in place of the memory (memtk.stores.ListStore:
    # the rows written, their places and the index), against the floats of
    # the [B, N, W] memory it does not keep.
    from memtk import stores
    result["index_mb"] = batch * stores.ListStore.bytes_per_sequence(
        cell.content_index, n, capacity, w) / 2**20
    result["memory_mb"] = batch * n * w * 4 / 2**20
  print(_RESULT_PREFIX + json.dumps(result), flush=True)
  return 0


def _time_compiled(fn, repeats):
  """Median ms of `repeats` calls of fn compiled by XLA (after a warm-up)."""
  import tensorflow as tf
  compiled = tf.function(fn, jit_compile=True)
  tf.nest.map_structure(lambda t: t.numpy(), compiled())
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    tf.nest.map_structure(lambda t: t.numpy(), compiled())
    times.append(time.perf_counter() - start)
  return 1e3 * statistics.median(times)


def _scan_ms(cell, batch, repeats):
  """ms of one step's content scan alone, as the mode runs it: the cosine of
  every head's key against every cell (with the kept row norms), and for
  sparse heads the top-K cells of it (hard: its maximum)."""
  import tensorflow as tf
  from memtk import addressing

  rng = np.random.default_rng(2)
  shape = (batch, cell.memory_size, cell.word_size)
  memory = tf.constant(rng.normal(size=shape), tf.float32)
  memory_norms = addressing.norms(memory)
  keys = tf.constant(rng.normal(size=(batch, cell.num_heads, shape[2])),
                     tf.float32)

  def scan():
    cosine, _, _ = addressing.cosine_similarity(memory, keys, memory_norms)
    if cell.addressing == "sparse":
      return addressing.top_cells(cosine, cell.mode.support_size(cell))
    # The scores' maximum, not the [B, H, N] scores: copying those out of
    # the compiled call would be timed too.
    return tf.reduce_max(cosine, -1)

  return _time_compiled(scan, repeats)


def _soft_breakdown(batch, n, w, content, repeats):
  """ms of each part of one soft step (1 read + 1 write head), timed alone."""
  import tensorflow as tf
  from memtk import access
  from memtk import addressing
  from memtk import memory as memory_lib

  rng = np.random.default_rng(1)
  heads = 2
  memory = tf.constant(rng.normal(size=(batch, n, w)), tf.float32)
  weights = tf.nn.softmax(tf.constant(rng.normal(size=(batch, heads, n)),
                                      tf.float32))
  keys = tf.constant(rng.normal(size=(batch, heads, w)), tf.float32)
  vectors = tf.constant(rng.uniform(size=(batch, 1, w)), tf.float32)
  strengths = tf.ones((batch, heads))
  shifts = tf.fill((batch, heads, 3), 1.0 / 3)
  parts = {
      "read": lambda: memory_lib.read(memory, weights[:, :1]),
      "write": lambda: memory_lib.write(memory, weights[:, 1:], vectors,
                                        vectors),
  }
  if content:
    parts["content_scores"] = lambda: addressing.content_weights(
        memory, keys, strengths)
    gates = tf.fill((batch, heads), 0.5)

    def access_step(memory):
      return access.soft_access(memory, weights, keys, strengths, gates,
                                shifts, strengths + 1.0, vectors, vectors, 1)
  else:
    def access_step(memory):
      new_weights = addressing.address_by_shift(weights, shifts,
                                                strengths + 1.0)
      return (new_weights,) + access.dense_access(memory, new_weights, vectors,
                                                  vectors, 1)

  def forward_and_backward():
    # The outputs too: XLA would otherwise skip forward work the gradient
    # does not need, and the difference would not be the backward pass.
    with tf.GradientTape() as tape:
      tape.watch(memory)
      out = access_step(memory)
      total = sum(tf.reduce_sum(o) for o in out)
    return out, tape.gradient(total, memory)

  def time_it(fn):
    return _time_compiled(fn, repeats)

  result = {name: time_it(fn) for name, fn in parts.items()}
  whole = time_it(lambda: access_step(memory))
  result["backward"] = max(0.0, time_it(forward_and_backward) - whole)
  ordered = ["content_scores", "read", "write", "backward"]
  return {k: result[k] for k in ordered if k in result}


if __name__ == "__main__":
  app.run(main)
