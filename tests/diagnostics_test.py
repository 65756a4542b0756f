"""memtk.diagnostics against hand-computed values."""

import keras
import numpy as np
import tensorflow as tf

import memtk
from memtk import diagnostics
from memtk import heads
from tasks import common
from tasks.copy import CopyTask


def fixed_head_model(gate_raw, gamma_raw, shift_raw):
  """A model whose interface ignores the controller: every step's head
  parameters are the activations of the given raw biases."""
  keras.utils.set_random_seed(0)
  model = memtk.NTM("lstm", 3, memory_size=8, word_size=4, controller_units=6)
  model.build((None, None, 4))
  projection = model.cell.interface.projection
  projection.kernel.assign(np.zeros(projection.kernel.shape, np.float32))
  bias = np.zeros(projection.bias.shape, np.float32)
  h, w, s = 2, 4, 3
  bias[h * w + h:h * w + 2 * h] = gate_raw
  bias[h * w + 2 * h:h * w + 2 * h + h * s] = np.tile(shift_raw, h)
  bias[h * w + 2 * h + h * s:h * w + 3 * h + h * s] = gamma_raw
  projection.bias.assign(bias)
  return model


def batch(steps=5, answer_from=3):
  rng = np.random.default_rng(0)
  x = rng.integers(0, 2, size=(4, steps, 4)).astype(np.float32)
  y = rng.integers(0, 2, size=(4, steps, 3)).astype(np.float32)
  mask = np.zeros((4, steps), np.float32)
  mask[:, answer_from:] = 1.0
  return x, y, mask


class HeadStatisticsTest(tf.test.TestCase):

  def test_parameters_match_their_activations(self):
    shift_raw = np.array([0.0, 1.0, 2.0], np.float32)
    model = fixed_head_model(gate_raw=-1.5, gamma_raw=0.5, shift_raw=shift_raw)
    stats = diagnostics.head_statistics(model, *batch())
    s = np.exp(shift_raw) / np.exp(shift_raw).sum()
    for kind in ("read", "write"):
      self.assertAllClose(stats[f"gate_{kind}"], 1 / (1 + np.exp(1.5)))
      self.assertAllClose(stats[f"gamma_{kind}"], 1 + np.log1p(np.exp(0.5)))
      self.assertAllClose(stats[f"shift_{kind}"], s[2] - s[0], atol=1e-6)
      self.assertAllClose(stats[f"strength_{kind}"], np.log(2.0), atol=1e-6)
      self.assertBetween(stats[f"entropy_{kind}"], 0.0, 1.0)

  def test_uniform_attention_has_entropy_one(self):
    # Content only (gate ~1) over the constant memory: every cell alike.
    model = fixed_head_model(gate_raw=20.0, gamma_raw=-20.0,
                             shift_raw=np.zeros(3, np.float32))
    stats = diagnostics.head_statistics(model, *batch())
    self.assertAllClose(stats["entropy_write"], 1.0, atol=1e-3)
    self.assertAllClose(stats["entropy_read"], 1.0, atol=1e-3)

  def test_bits_without_memory_zero_the_reads(self):
    model = fixed_head_model(-1.0, 0.0, np.zeros(3, np.float32))
    x, y, mask = batch()
    stats = diagnostics.head_statistics(model, x, y, mask)
    logits = model(x)
    self.assertAllClose(stats["bits"], float(np.mean(
        memtk.metrics.bit_errors(logits, y, mask))))
    # Reads weigh in the output only through the read part of its kernel:
    # with that part huge, zeroing the reads changes the answers.
    kernel = model.cell.output_layer.kernel.numpy()
    kernel[6:] = 50.0
    model.cell.output_layer.kernel.assign(kernel)
    model.cell.initial_read.assign(np.ones((1, 4), np.float32))
    stats = diagnostics.head_statistics(model, x, y, mask)
    self.assertNotAllClose(stats["bits"], stats["bits_no_memory"])

  def test_only_steps_up_to_the_last_answer_count(self):
    x, y, mask = batch(steps=6, answer_from=2)
    x[:, 4:] = 0.0
    mask[:, 4:] = 0.0
    active = diagnostics._active_steps(x, mask)  # pylint: disable=protected-access
    self.assertAllEqual(active.sum(1), [4] * 4)


class WeightNormsAndMarginsTest(tf.test.TestCase):

  def test_weight_norms_per_part(self):
    model = fixed_head_model(0.0, 0.0, np.zeros(3, np.float32))
    norms = diagnostics.weight_norms(model)
    self.assertEqual(set(norms), {"controller", "interface", "output",
                                  "initial_state"})
    layer = model.cell.output_layer
    self.assertAllClose(norms["output"], float(tf.linalg.global_norm(
        [layer.kernel, layer.bias])), rtol=1e-6)

  def test_margins_against_numpy(self):
    logits = np.array([[[2.0, -1.0], [0.5, 3.0]], [[-4.0, 1.0], [9.0, 9.0]]])
    targets = np.array([[[1, 1], [0, 1]], [[0, 1], [1, 1]]], np.float32)
    mask = np.array([[1, 1], [1, 0]])  # the last step is no answer
    margins = [2.0, -1.0, -0.5, 3.0, 4.0, 1.0]
    got = diagnostics.output_margins(logits, targets, mask)
    self.assertAllClose(got["median"], np.median(margins))
    self.assertAllClose(got["p5"], np.percentile(margins, 5))


class GradientNormsTest(tf.test.TestCase):

  def test_parts_and_norms(self):
    model = fixed_head_model(0.0, 0.0, np.zeros(3, np.float32))
    model.compile()
    x, y, mask = batch()
    norms = diagnostics.gradient_norms(model, x, y, mask)
    self.assertEqual(set(norms), {"controller", "interface", "output",
                                  "initial_state"})
    with tf.GradientTape() as tape:
      loss = model.loss(y, model(x), sample_weight=mask)
    kernel = model.cell.output_layer.kernel
    bias = model.cell.output_layer.bias
    grads = tape.gradient(loss, [kernel, bias])
    self.assertAllClose(norms["output"], float(tf.linalg.global_norm(grads)),
                        rtol=1e-5)


class InterfaceBiasTest(tf.test.TestCase):

  def test_initial_gate_and_gamma_follow_the_biases(self):
    layer = heads.HeadInterface(1, 1, 3, 3, gate_bias=-2.0, gamma_bias=2.0)
    layer.build((None, 5))
    layer.projection.kernel.assign(np.zeros(layer.projection.kernel.shape,
                                            np.float32))
    p = layer(tf.zeros((2, 5)))
    self.assertAllClose(p.gate, np.full((2, 2), 1 / (1 + np.exp(2.0))))
    self.assertAllClose(p.gamma, np.full((2, 2), 1 + np.log1p(np.exp(2.0))))
    self.assertAllClose(p.strength, np.full((2, 2), np.log(2.0)))
    self.assertEqual(layer.get_config()["gate_bias"], -2.0)

  def test_initial_shift_favours_the_next_cell_by_the_bias(self):
    # S = 5 offsets -2 .. 2: only +1 gets the bias, for every head.
    layer = heads.HeadInterface(2, 1, 3, 5, shift_bias=1.5)
    layer.build((None, 5))
    layer.projection.kernel.assign(np.zeros(layer.projection.kernel.shape,
                                            np.float32))
    p = layer(tf.zeros((2, 5)))
    logits = np.array([0.0, 0.0, 0.0, 1.5, 0.0])
    expected = np.exp(logits) / np.exp(logits).sum()
    self.assertAllClose(p.shift, np.broadcast_to(expected, (2, 3, 5)))
    self.assertAllClose(p.gate, np.full((2, 3), 0.5))
    self.assertEqual(layer.get_config()["shift_bias"], 1.5)

  def test_tasks_train_passes_them_on(self):
    config = dict(common.DEFAULT_CONFIG, memory_size=8, word_size=4,
                  controller_units=8, gate_bias=-1.0, gamma_bias=0.5,
                  shift_bias=2.0)
    interface = common.make_model(config, CopyTask()).cell.interface
    self.assertEqual(
        (interface.gate_bias, interface.gamma_bias, interface.shift_bias),
        (-1.0, 0.5, 2.0))
    # A run saved before the shift bias existed loads with none.
    del config["shift_bias"]
    self.assertEqual(
        common.make_model(config, CopyTask()).cell.interface.shift_bias, 0.0)

  def test_a_shift_bias_without_a_forward_shift_is_refused(self):
    with self.assertRaisesRegex(ValueError, "shift_bias=1.0"):
      memtk.NTM("lstm", 3, memory_size=8, word_size=4, controller_units=6,
                shift_range=0, shift_bias=1.0)

  def test_the_model_passes_them_on_and_saves_them(self):
    model = memtk.NTM("lstm", 3, memory_size=8, word_size=4,
                      controller_units=6, gate_bias=-1.0, gamma_bias=3.0,
                      shift_bias=0.5)
    model.build((None, None, 4))
    self.assertEqual(model.cell.interface.gate_bias, -1.0)
    self.assertEqual(model.cell.interface.shift_bias, 0.5)
    config = model.get_config()
    self.assertEqual(
        (config["gate_bias"], config["gamma_bias"], config["shift_bias"]),
        (-1.0, 3.0, 0.5))
    rebuilt = memtk.NTM.from_config(config)
    rebuilt.build((None, None, 4))
    self.assertAllEqual(rebuilt.cell.interface.projection.bias.numpy(),
                        model.cell.interface.projection.bias.numpy())
    default = memtk.NTM("lstm", 3, memory_size=8, word_size=4,
                        controller_units=6)
    default.build((None, None, 4))
    self.assertAllEqual(default.cell.interface.projection.bias.numpy(),
                        np.zeros(default.cell.interface.projection.bias.shape))


if __name__ == "__main__":
  tf.test.main()
