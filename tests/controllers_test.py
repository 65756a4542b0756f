"""Controllers: built-in and user-written ones train inside an NTM."""

from absl.testing import parameterized
import keras
import numpy as np
import tensorflow as tf

import memtk
from memtk import controllers
from tasks import copy


class TinyRecurrentController(keras.layers.Layer):
  """A user-written controller: h_t = tanh(W [x_t, h_{t-1}])."""

  def __init__(self, units=12, **kwargs):
    super().__init__(**kwargs)
    self.units = units
    self.state_size = [units]

  def build(self, input_shape):
    self.kernel = self.add_weight(shape=(input_shape[-1] + self.units, self.units),
                                  initializer="glorot_uniform", name="kernel")

  def call(self, inputs, states):
    h = tf.tanh(tf.matmul(tf.concat([inputs, states[0]], -1), self.kernel))
    return h, [h]


class NoStateSize(keras.layers.Layer):

  def call(self, inputs, states):
    return inputs, states


class ReturnsOutputOnly(TinyRecurrentController):

  def call(self, inputs, states):
    return super().call(inputs, states)[0]


class ReturnsTooManyStates(TinyRecurrentController):

  def call(self, inputs, states):
    h, _ = super().call(inputs, states)
    return h, [h, h]


def copy_data(batch=16, seed=0):
  return copy.CopyTask(num_bits=4, min_length=1, max_length=3).sample(
      np.random.default_rng(seed), batch)


class ControllersTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.named_parameters(
      ("gru", lambda: keras.layers.GRUCell(12), "gru_cell"),
      ("user", lambda: TinyRecurrentController(), "tiny_recurrent_controller"),
      ("feedforward", lambda: controllers.FeedForwardController(12, 2),
       "feed_forward_controller"),
      ("dotted_path", lambda: controllers.make_controller(
          "tasks.custom_controller:make", 12), "stacked_lstm"))
  def test_controller_weights_train(self, make, prefix):
    keras.utils.set_random_seed(0)
    controller = make()
    model = memtk.NTM(controller, 4, memory_size=8, word_size=5)
    # Eager: what is tested is which weights move, not the compiled step
    # (XLA's compile took 13-28 s per controller, eager steps 2-3 s).
    model.compile(optimizer=keras.optimizers.Adam(1e-2), jit_compile=False,
                  run_eagerly=True)
    x, y, m = copy_data()
    model.build(x.shape)
    own = [v for v in model.trainable_variables if prefix in v.path]
    self.assertNotEmpty(own)
    self.assertEqual(len(own), len(controller.trainable_variables))
    before = [v.numpy().copy() for v in own]
    model.fit(x, y, sample_weight=m, epochs=2, verbose=0)
    for b, v in zip(before, own):
      self.assertNotAllClose(b, v.numpy())

  def test_make_controller_names(self):
    self.assertIsInstance(controllers.make_controller("lstm", 7),
                          keras.layers.LSTMCell)
    self.assertIsInstance(controllers.make_controller("gru", 7),
                          keras.layers.GRUCell)
    self.assertIsInstance(controllers.make_controller("feedforward", 7),
                          controllers.FeedForwardController)
    with self.assertRaisesRegex(ValueError, "'mlp'"):
      controllers.make_controller("mlp")
    with self.assertRaisesRegex(ValueError, "units"):
      controllers.make_controller("lstm", 0)

  def test_contract_violations_are_type_errors(self):
    with self.assertRaisesRegex(TypeError, "state_size"):
      memtk.NTM(NoStateSize(), 4)
    with self.assertRaisesRegex(TypeError, "keras.layers.Layer"):
      memtk.NTM(object(), 4)
    x = np.zeros((2, 3, 5), np.float32)
    with self.assertRaisesRegex(TypeError, r"\(output, new_states\)"):
      memtk.NTM(ReturnsOutputOnly(), 4, memory_size=8, word_size=5)(x)
    with self.assertRaisesRegex(TypeError, "2 state tensors"):
      memtk.NTM(ReturnsTooManyStates(), 4, memory_size=8, word_size=5)(x)

  def test_dotted_paths(self):
    stacked = controllers.make_controller("tasks.custom_controller:make", 7)
    self.assertEqual(stacked.units, 7)
    with self.assertRaisesRegex(ValueError, "cannot import module 'nowhere'"):
      controllers.make_controller("nowhere:make")
    with self.assertRaisesRegex(ValueError, "no callable 'missing'"):
      controllers.make_controller("tasks.custom_controller:missing")


class LearningTest(tf.test.TestCase):

  def test_short_copy_training_beats_chance(self):
    keras.utils.set_random_seed(1)
    task = copy.CopyTask(num_bits=4, min_length=1, max_length=3)
    model = memtk.NTM("lstm", task.output_size, memory_size=16, word_size=8,
                      controller_units=32)
    model.compile(optimizer=keras.optimizers.Adam(3e-3, global_clipnorm=50),
                  steps_per_execution=10)
    rng = np.random.default_rng(0)
    x, y, m = task.sample(rng, 32 * 400)
    model.fit(x, y, sample_weight=m, batch_size=32, epochs=1, verbose=0)
    xt, yt, mt = task.sample(np.random.default_rng(99), 500)
    results = model.evaluate(xt, yt, sample_weight=mt, verbose=0,
                             return_dict=True)
    # Chance is ln 2 = 0.693 nats per bit and 0.5 * 4 * 2 = 4 bits a sequence.
    self.assertLess(results["loss"], 0.3)
    self.assertLess(results["bit_errors"], 1.0)


if __name__ == "__main__":
  tf.test.main()
