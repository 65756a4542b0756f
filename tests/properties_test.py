"""Property tests: addressing and memory stay finite and normalised on
hostile inputs (extreme strengths and exponents, zero and huge memories)."""

from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
import hypothesis.extra.numpy as hnp
import numpy as np
import tensorflow as tf

from memtk import addressing
from memtk import memory as memory_lib

B, H, N, W = 2, 2, 6, 3
_floats = st.floats(-1e4, 1e4, allow_nan=False, width=32)


def _array(shape, elements=_floats):
  return hnp.arrays(np.float32, shape, elements=elements)


def _distribution(shape):
  return _array(shape, st.floats(0, 1, width=32)).map(
      lambda x: (x + 1e-3) / (x + 1e-3).sum(-1, keepdims=True))


def _assert_distribution(test, weights):
  weights = weights.numpy()
  test.assertTrue(np.all(np.isfinite(weights)))
  test.assertTrue(np.all(weights >= 0))
  np.testing.assert_allclose(weights.sum(-1), 1.0, atol=1e-4)


class PropertiesTest(tf.test.TestCase):

  @settings(max_examples=60, deadline=None)
  @given(memory=_array((B, N, W)), keys=_array((B, H, W)),
         strengths=_array((B, H), st.floats(0, 1e6, width=32)),
         zero_memory=st.booleans())
  def test_content_weights_are_distributions(self, memory, keys, strengths,
                                             zero_memory):
    if zero_memory:
      memory = np.zeros_like(memory)
    _assert_distribution(self, addressing.content_weights(memory, keys,
                                                          strengths))

  @settings(max_examples=60, deadline=None)
  @given(memory=_array((B, N, W)), previous=_distribution((B, H, N)),
         keys=_array((B, H, W)),
         strengths=_array((B, H), st.floats(0, 1e6, width=32)),
         gates=_array((B, H), st.floats(0, 1, width=32)),
         shifts=_distribution((B, H, 3)),
         gammas=_array((B, H), st.floats(1, 1e3, width=32)))
  def test_address_chain_is_a_distribution(self, memory, previous, keys,
                                           strengths, gates, shifts, gammas):
    _assert_distribution(self, addressing.address(
        memory, previous, keys, strengths, gates, shifts, gammas))

  @settings(max_examples=40, deadline=None)
  @given(weights=_distribution((B, H, N)),
         gammas=_array((B, H), st.floats(1, 1e4, width=32)))
  def test_sharpen_extreme_gammas(self, weights, gammas):
    _assert_distribution(self, addressing.sharpen(weights, gammas))

  @settings(max_examples=40, deadline=None)
  @given(memory=_array((B, N, W)),
         indices=_array((B, H), st.integers(0, N - 1)).map(
             lambda x: x.astype(np.int32)),
         erase=_array((B, H, W), st.floats(0, 1, width=32)),
         add=_array((B, H, W)))
  def test_hard_writes_touch_only_chosen_rows(self, memory, indices, erase,
                                              add):
    out = memory_lib.write_rows(memory, indices, erase, add).numpy()
    for b in range(B):
      untouched = np.setdiff1d(np.arange(N), indices[b])
      np.testing.assert_array_equal(out[b, untouched], memory[b, untouched])
    self.assertTrue(np.all(np.isfinite(out)))


if __name__ == "__main__":
  tf.test.main()
