"""The interface layout and activations of memtk.heads."""

import numpy as np
import tensorflow as tf

from memtk import heads


class HeadsTest(tf.test.TestCase):

  def test_interface_size(self):
    # 3 heads x (W + strength + gate + S + gamma) + 2 write heads x 2W.
    self.assertEqual(heads.interface_size(1, 2, 5, 3), 3 * (5 + 3 + 3) + 2 * 2 * 5)

  def test_parse_splits_and_activates(self):
    num_read, num_write, word, shifts = 2, 1, 4, 3
    size = heads.interface_size(num_read, num_write, word, shifts)
    raw = np.random.default_rng(0).normal(size=(5, size)).astype(np.float32) * 3
    p = heads.parse(tf.constant(raw), num_read, num_write, word, shifts)
    h = num_read + num_write
    self.assertEqual(p.key.shape, (5, h, word))
    self.assertEqual(p.strength.shape, (5, h))
    self.assertEqual(p.gate.shape, (5, h))
    self.assertEqual(p.shift.shape, (5, h, shifts))
    self.assertEqual(p.gamma.shape, (5, h))
    self.assertEqual(p.erase.shape, (5, num_write, word))
    self.assertEqual(p.add.shape, (5, num_write, word))
    # The first h * word raw values are the keys, through tanh.
    self.assertAllClose(p.key, np.tanh(raw[:, :h * word].reshape(5, h, word)))
    offset = h * word
    self.assertAllClose(p.strength, np.log1p(np.exp(raw[:, offset:offset + h])))
    offset += h
    self.assertAllClose(p.gate, 1 / (1 + np.exp(-raw[:, offset:offset + h])))
    offset += h
    s = raw[:, offset:offset + h * shifts].reshape(5, h, shifts)
    self.assertAllClose(p.shift, np.exp(s) / np.exp(s).sum(-1, keepdims=True))
    offset += h * shifts
    self.assertAllClose(p.gamma, 1 + np.log1p(np.exp(raw[:, offset:offset + h])))
    offset += h
    self.assertAllClose(
        p.erase, 1 / (1 + np.exp(-raw[:, offset:offset + word].reshape(5, 1, word))))
    offset += word
    self.assertAllClose(p.add, np.tanh(raw[:, offset:].reshape(5, 1, word)))
    self.assertTrue(np.all(p.gamma.numpy() >= 1))

  def test_interface_layer_clips(self):
    layer = heads.HeadInterface(1, 1, 3, 3, clip_value=2.0)
    layer.build((None, 4))
    layer.projection.kernel.assign(np.full((4, layer.projection.units), 100.0))
    p = layer(tf.ones((1, 4)))
    # Raw values are clipped to 2 before the activations.
    self.assertAllClose(p.gate, np.full((1, 2), 1 / (1 + np.exp(-2.0))))
    self.assertAllClose(p.gamma, 1 + np.log1p(np.exp(np.full((1, 2), 2.0))))


if __name__ == "__main__":
  tf.test.main()
