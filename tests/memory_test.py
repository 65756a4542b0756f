"""Numpy references and hard/soft equivalence for memtk.memory."""

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from memtk import memory as memory_lib


def np_write(memory, weights, erase, add):
  out = memory.copy()
  b, h, n = weights.shape
  for bi in range(b):
    for i in range(n):
      keep = np.ones(memory.shape[-1])
      for hi in range(h):
        keep *= 1 - weights[bi, hi, i] * erase[bi, hi]
      out[bi, i] = memory[bi, i] * keep + sum(weights[bi, hi, i] * add[bi, hi]
                                              for hi in range(h))
  return out


class MemoryTest(tf.test.TestCase, parameterized.TestCase):

  def setUp(self):
    super().setUp()
    self.rng = np.random.default_rng(1)

  def test_read_matches_numpy(self):
    memory = self.rng.normal(size=(2, 6, 4))
    weights = self.rng.dirichlet(np.ones(6), size=(2, 3))
    want = np.einsum("bhn,bnw->bhw", weights, memory)
    want_loop = np.array([[sum(weights[b, h, i] * memory[b, i] for i in range(6))
                           for h in range(3)] for b in range(2)])
    self.assertAllClose(want, want_loop)
    self.assertAllClose(memory_lib.read(memory, weights), want_loop)

  @parameterized.parameters(1, 2, 3)
  def test_write_matches_numpy(self, num_heads):
    memory = self.rng.normal(size=(2, 6, 4))
    weights = self.rng.dirichlet(np.ones(6), size=(2, num_heads))
    erase = self.rng.uniform(size=(2, num_heads, 4))
    add = self.rng.normal(size=(2, num_heads, 4))
    self.assertAllClose(memory_lib.write(memory, weights, erase, add),
                        np_write(memory, weights, erase, add))

  def test_full_erase_then_add_replaces_row(self):
    memory = self.rng.normal(size=(1, 4, 3))
    weights = np.eye(4)[[2]][None]
    add = np.array([[[1.0, 2.0, 3.0]]])
    got = memory_lib.write(memory, weights, np.ones((1, 1, 3)), add).numpy()
    self.assertAllClose(got[0, 2], [1.0, 2.0, 3.0])
    self.assertAllClose(np.delete(got[0], 2, axis=0), np.delete(memory[0], 2, axis=0))

  def test_read_rows_equals_soft_read_with_one_hot(self):
    memory = self.rng.normal(size=(3, 7, 4))
    indices = self.rng.integers(0, 7, size=(3, 2)).astype(np.int32)
    one_hot = tf.one_hot(indices, 7, dtype=tf.float64)
    self.assertAllClose(memory_lib.read_rows(memory, indices),
                        memory_lib.read(memory, one_hot))

  @parameterized.named_parameters(
      ("distinct", [[0, 3], [6, 2]]),
      ("colliding", [[4, 4], [1, 1]]),
      ("mixed", [[5, 5], [0, 2]]))
  def test_write_rows_equals_soft_write_with_one_hot(self, indices):
    indices = np.array(indices, np.int32)
    memory = self.rng.normal(size=(2, 7, 4))
    erase = self.rng.uniform(size=(2, 2, 4))
    add = self.rng.normal(size=(2, 2, 4))
    soft = memory_lib.write(memory, tf.one_hot(indices, 7, dtype=tf.float64),
                            erase, add)
    hard = memory_lib.write_rows(memory, indices, erase, add)
    self.assertAllClose(hard, soft)

  @parameterized.named_parameters(
      ("distinct", [[0, 3, 5], [6, 2, 1]]),
      ("colliding", [[4, 4, 4], [1, 1, 3]]))
  def test_write_rows_gradient_equals_soft_write_with_one_hot(self, indices):
    # Heads sharing a row write one value: its gradient counts once.
    indices = np.array(indices, np.int32)
    inputs = [tf.constant(self.rng.normal(size=(2, 7, 4))),
              tf.constant(self.rng.uniform(size=(2, 3, 4))),
              tf.constant(self.rng.normal(size=(2, 3, 4)))]
    cotangent = tf.constant(self.rng.normal(size=(2, 7, 4)))
    grads = []
    for write in (
        lambda m, e, a: memory_lib.write_rows(m, indices, e, a),
        lambda m, e, a: memory_lib.write(
            m, tf.one_hot(indices, 7, dtype=tf.float64), e, a)):
      with tf.GradientTape() as tape:
        tape.watch(inputs)
        loss = tf.reduce_sum(write(*inputs) * cotangent)
      grads.append(tape.gradient(loss, inputs))
    for hard, soft in zip(*grads):
      self.assertAllClose(hard, soft)

  def test_write_rows_leaves_other_rows_untouched(self):
    memory = self.rng.normal(size=(2, 9, 3)).astype(np.float32)
    indices = np.array([[2, 7], [0, 0]], np.int32)
    out = memory_lib.write_rows(memory, indices, np.ones((2, 2, 3), np.float32),
                                np.ones((2, 2, 3), np.float32)).numpy()
    for b in range(2):
      untouched = np.setdiff1d(np.arange(9), indices[b])
      self.assertAllEqual(out[b, untouched], memory[b, untouched])


if __name__ == "__main__":
  tf.test.main()
