"""Numpy references, invariants and gradients for memtk.addressing."""

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from memtk import addressing


def np_content(memory, keys, strengths, eps=1e-6):
  b, h, n = keys.shape[0], keys.shape[1], memory.shape[1]
  out = np.zeros((b, h, n))
  for bi in range(b):
    for hi in range(h):
      k = keys[bi, hi]
      scores = np.array([
          strengths[bi, hi] * k.dot(memory[bi, i])
          / (np.sqrt(k.dot(k) + eps) * np.sqrt(memory[bi, i].dot(memory[bi, i]) + eps))
          for i in range(n)])
      e = np.exp(scores - scores.max())
      out[bi, hi] = e / e.sum()
  return out


def np_content_presence(memory, keys, strengths, empty_rows_as=0.0,
                        eps=1e-6, c=1e-2):
  """f(i) exp(beta cos_i) / (sum_j f(j) exp(beta cos_j) + S),
  f(i) = |M(i)|^2 / (|M(i)|^2 + c): the sink's S rows of cosine 0 take
  their share and give it to no row."""
  squared = (memory ** 2).sum(-1)  # [B, N]
  fill = squared / (squared + c)
  cosine = np.einsum("bhw,bnw->bhn", keys, memory) / (
      np.sqrt((keys ** 2).sum(-1) + eps)[:, :, None]
      * np.sqrt(squared + eps)[:, None, :])
  terms = fill[:, None, :] * np.exp(strengths[:, :, None] * cosine)
  return terms / (terms.sum(-1, keepdims=True) + empty_rows_as)


def np_shift(weights, shifts):
  b, h, n = weights.shape
  s = shifts.shape[-1]
  out = np.zeros_like(weights)
  for bi in range(b):
    for hi in range(h):
      for i in range(n):
        out[bi, hi, i] = sum(shifts[bi, hi, k] * weights[bi, hi, (i - (k - s // 2)) % n]
                             for k in range(s))
  return out


def np_sharpen(weights, gammas):
  powered = weights ** gammas[:, :, None]
  return powered / powered.sum(-1, keepdims=True)


def softmax(x):
  e = np.exp(x - x.max(-1, keepdims=True))
  return e / e.sum(-1, keepdims=True)


class AddressingTest(tf.test.TestCase, parameterized.TestCase):

  def setUp(self):
    super().setUp()
    self.rng = np.random.default_rng(0)

  def test_content_matches_numpy(self):
    memory = self.rng.normal(size=(2, 7, 5))
    keys = self.rng.normal(size=(2, 3, 5))
    strengths = self.rng.uniform(0, 10, size=(2, 3))
    got = addressing.content_weights(memory, keys, strengths)
    self.assertAllClose(got, np_content(memory, keys, strengths), atol=1e-6)
    self.assertAllClose(tf.reduce_sum(got, -1), np.ones((2, 3)))

  def test_content_prefers_matching_row(self):
    memory = np.eye(4)[None]  # rows are one-hot
    keys = np.array([[[0.0, 0.0, 3.0, 0.0]]])
    got = addressing.content_weights(memory, keys, np.array([[50.0]])).numpy()
    self.assertEqual(np.argmax(got[0, 0]), 2)
    self.assertGreater(got[0, 0, 2], 0.99)

  @parameterized.named_parameters(("zero_memory", True, False),
                                  ("zero_keys", False, True),
                                  ("both_zero", True, True))
  def test_content_zero_inputs_uniform_and_finite_gradients(self, zero_memory,
                                                            zero_keys):
    memory = tf.constant(np.zeros((2, 6, 4)) if zero_memory
                         else self.rng.normal(size=(2, 6, 4)), tf.float32)
    keys = tf.constant(np.zeros((2, 3, 4)) if zero_keys
                       else self.rng.normal(size=(2, 3, 4)), tf.float32)
    strengths = tf.constant(self.rng.uniform(0, 5, size=(2, 3)), tf.float32)
    with tf.GradientTape() as tape:
      tape.watch([memory, keys, strengths])
      weights = addressing.content_weights(memory, keys, strengths)
      loss = tf.reduce_sum(weights * tf.range(6, dtype=tf.float32))
    grads = tape.gradient(loss, [memory, keys, strengths])
    self.assertAllClose(weights, np.full((2, 3, 6), 1 / 6), atol=1e-6)
    for g in grads:
      self.assertTrue(np.all(np.isfinite(g.numpy())))

  @parameterized.parameters(0.0, 2.5)
  def test_empty_rows_as_content_matches_numpy(self, empty_rows_as):
    memory = self.rng.normal(size=(2, 7, 5))
    memory[:, 1] = 1e-6  # never written, constant memory
    memory[0, 4] = 0.0  # all zero
    memory[1, 2] = 0.03  # a faint row: f = 0.31
    keys = self.rng.normal(size=(2, 3, 5))
    strengths = self.rng.uniform(0, 10, size=(2, 3))
    got = addressing.content_weights(memory, keys, strengths, empty_rows_as)
    self.assertAllClose(got, np_content_presence(memory, keys, strengths,
                                                   empty_rows_as), atol=1e-6)
    if not empty_rows_as:
      self.assertLess(got.numpy()[:, :, 1].max(), 1e-7)
    # The option is not ignored: plain content weights give row 1 its share.
    plain = addressing.content_weights(memory, keys, strengths)
    self.assertGreater(plain.numpy()[:, :, 1].max(), 1e-3)

  @parameterized.parameters(0.0, 4.0)
  def test_empty_rows_as_content_does_not_depend_on_unused_rows(
      self, empty_rows_as):
    """Written rows keep their weights, and the empty ones their total,
    when 1,000 more never-written rows join them (a model run with a larger
    memory)."""
    written = self.rng.uniform(0, 1, size=(2, 6, 20)).astype(np.float32)
    empty = np.full((2, 1000, 20), 1e-6, np.float32)
    keys = self.rng.normal(size=(2, 3, 20)).astype(np.float32)
    strengths = np.float32(self.rng.uniform(0, 3, size=(2, 3)))
    small = addressing.content_weights(
        np.concatenate([written, empty[:, :10]], 1), keys, strengths,
        empty_rows_as)
    large = addressing.content_weights(np.concatenate([written, empty], 1),
                                       keys, strengths, empty_rows_as)
    self.assertAllClose(large[:, :, :6], small[:, :, :6], atol=1e-5)
    self.assertAllClose(tf.reduce_sum(large[:, :, 6:], -1),
                        tf.reduce_sum(small[:, :, 6:], -1), atol=1e-5)
    # The sink takes a share and gives it to no row.
    total = tf.reduce_sum(large, -1).numpy()
    if empty_rows_as:
      self.assertLess(total.max(), 0.999)
    else:
      self.assertAllClose(total, np.ones_like(total), atol=1e-6)
    plain = addressing.content_weights(np.concatenate([written, empty], 1),
                                       keys, strengths)
    self.assertGreater(plain.numpy()[:, :, 6:].sum(-1).min(), 0.5)

  @parameterized.parameters(0.0, 128.0)
  def test_empty_rows_as_on_an_empty_memory_is_finite(self, empty_rows_as):
    """An empty memory: with S = 0 every row alike (uniform), with S > 0
    the sink takes (nearly) everything; finite gradients either way."""
    for value in (0.0, 1e-6):
      memory = tf.fill((2, 6, 4), value)
      keys = tf.constant(self.rng.normal(size=(2, 3, 4)), tf.float32)
      strengths = tf.constant(self.rng.uniform(0, 5, size=(2, 3)), tf.float32)
      with tf.GradientTape() as tape:
        tape.watch([memory, keys, strengths])
        weights = addressing.content_weights(memory, keys, strengths,
                                             empty_rows_as)
        loss = tf.reduce_sum(weights * tf.range(6, dtype=tf.float32))
      want = 0.0 if empty_rows_as else 1 / 6
      self.assertAllClose(weights, np.full((2, 3, 6), want), atol=1e-5)
      for g in tape.gradient(loss, [memory, keys, strengths]):
        self.assertTrue(np.all(np.isfinite(g.numpy())))

  def test_empty_rows_as_sparse_content_matches_dense(self):
    memory = self.rng.normal(size=(2, 6, 4))
    memory[:, 2] = 1e-6
    keys = self.rng.normal(size=(2, 3, 4))
    strengths = self.rng.uniform(0, 5, size=(2, 3))
    rows = np.broadcast_to(memory[:, None], (2, 3, 6, 4))
    for empty_rows_as in (0.0, 2.0):
      self.assertAllClose(
          addressing.sparse_content_weights(rows, keys, strengths,
                                            empty_rows_as),
          np_content_presence(memory, keys, strengths, empty_rows_as),
          atol=1e-6)

  def test_interpolate_matches_numpy(self):
    content = softmax(self.rng.normal(size=(2, 3, 5)))
    previous = softmax(self.rng.normal(size=(2, 3, 5)))
    gates = self.rng.uniform(size=(2, 3))
    got = addressing.interpolate(content, previous, gates)
    want = gates[:, :, None] * content + (1 - gates[:, :, None]) * previous
    self.assertAllClose(got, want)

  @parameterized.parameters(1, 3, 5)
  def test_shift_matches_numpy(self, num_shifts):
    weights = softmax(self.rng.normal(size=(2, 3, 7)))
    shifts = softmax(self.rng.normal(size=(2, 3, num_shifts)))
    got = addressing.shift(weights, shifts)
    self.assertAllClose(got, np_shift(weights, shifts))
    self.assertAllClose(tf.reduce_sum(got, -1), np.ones((2, 3)))

  def test_shift_plus_one_moves_focus_to_next_cell_circularly(self):
    weights = np.eye(5)[[4]][None]  # focus on the last cell
    plus_one = np.array([[[0.0, 0.0, 1.0]]])
    minus_one = np.array([[[1.0, 0.0, 0.0]]])
    self.assertAllClose(addressing.shift(weights, plus_one), np.eye(5)[[0]][None])
    self.assertAllClose(addressing.shift(weights, minus_one), np.eye(5)[[3]][None])

  def test_shift_rejects_even_width(self):
    with self.assertRaisesRegex(ValueError, "odd"):
      addressing.shift(tf.ones((1, 1, 4)) / 4, tf.ones((1, 1, 2)) / 2)

  def test_sharpen_matches_numpy(self):
    weights = softmax(self.rng.normal(size=(2, 3, 6)))
    gammas = 1 + self.rng.uniform(0, 20, size=(2, 3))
    self.assertAllClose(addressing.sharpen(weights, gammas),
                        np_sharpen(weights, gammas), atol=1e-6)

  def test_sharpen_gamma_one_is_identity(self):
    weights = softmax(self.rng.normal(size=(2, 3, 6)))
    self.assertAllClose(addressing.sharpen(weights, np.ones((2, 3))), weights)

  def test_sharpen_zero_weights_finite(self):
    weights = tf.constant([[[0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 0.0]]])
    gammas = tf.constant([[3.0, 2.0]])
    with tf.GradientTape() as tape:
      tape.watch([weights, gammas])
      out = addressing.sharpen(weights, gammas)
      loss = tf.reduce_sum(out * tf.range(4, dtype=tf.float32))
    grads = tape.gradient(loss, [weights, gammas])
    self.assertAllClose(out[0, 0], [0, 0, 1, 0])
    self.assertAllClose(out[0, 1], [0.25] * 4)
    for g in grads:
      self.assertTrue(np.all(np.isfinite(g.numpy())))

  def test_address_chain_matches_numpy(self):
    memory = self.rng.normal(size=(2, 8, 4))
    previous = softmax(self.rng.normal(size=(2, 3, 8)))
    keys = self.rng.normal(size=(2, 3, 4))
    strengths = self.rng.uniform(0, 5, size=(2, 3))
    gates = self.rng.uniform(size=(2, 3))
    shifts = softmax(self.rng.normal(size=(2, 3, 3)))
    gammas = 1 + self.rng.uniform(0, 3, size=(2, 3))
    want = np_content(memory, keys, strengths)
    want = gates[:, :, None] * want + (1 - gates[:, :, None]) * previous
    want = np_sharpen(np_shift(want, shifts), gammas)
    got = addressing.address(memory, previous, keys, strengths, gates, shifts,
                             gammas)
    self.assertAllClose(got, want, atol=1e-6)

  def test_address_chain_gradient_float64(self):
    memory = tf.constant(self.rng.normal(size=(1, 5, 3)))
    previous = tf.constant(softmax(self.rng.normal(size=(1, 2, 5))))
    keys = tf.constant(self.rng.normal(size=(1, 2, 3)))
    strengths = tf.constant(self.rng.uniform(0.5, 3, size=(1, 2)))
    gates = tf.constant(self.rng.uniform(0.2, 0.8, size=(1, 2)))
    shifts = tf.constant(softmax(self.rng.normal(size=(1, 2, 3))))
    gammas = tf.constant(1 + self.rng.uniform(0.5, 2, size=(1, 2)))
    theoretical, numerical = tf.test.compute_gradient(
        addressing.address,
        [memory, previous, keys, strengths, gates, shifts, gammas])
    for t, n in zip(theoretical, numerical):
      self.assertAllClose(t, n, atol=1e-5, rtol=1e-4)


if __name__ == "__main__":
  tf.test.main()
