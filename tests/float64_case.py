"""A TestCase that runs Keras in float64 (for gradient checks against
straightforward compositions), shared by the sparse and row-loop tests."""

from absl.testing import parameterized
import keras
import numpy as np
import tensorflow as tf


class Float64TestCase(tf.test.TestCase, parameterized.TestCase):
  """Keras layers and variables in float64 during each test (reset after);
  weights seeded by keras.utils.set_random_seed(1), `self.rng` a numpy
  generator seeded with 0."""

  def setUp(self):
    super().setUp()
    # Keras caches its global dtype policy from floatx: set (and reset) both.
    keras.config.set_floatx("float64")
    keras.config.set_dtype_policy("float64")
    keras.utils.set_random_seed(1)
    self.rng = np.random.default_rng(0)

  def tearDown(self):
    keras.config.set_floatx("float32")
    keras.config.set_dtype_policy("float32")
    super().tearDown()
