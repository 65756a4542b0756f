"""The LSTM baseline: its size, its training by the recipe, saving."""

import os

import keras
import numpy as np
import tensorflow as tf

import memtk
from memtk import baseline


class SizeTest(tf.test.TestCase):

  def test_parameter_count_formula_matches_keras(self):
    model = memtk.LSTMBaseline(output_size=8, units=37)
    model.build((None, None, 9))
    self.assertEqual(model.count_params(), baseline.lstm_parameters(37, 9, 8))

  def test_units_come_closest_to_the_parameter_count(self):
    for target in (1, 500, 52_000, 123_457):
      units = baseline.units_for_parameters(target, 9, 8)
      best = min(range(1, 400),
                 key=lambda u: abs(baseline.lstm_parameters(u, 9, 8) - target))
      self.assertEqual(units, best, target)
    with self.assertRaisesRegex(ValueError, "parameters must be >= 1, got 0"):
      baseline.units_for_parameters(0, 9, 8)

  def test_bad_arguments(self):
    for kwargs, message in [({"units": 0}, "units must be an int >= 1, got 0"),
                            ({"output_size": 2.0},
                             "output_size must be an int >= 1, got 2.0")]:
      with self.assertRaisesRegex(ValueError, message):
        memtk.LSTMBaseline(**{"output_size": 3, **kwargs})


class TrainingTest(tf.test.TestCase):

  def _data(self, batch=16):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 2, (batch, 6, 3)).astype(np.float32)
    return x, x[:, :, :2], np.ones((batch, 6), np.float32)

  def test_compile_takes_the_recipes_defaults(self):
    model = memtk.LSTMBaseline(output_size=2, units=4)
    model.compile()
    got = model.optimizer.get_config()
    want = memtk.training.default_optimizer().get_config()
    for key in ("learning_rate", "global_clipnorm", "amsgrad"):
      self.assertEqual(got[key], want[key], key)
    self.assertEqual(model.loss.name, "masked_sigmoid_cross_entropy")
    self.assertTrue(model.jit_compile)

  def test_fit_learns_and_skips_nan(self):
    keras.utils.set_random_seed(1)
    model = memtk.LSTMBaseline(output_size=2, units=16)
    model.compile(optimizer=memtk.training.default_optimizer(1e-2))
    x, y, mask = self._data()
    first = model.evaluate(x, y, sample_weight=mask, verbose=0,
                           return_dict=True)
    history = model.fit(x, y, sample_weight=mask, epochs=60, verbose=0)
    self.assertLess(history.history["loss"][-1], first["loss"] / 2)
    self.assertIn("bit_errors", history.history)
    self.assertEqual(history.history["skipped_steps"][-1], 0.0)
    # A NaN batch is skipped: the weights stay as they were.
    before = [v.numpy() for v in model.trainable_variables]
    bad = model.fit(np.full_like(x, np.nan), y, sample_weight=mask, epochs=1,
                    verbose=0)
    self.assertEqual(bad.history["skipped_steps"][-1], 1.0)
    for old, variable in zip(before, model.trainable_variables):
      self.assertAllEqual(old, variable.numpy())

  def test_trace_save_and_load(self):
    model = memtk.LSTMBaseline(output_size=2, units=5)
    model.compile()
    x, y, mask = self._data(3)
    model.fit(x, y, sample_weight=mask, epochs=1, verbose=0)  # optimizer built
    trace = model.trace(x)
    self.assertEqual(trace["logits"].shape, (3, 6, 2))
    self.assertEqual(trace["read_weights"].shape, (3, 6, 0, 1))
    with self.assertRaisesRegex(ValueError, "choice must be None"):
      model(x, choice="greedy")
    path = os.path.join(self.get_temp_dir(), "baseline.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    self.assertIsInstance(loaded, memtk.LSTMBaseline)
    self.assertAllClose(loaded(x), model(x))
    self.assertEqual(int(loaded.optimizer.iterations.numpy()), 1)


if __name__ == "__main__":
  tf.test.main()
