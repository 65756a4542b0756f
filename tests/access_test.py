"""The fused soft access equals the composition of addressing and memory ops,
in value and in gradient."""

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from memtk import access
from memtk import addressing
from memtk import memory as memory_lib


def composed(memory, previous, keys, strengths, gates, shifts, gammas, erase,
             add, num_read_heads, empty_rows_as=None):
  weights = addressing.address(memory, previous, keys, strengths, gates, shifts,
                               gammas, empty_rows_as)
  new_memory = memory_lib.write(memory, weights[:, num_read_heads:], erase, add)
  return weights, new_memory, memory_lib.read(new_memory,
                                               weights[:, :num_read_heads])


def random_inputs(rng, num_read, num_write, n=7, w=4, s=3, b=2, zero=False):
  h = num_read + num_write
  softmax = lambda x: np.exp(x) / np.exp(x).sum(-1, keepdims=True)
  return [
      np.zeros((b, n, w)) if zero else rng.normal(size=(b, n, w)),
      softmax(rng.normal(size=(b, h, n)) * 2),
      np.zeros((b, h, w)) if zero else rng.normal(size=(b, h, w)),
      rng.uniform(0.1, 5, size=(b, h)),
      rng.uniform(0.05, 0.95, size=(b, h)),
      softmax(rng.normal(size=(b, h, s))),
      1 + rng.uniform(0.1, 3, size=(b, h)),
      rng.uniform(0.05, 0.95, size=(b, num_write, w)),
      rng.normal(size=(b, num_write, w)),
  ]


class AccessTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.parameters((1, 1, 3, False), (2, 1, 3, False),
                            (1, 3, 5, False), (2, 2, 1, False),
                            (1, 1, 3, True))
  def test_values_and_gradients_match_composition(self, num_read, num_write,
                                                  num_shifts, zero):
    rng = np.random.default_rng(num_read * 10 + num_write + num_shifts)
    inputs = [tf.constant(x) for x in random_inputs(rng, num_read, num_write,
                                                    s=num_shifts, zero=zero)]
    # Random cotangents for the three outputs.
    cotangents = None
    grads = []
    for fn in (access.soft_access, composed):
      with tf.GradientTape() as tape:
        tape.watch(inputs)
        outputs = fn(*inputs, num_read_heads=num_read)
        if cotangents is None:
          cotangents = [tf.constant(rng.normal(size=o.shape)) for o in outputs]
          values = outputs
        else:
          for got, want in zip(values, outputs):
            self.assertAllClose(got, want, atol=1e-10)
        loss = sum(tf.reduce_sum(o * c) for o, c in zip(outputs, cotangents))
      grads.append(tape.gradient(loss, inputs))
    for fused, reference in zip(*grads):
      self.assertTrue(np.all(np.isfinite(fused.numpy())))
      self.assertAllClose(fused, reference, atol=1e-8, rtol=1e-6)

  @parameterized.parameters(False, True)
  def test_fused_address_matches_composition(self, zero):
    rng = np.random.default_rng(11)
    inputs = [tf.constant(x)
              for x in random_inputs(rng, 2, 1, zero=zero)[:7]]
    cotangent = tf.constant(rng.normal(size=(2, 3, 7)))
    results = []
    for fn in (access.address, addressing.address):
      with tf.GradientTape() as tape:
        tape.watch(inputs)
        weights = fn(*inputs)
        loss = tf.reduce_sum(weights * cotangent)
      results.append((weights, tape.gradient(loss, inputs)))
    self.assertAllClose(results[0][0], results[1][0], atol=1e-12)
    for fused, reference in zip(results[0][1], results[1][1]):
      self.assertTrue(np.all(np.isfinite(fused.numpy())))
      self.assertAllClose(fused, reference, atol=1e-8, rtol=1e-6)

  @parameterized.parameters(("constant", 0.0), ("zero", 0.0),
                            ("constant", 1.5), ("zero", 1.5))
  def test_empty_rows_as_matches_composition(self, empty, empty_rows_as):
    """Fused access and address with empty_rows_as, on a memory whose rows
    0, 3 and 5 are empty (constant 1e-6 or all zero), equal the composition
    with autodiff in value and float64 gradient."""
    rng = np.random.default_rng(12)
    inputs = random_inputs(rng, 2, 1)
    inputs[0][:, [0, 3, 5]] = 1e-6 if empty == "constant" else 0.0
    inputs = [tf.constant(x) for x in inputs]
    cotangents = None
    results = []
    for fn in (access.soft_access, composed):
      with tf.GradientTape() as tape:
        tape.watch(inputs)
        outputs = fn(*inputs, num_read_heads=2, empty_rows_as=empty_rows_as)
        if cotangents is None:
          cotangents = [tf.constant(rng.normal(size=o.shape)) for o in outputs]
        loss = sum(tf.reduce_sum(o * c) for o, c in zip(outputs, cotangents))
      results.append((outputs, tape.gradient(loss, inputs)))
    for got, want in zip(results[0][0], results[1][0]):
      self.assertAllClose(got, want, atol=1e-10)
    for fused, reference in zip(results[0][1], results[1][1]):
      self.assertTrue(np.all(np.isfinite(fused.numpy())))
      self.assertAllClose(fused, reference, atol=1e-8, rtol=1e-6)
    # The option is not ignored: without it the empty rows take another
    # share.
    plain = access.soft_access(*inputs, num_read_heads=2)[0]
    self.assertGreater(np.abs(plain - results[0][0][0]).max(), 1e-3)
    with tf.GradientTape() as tape:
      tape.watch(inputs)
      weights = access.address(*inputs[:7], empty_rows_as=empty_rows_as)
      loss = tf.reduce_sum(weights * cotangents[0])
    fused = tape.gradient(loss, inputs[:7])
    self.assertAllClose(weights, results[1][0][0], atol=1e-10)
    with tf.GradientTape() as tape:
      tape.watch(inputs)
      loss = tf.reduce_sum(addressing.address(
          *inputs[:7], empty_rows_as=empty_rows_as) * cotangents[0])
    for got, want in zip(fused, tape.gradient(loss, inputs[:7])):
      self.assertAllClose(got, want, atol=1e-8, rtol=1e-6)

  def test_gradient_matches_finite_differences(self):
    rng = np.random.default_rng(5)
    inputs = [tf.constant(x) for x in random_inputs(rng, 1, 2, n=5, w=3)]
    # All three outputs as one vector, traced once: the finite differences
    # call it twice per input element.
    @tf.function
    def fn(*xs):
      outputs = access.soft_access(*xs, num_read_heads=1)
      self.assertLen(outputs, 3)
      return tf.concat([tf.reshape(o, [-1]) for o in outputs], 0)

    theoretical, numerical = tf.test.compute_gradient(fn, inputs)
    for t, n in zip(theoretical, numerical):
      self.assertAllClose(t, n, atol=1e-5, rtol=1e-4)


if __name__ == "__main__":
  tf.test.main()
