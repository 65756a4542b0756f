"""tf.distribute: a mirrored step over two logical CPUs equals a one-device
step on the same global batch."""

import json
import os
import subprocess
import sys

from absl.testing import parameterized
import tensorflow as tf

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Runs in a fresh process: logical devices must be set before TensorFlow
# initialises its devices.
_SCRIPT = r"""
import json
import sys
import numpy as np
from absl.testing import parameterized
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
config = dict(common.DEFAULT_CONFIG, memory_size=16, word_size=6,
              controller_units=16, addressing=sys.argv[1],
              estimator=sys.argv[2])

def one_step(strategy):
  keras.utils.set_random_seed(0)
  model = common.make_model(config, task, strategy)
  with strategy.scope():
    model.compile(optimizer=keras.optimizers.SGD(0.5),
                  jit_compile=False)  # as under several replicas
  history = model.fit(x, y, sample_weight=mask, batch_size=8, epochs=1,
                      shuffle=False, verbose=0)
  return history.history["loss"][0], [v.numpy() for v in model.weights]

mirrored = common.make_strategy("mirrored")
single_loss, single = one_step(common.make_strategy("default"))
mirrored_loss, replicated = one_step(mirrored)
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


class MirroredStrategyTest(tf.test.TestCase, parameterized.TestCase):

  # One process per case: collective ops of two mirrored models in one
  # process interfere.
  @parameterized.parameters(("soft", "reinforce"), ("hard", "reinforce"),
                            ("hard", "gumbel"))
  def test_mirrored_step_equals_single_device_step(self, addressing,
                                                   estimator):
    env = dict(os.environ, PYTHONPATH=_ROOT)
    result = subprocess.run(
        [sys.executable, "-c", _SCRIPT, addressing, estimator], cwd=_ROOT,
        capture_output=True, text=True, env=env, timeout=600)
    self.assertEqual(result.returncode, 0, result.stderr)
    out = json.loads(result.stdout.strip().splitlines()[-1])
    self.assertEqual(out["replicas"], 2)
    self.assertAllClose(out["losses"][0], out["losses"][1], atol=1e-6)
    self.assertGreater(out["max_update"], 1e-3)  # the step moved the weights
    self.assertLess(out["max_difference"], 1e-5)  # ... by the same amounts


if __name__ == "__main__":
  tf.test.main()
