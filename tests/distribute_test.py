"""tf.distribute: a mirrored step over two logical CPUs equals a one-device
step on the same global batch; two worker processes of
MultiWorkerMirroredStrategy on 127.0.0.1 end with the same weights, equal to
one process's on the same global batches."""

import json
import os
import socket
import subprocess
import sys

import tensorflow as tf

from tests import background

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Runs in a fresh process: logical devices must be set before TensorFlow
# initialises its devices.
_SCRIPT = r"""
import json
import sys
import numpy as np
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras
from tasks import common
from tasks import copy

# One sequence length: both halves of the batch have the same number of
# answer steps, so the per-replica masked means average to the global one.
task = copy.CopyTask(min_length=5, max_length=5)
x, y, mask = task.sample(np.random.default_rng(0), 8)

def one_step(config, strategy, steps_per_execution):
  keras.utils.set_random_seed(0)
  model = common.make_model(config, task, strategy)
  with strategy.scope():
    model.compile(optimizer=keras.optimizers.SGD(0.5),
                  jit_compile=False,  # as under several replicas
                  steps_per_execution=steps_per_execution)
  history = model.fit(x, y, sample_weight=mask, batch_size=8, epochs=1,
                      shuffle=False, verbose=0)
  return history.history["loss"][0], [v.numpy() for v in model.weights]

# Every case in one process (each process pays TensorFlow's start-up).
mirrored = common.make_strategy("mirrored")
for addressing, estimator, read_discount, steps_per_execution in json.loads(
    sys.argv[1]):
  config = dict(common.DEFAULT_CONFIG, memory_size=16, word_size=6,
                controller_units=16, addressing=addressing,
                estimator=estimator, read_discount=read_discount,
                soft_curriculum_hold=0,
                soft_curriculum_steps=0)  # hard from the first step
  single_loss, single = one_step(config, common.make_strategy("default"),
                                 steps_per_execution)
  mirrored_loss, replicated = one_step(config, mirrored, steps_per_execution)
  keras.utils.set_random_seed(0)
  initial = [v.numpy() for v in common.make_model(config, task).weights]
  print(json.dumps({
      "replicas": mirrored.num_replicas_in_sync,
      "losses": [single_loss, mirrored_loss],
      "max_difference": max(float(np.abs(a - b).max())
                            for a, b in zip(single, replicated)),
      "max_update": max(float(np.abs(a - b).max())
                        for a, b in zip(single, initial)),
  }))
"""


# Runs as each of two workers (TF_CONFIG set) or as one process: a REINFORCE
# model (its reward statistics are the cross-replica part; a soft step under
# several replicas is MirroredStrategyTest's first case) trained 3 steps of
# tasks.train's data stream (global batch 8) under the strategy tasks.train
# --strategy names; writes the weights before and after to argv[2].
_WORKER = r"""
import sys
import numpy as np
import keras
from tasks import common
from tasks import copy

strategy = common.make_strategy(sys.argv[1])
task = copy.CopyTask(min_length=5, max_length=5)  # see _SCRIPT
weights = {}
for addressing in ("hard",):
  config = dict(common.DEFAULT_CONFIG, memory_size=16, word_size=6,
                controller_units=16, addressing=addressing,
                estimator="reinforce", soft_curriculum_hold=0,
                soft_curriculum_steps=0)  # hard from the first step
  keras.utils.set_random_seed(0)
  model = common.make_model(config, task, strategy)
  with strategy.scope():  # SGD: equal gradients give equal steps
    # Across workers SequenceModel.compile runs 1 step per call (TensorFlow
    # fails on 3).
    model.compile(optimizer=keras.optimizers.SGD(0.5), jit_compile=False,
                  steps_per_execution=3)
  if not model.built:
    model.build((None, None, task.input_size))
  for i, v in enumerate(model.weights):
    weights[f"{addressing}/before/{i}"] = v.numpy()
  model.fit(common.train_dataset(task, seed=0, batch_size=8, start_step=0),
            steps_per_epoch=3, epochs=1, shuffle=False, verbose=0)
  for i, v in enumerate(model.weights):
    weights[f"{addressing}/after/{i}"] = v.numpy()
weights["replicas"] = np.array(strategy.num_replicas_in_sync)
np.savez(sys.argv[2], **weights)
"""


def _free_ports(count):
  sockets = [socket.socket() for _ in range(count)]
  try:
    for s in sockets:
      s.bind(("127.0.0.1", 0))
    return [s.getsockname()[1] for s in sockets]
  finally:
    for s in sockets:
      s.close()


def _workers(out):
  """Two workers and one single process of _WORKER: (each one's (return
  code, stderr), the weights of each as loaded from its .npz)."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  cluster = [f"127.0.0.1:{port}" for port in _free_ports(2)]
  env = dict(os.environ, PYTHONPATH=_ROOT, TF_NUM_INTRAOP_THREADS="1",
             TF_NUM_INTEROP_THREADS="1")
  workers = []
  try:
    for index in range(2):
      config = {"cluster": {"worker": cluster},
                "task": {"type": "worker", "index": index}}
      workers.append(subprocess.Popen(
          [sys.executable, "-c", _WORKER, "multi_worker",
           os.path.join(out, f"worker{index}.npz")], cwd=_ROOT,
          env=dict(env, TF_CONFIG=json.dumps(config)),
          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    single = subprocess.run(
        [sys.executable, "-c", _WORKER, "default",
         os.path.join(out, "single.npz")], cwd=_ROOT, env=env,
        capture_output=True, text=True, timeout=600)
    ended = [(single.returncode, single.stderr)]
    for worker in workers:
      _, stderr = worker.communicate(timeout=600)
      ended.append((worker.returncode, stderr))
  finally:  # no worker outlives the run, whatever failed
    for worker in workers:
      worker.kill()
      worker.wait()
  if any(code for code, _ in ended):
    return ended, None
  return ended, [dict(np.load(os.path.join(out, f"{name}.npz")))
                 for name in ("worker0", "worker1", "single")]


# Every case runs in one process (each process pays TensorFlow's start),
# under one MirroredStrategy.
# read_discount < 1: the read heads' signal is centred on the whole
# batch's rows, a cross-replica mean per step.
# steps_per_execution=10 (tasks.train's default) runs as 1 under several
# (addressing, estimator, read_discount, steps_per_execution); several
# steps per call with one replica only (TensorFlow fails on several steps
# of collective ops in one call). Each case is a superset of a simpler
# one (the soft step under steps_per_execution=10; REINFORCE with the read
# heads' own signal): every case costs a model build and a traced step.
MIRRORED_CASES = (("soft", "reinforce", 1.0, 10),
                  ("hard", "reinforce", 0.5, 1),
                  ("hard", "gumbel", 1.0, 1))


def _mirrored(out):
  del out
  return subprocess.run(
      [sys.executable, "-c", _SCRIPT, json.dumps(MIRRORED_CASES)],
      cwd=_ROOT, capture_output=True, text=True,
      env=dict(os.environ, PYTHONPATH=_ROOT), timeout=1200)


# Each test's processes run beside the rest of the suite (tests.background).
COMMANDS = {"test_mirrored_step_equals_single_device_step": _mirrored,
            "test_two_workers_end_equal_to_each_other_and_to_one_process":
                _workers}


class MultiWorkerTest(tf.test.TestCase):

  def test_two_workers_end_equal_to_each_other_and_to_one_process(self):
    import numpy as np  # pylint: disable=g-import-not-at-top
    ended, runs = background.result(self._testMethodName, _workers)
    for code, stderr in ended:
      self.assertEqual(code, 0, stderr[-3000:])
    self.assertEqual([int(r.pop("replicas")) for r in runs], [2, 2, 1])
    self.assertEqual(set(runs[0]), set(runs[2]))
    for addressing in ("hard",):
      after = sorted(k for k in runs[0] if k.startswith(f"{addressing}/after"))
      moved = max(np.abs(runs[2][k] - runs[2][k.replace("after", "before")]).max()
                  for k in after)
      self.assertGreater(moved, 1e-3, addressing)  # the steps moved weights
      for k in after:
        self.assertAllClose(runs[0][k], runs[1][k], atol=1e-6, msg=k)
        self.assertAllClose(runs[0][k], runs[2][k], atol=1e-5, msg=k)


class MirroredStrategyTest(tf.test.TestCase):

  def test_mirrored_step_equals_single_device_step(self):
    result = background.result(self._testMethodName, _mirrored)
    self.assertEqual(result.returncode, 0, result.stderr)
    lines = [line for line in result.stdout.splitlines()
             if line.startswith("{")]
    self.assertLen(lines, len(MIRRORED_CASES))
    for case, line in zip(MIRRORED_CASES, lines):
      with self.subTest(case=case):
        out = json.loads(line)
        self.assertEqual(out["replicas"], 2)
        self.assertAllClose(out["losses"][0], out["losses"][1], atol=1e-6)
        self.assertGreater(out["max_update"], 1e-3)  # the step moved them
        self.assertLess(out["max_difference"], 1e-5)  # ... by equal amounts

if __name__ == "__main__":
  tf.test.main()
