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
remove before anything is optimised. The measuring is in
benchmarks/kernel_profile.py.
"""

import json

from absl import app
from absl import flags
from benchmarks import kernel_profile

_METHOD = flags.DEFINE_string(
    "method", "soft", "A method of tasks.common.METHODS (hard ones as they "
    "train once any curriculum is over) or reference.")
_BATCH_SIZE = flags.DEFINE_integer("batch_size", 32, "Sequences per step.")
_STEPS = flags.DEFINE_integer("steps", 40, "Profiled train steps.")
_THREADS = flags.DEFINE_integer("threads", 2, "TensorFlow intra-op threads.")
_TOP = flags.DEFINE_integer("top", 20, "Kernel kinds to list.")
_JSON = flags.DEFINE_string("json", None, "Write the summary here as JSON.")


def main(argv):
  del argv
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  for flag in (_BATCH_SIZE, _STEPS, _THREADS, _TOP):
    if flag.value < 1:
      raise app.UsageError(f"--{flag.name} must be >= 1, got {flag.value}")
  tf.config.threading.set_intra_op_parallelism_threads(_THREADS.value)
  s = kernel_profile.profile(_METHOD.value, _BATCH_SIZE.value, _STEPS.value, _TOP.value)
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
