"""What benchmarks.profile_step measures, without its flags: a method's train
step under the TensorFlow profiler, and the summary of the XLA kernels the
profiler recorded."""

import collections
import glob
import os
import re
import tempfile
import time

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
