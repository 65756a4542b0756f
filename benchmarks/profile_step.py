r"""Where a training step's time goes: the XLA kernels of one method's step.

  python -m benchmarks.profile_step
  python -m benchmarks.profile_step --method=reinforce --threads=1

Compiles the method's train step as benchmarks.throughput does (copy, the
recipe's sizes, XLA), then runs --steps steps of `model.fit` under the
TensorFlow profiler and reads the kernels XLA's CPU runtime recorded. Prints
the kernel runs per time step of the sequence (forward and backward
together), how much of the time the thunk executor was busy went to the
kernels themselves (the rest is dispatch between kernels), and the kernel
kinds that take the most time (numbered instances of one kind, e.g.
`multiply_add_fusion.3`, counted together) with their runs per time step.

A step of small kernels is paced by how many there are, not by the
arithmetic in them; this says how many there are and which ones to fuse or
remove before anything is optimised.
"""

import collections
import glob
import json
import os
import re
import tempfile
import time

from absl import app
from absl import flags

_METHOD = flags.DEFINE_string(
    "method", "soft", "A method of tasks.common.METHODS (hard ones as they "
    "train once any curriculum is over) or reference.")
_BATCH_SIZE = flags.DEFINE_integer("batch_size", 32, "Sequences per step.")
_STEPS = flags.DEFINE_integer("steps", 40, "Profiled train steps.")
_THREADS = flags.DEFINE_integer("threads", 2, "TensorFlow intra-op threads.")
_TOP = flags.DEFINE_integer("top", 20, "Kernel kinds to list.")
_JSON = flags.DEFINE_string("json", None, "Write the summary here as JSON.")

_EXECUTOR = "ThunkExecutor::Execute"  # XLA:CPU's span around its kernels


def kernel_kind(name):
  """A kernel's kind: its name without XLA's instance number."""
  return re.sub(r"[._]\d+$", "", name)


def summarise(space, steps, time_steps, top=20):
  """What the kernels of `steps` train steps over sequences of `time_steps`
  took, from a profiler XSpace (tensorflow.tsl xplane_pb2).

  Returns:
    dict: executor_ms and kernel_ms (summed over threads), kernel_runs,
    runs_per_time_step, kernel_share (kernel_ms / executor_ms), and kinds:
    the `top` kinds by time, each {kind, ms, share, runs_per_time_step}.
  """
  executor_ms, runs = 0.0, 0
  time_of, runs_of = collections.Counter(), collections.Counter()
  for plane in space.planes:
    names = {k: v.name for k, v in plane.event_metadata.items()}
    for line in plane.lines:
      events = sorted((e.offset_ps, e.duration_ps,
                       names.get(e.metadata_id, "")) for e in line.events)
      end = -1  # of the executor span being read: kernels are inside one
      for offset, duration, name in events:
        if name == _EXECUTOR:
          executor_ms += duration / 1e9
          end = max(end, offset + duration)
        elif offset + duration <= end:
          runs += 1
          time_of[kernel_kind(name)] += duration / 1e9
          runs_of[kernel_kind(name)] += 1
  kernel_ms = sum(time_of.values())
  per_time_step = float(steps * time_steps)
  return {
      "steps": steps, "time_steps": time_steps,
      "executor_ms": executor_ms, "kernel_ms": kernel_ms,
      "kernel_runs": runs, "runs_per_time_step": runs / per_time_step,
      "kernel_share": kernel_ms / executor_ms if executor_ms else 0.0,
      "kinds": [{"kind": kind, "ms": ms,
                 "share": ms / kernel_ms if kernel_ms else 0.0,
                 "runs_per_time_step": runs_of[kind] / per_time_step}
                for kind, ms in time_of.most_common(top)]}


def profile(method, batch_size, steps, top=20):
  """Compiles `method`'s train step, profiles `steps` steps of fit and
  returns summarise()'s dict plus seconds_per_step (under the profiler)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from tensorflow.tsl.profiler.protobuf import xplane_pb2  # pylint: disable=g-import-not-at-top
  from benchmarks import timing  # pylint: disable=g-import-not-at-top

  model, (x, y, m), _ = timing.compiled_model(method, batch_size, 1, steps)
  with tempfile.TemporaryDirectory() as logdir:
    tf.profiler.experimental.start(logdir)
    start = time.perf_counter()
    model.fit(x, y, sample_weight=m, batch_size=batch_size, verbose=0,
              shuffle=False)
    seconds = time.perf_counter() - start
    tf.profiler.experimental.stop()
    path = glob.glob(os.path.join(logdir, "plugins", "profile", "*",
                                  "*.xplane.pb"))[0]
    space = xplane_pb2.XSpace()
    with open(path, "rb") as f:
      space.ParseFromString(f.read())
  summary = summarise(space, steps, x.shape[1], top)
  summary.update(method=method, batch_size=batch_size,
                 seconds_per_step=seconds / steps)
  return summary


def main(argv):
  del argv
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  for flag in (_BATCH_SIZE, _STEPS, _THREADS, _TOP):
    if flag.value < 1:
      raise app.UsageError(f"--{flag.name} must be >= 1, got {flag.value}")
  tf.config.threading.set_intra_op_parallelism_threads(_THREADS.value)
  s = profile(_METHOD.value, _BATCH_SIZE.value, _STEPS.value, _TOP.value)
  print(f"{s['method']}, batch {s['batch_size']}, {_THREADS.value} threads: "
        f"{1000 * s['seconds_per_step']:.1f} ms per step under the profiler "
        f"({s['time_steps']} time steps per sequence)")
  print(f"{s['runs_per_time_step']:.0f} kernel runs per time step (forward "
        f"and backward); kernels {s['kernel_ms']:.0f} ms of the executor's "
        f"{s['executor_ms']:.0f} ms ({100 * s['kernel_share']:.0f}%, summed "
        "over threads; the rest is dispatch between kernels)")
  print(f"{'ms/step':>8} {'share':>6} {'runs/t':>7}  kernel kind")
  for k in s["kinds"]:
    print(f"{k['ms'] / s['steps']:8.2f} {100 * k['share']:5.1f}% "
          f"{k['runs_per_time_step']:7.1f}  {k['kind']}")
  if _JSON.value:
    with open(_JSON.value, "w") as f:
      json.dump(s, f, indent=2)


if __name__ == "__main__":
  app.run(main)
