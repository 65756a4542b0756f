"""Sparse addressing (Sparse Access Memory): numpy references for its
equations, equality with soft addressing when K >= N, the row loop against
the straightforward dense step on the same supports, and its compiled cost."""

import itertools

from absl.testing import parameterized
import keras
import numpy as np
import tensorflow as tf

import memtk
from memtk import addressing
from memtk import cell as cell_lib
from memtk import memory as memory_lib
from memtk import sparse_unroll
from memtk.unroll import unroll
from float64_case import Float64TestCase
from sparse_unroll_test import assert_compiled_in_place
from sparse_unroll_test import assert_loops_agree

BATCH, STEPS, INPUTS, OUTPUTS = 2, 6, 5, 3


def sparse_cell(content=True, heads=(1, 1), memory_size=9, k=3,
                memory_init="learned", empty_rows_as=None):
  cell = cell_lib.NTMCell(
      "lstm", OUTPUTS, memory_size=memory_size, word_size=4,
      num_read_heads=heads[0], num_write_heads=heads[1], addressing="sparse",
      sparse_k=k, memory_init=memory_init, content_addressing=content,
      controller_units=8, empty_rows_as=empty_rows_as)
  cell.build((None, INPUTS))
  return cell


def dense_unroll(cell, inputs):
  """The straightforward loop: the sparse weighting scattered into [B, H, N]
  and the dense memory.write and memory.read, by autodiff."""

  def step(x, state):
    return cell.choice_step(x, state, "sparse")

  return unroll(step, inputs, cell.initial_ntm_state(BATCH))[0]


def compiled_gradients(cell):
  """An XLA tf.function: the gradients of the sum of the sparse row loop's
  logits over `inputs` with respect to the cell's weights."""

  @tf.function(jit_compile=True)
  def gradients(inputs):
    with tf.GradientTape() as tape:
      out = sparse_unroll.unroll(cell, inputs, None, "sparse")
      loss = tf.reduce_sum(out.logits)
    return tape.gradient(loss, cell.trainable_variables)

  return gradients


def dense(indices, weights, n):
  """numpy: [B, H, N] from a support and its weights."""
  out = np.zeros(indices.shape[:2] + (n,))
  for b, h, k in itertools.product(*map(range, indices.shape)):
    out[b, h, indices[b, h, k]] += weights[b, h, k]
  return out


class EquationsTest(Float64TestCase):

  def test_read_and_write_sparse_equal_dense_on_the_support(self):
    b, h, k, n, w = 2, 3, 2, 6, 4
    memory = self.rng.normal(size=(b, n, w))
    # Distinct rows per head; heads share rows.
    indices = np.stack([np.stack([self.rng.permutation(n)[:k]
                                  for _ in range(h)]) for _ in range(b)])
    weights = self.rng.uniform(size=(b, h, k))
    erase = self.rng.uniform(size=(b, h, w))
    add = self.rng.normal(size=(b, h, w))
    full = dense(indices, weights, n)
    want_read = np.einsum("bhn,bnw->bhw", full, memory)
    keep = np.prod(1 - full[..., None] * erase[:, :, None], axis=1)
    want_write = memory * keep + np.einsum("bhn,bhw->bnw", full, add)
    self.assertAllClose(memory_lib.read_sparse(memory, indices, weights),
                        want_read)
    written = memory_lib.write_sparse(memory, indices, weights, erase, add)
    self.assertAllClose(written, want_write)
    untouched = np.ones((b, n), bool)
    for i, j, m in itertools.product(range(b), range(h), range(k)):
      untouched[i, indices[i, j, m]] = False
    self.assertAllEqual(written.numpy()[untouched], memory[untouched])

  def test_write_sparse_gradient_equals_dense_write(self):
    b, h, k, n, w = 2, 2, 2, 5, 3
    memory = tf.constant(self.rng.normal(size=(b, n, w)))
    indices = tf.constant([[[0, 3], [3, 1]], [[4, 2], [2, 0]]])
    weights = tf.constant(self.rng.uniform(size=(b, h, k)))
    erase = tf.constant(self.rng.uniform(size=(b, h, w)))
    add = tf.constant(self.rng.normal(size=(b, h, w)))
    cotangent = tf.constant(self.rng.normal(size=(b, n, w)))
    grads = []
    for fn in (lambda m, wt, e, a: memory_lib.write_sparse(m, indices, wt, e,
                                                           a),
               lambda m, wt, e, a: memory_lib.write(
                   m, tf.reduce_sum(tf.one_hot(indices, n, dtype=wt.dtype)
                                    * wt[..., None], 2), e, a)):
      sources = [memory, weights, erase, add]
      with tf.GradientTape() as tape:
        tape.watch(sources)
        loss = tf.reduce_sum(fn(*sources) * cotangent)
      grads.append(tape.gradient(loss, sources))
    for got, want in zip(*grads):
      self.assertAllClose(got, want)

  def test_content_weights_on_a_support(self):
    b, h, k, w = 2, 2, 3, 4
    rows = self.rng.normal(size=(b, h, k, w))
    rows[0, 0, 1] = 0.0  # an all-zero row: finite, cosine 0
    keys = self.rng.normal(size=(b, h, w))
    strengths = self.rng.uniform(0.5, 4, size=(b, h))
    norm = lambda x: np.sqrt(np.sum(x * x, -1) + addressing.EPS)
    cosine = np.einsum("bhw,bhkw->bhk", keys, rows) / (
        norm(keys)[..., None] * norm(rows))
    logits = strengths[..., None] * cosine
    want = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    self.assertAllClose(addressing.sparse_content_weights(rows, keys,
                                                          strengths), want)

  def test_sparse_address_is_the_chain_restricted_to_the_support(self):
    b, h, n, k, s = 2, 2, 10, 3, 3
    content_indices = np.stack([np.stack([self.rng.permutation(n)[:k]
                                          for _ in range(h)])
                                for _ in range(b)])
    previous_indices = np.stack([np.stack([self.rng.permutation(n)[:k]
                                           for _ in range(h)])
                                 for _ in range(b)])
    content = self.rng.dirichlet(np.ones(k), size=(b, h))
    previous = self.rng.dirichlet(np.ones(k), size=(b, h))
    gates = self.rng.uniform(size=(b, h))
    shifts = self.rng.dirichlet(np.ones(s), size=(b, h))
    gammas = 1 + self.rng.uniform(size=(b, h)) * 3
    indices, weights = addressing.sparse_address(
        content_indices, content, previous_indices, previous, gates, shifts,
        gammas, n, k)
    # numpy: the dense chain, then the K largest, sharpened and renormalised.
    gated = (gates[..., None] * dense(content_indices, content, n)
             + (1 - gates[..., None]) * dense(previous_indices, previous, n))
    shifted = sum(shifts[..., j, None] * np.roll(gated, j - s // 2, axis=-1)
                  for j in range(s))
    for i, j in itertools.product(range(b), range(h)):
      top = np.argsort(-shifted[i, j])[:k]
      self.assertCountEqual(indices.numpy()[i, j], top)
      sharp = shifted[i, j, indices.numpy()[i, j]] ** gammas[i, j]
      self.assertAllClose(weights[i, j], sharp / sharp.sum())
    # Given the support, the same weights.
    _, again = addressing.sparse_address(
        content_indices, content, previous_indices, previous, gates, shifts,
        gammas, n, k, indices=indices)
    self.assertAllClose(again, weights)

  def test_top_cells_equal_top_k_in_two_levels(self):
    for n in (100, 40000, 2**15 + 7):
      scores = self.rng.normal(size=(2, 3, n))
      got = np.sort(addressing.top_cells(tf.constant(scores), 8), -1)
      want = np.sort(np.argsort(-scores, -1)[..., :8], -1)
      self.assertAllEqual(got, want)


  def test_top_indices_break_ties_to_the_lowest_position(self):
    # Scores from a few values: many ties at the k-th largest.
    scores = self.rng.integers(0, 4, size=(3, 2, 50)).astype(np.float32)
    # numpy's stable sort on -score keeps equal scores in position order.
    want = np.sort(np.argsort(-scores, -1, kind="stable")[..., :7], -1)
    compiled = tf.function(lambda s: addressing.top_indices(s, 7),
                           jit_compile=True)
    self.assertAllEqual(addressing.top_indices(tf.constant(scores), 7), want)
    self.assertAllEqual(compiled(tf.constant(scores)), want)

  def test_top_cells_ties_in_two_levels_as_in_one(self):
    # Every block but a few holds tied maxima: the block level must keep
    # the lowest blocks, the cell level the lowest cells.
    n = 4 * 2 * 1024 + 300
    scores = np.zeros((2, 1, n), np.float32)
    scores[0, 0, 5000] = 1.0  # one score above the ties: cells 0, 5000
    scores[1, 0, :2] = -1.0  # below the ties: cells 2, 3
    want = np.sort(np.argsort(-scores, -1, kind="stable")[..., :2], -1)
    compiled = tf.function(lambda s: addressing.top_cells(s, 2),
                           jit_compile=True)
    for got in (addressing.top_cells(tf.constant(scores), 2),
                compiled(tf.constant(scores))):
      self.assertAllEqual(np.sort(got, -1), want)

class SoftEqualityTest(Float64TestCase):

  @parameterized.named_parameters(
      ("content", True, (1, 1), 5, 5), ("content_heads", True, (2, 2), 4, 6),
      ("shift", False, (1, 1), 5, 5), ("shift_heads", False, (2, 1), 4, 9),
      ("empty_rows_as_zero", True, (2, 1), 6, 6, 0.0),
      ("empty_rows_as_sink", True, (2, 1), 6, 6, 3.0))
  def test_sparse_with_k_at_least_n_is_soft(self, content, heads, n, k,
                                            empty_rows_as=None):
    models = []
    for mode in ("soft", "sparse"):
      keras.utils.set_random_seed(3)
      model = memtk.NTM("lstm", OUTPUTS, memory_size=n, word_size=4,
                        num_read_heads=heads[0], num_write_heads=heads[1],
                        addressing=mode, sparse_k=k, controller_units=8,
                        content_addressing=content,
                        empty_rows_as=empty_rows_as)
      model.build((None, None, INPUTS))
      models.append(model)
    soft, sparse = models
    sparse.set_weights(soft.get_weights())
    inputs = tf.constant(self.rng.normal(size=(BATCH, STEPS, INPUTS)))
    cotangent = tf.constant(self.rng.normal(size=(BATCH, STEPS, OUTPUTS)))
    results = []
    for model in models:
      with tf.GradientTape() as tape:
        logits = model(inputs)
        loss = tf.reduce_sum(logits * cotangent)
      results.append((logits, tape.gradient(loss, model.trainable_variables)))
    self.assertAllClose(results[0][0], results[1][0], atol=1e-12)
    for variable, got, want in zip(soft.trainable_variables, results[1][1],
                                   results[0][1]):
      self.assertAllClose(got, want, atol=1e-10, rtol=1e-8, msg=variable.path)
    self.assertAllClose(soft.trace(inputs)["read_weights"],
                        sparse.trace(inputs)["read_weights"], atol=1e-12)


class RowLoopTest(Float64TestCase):

  @parameterized.named_parameters(
      ("content", True, (1, 1), 9, 3),
      ("content_k1", True, (1, 1), 9, 1),
      # Several heads on few cells: heads share rows, read what is written.
      ("content_shared_rows", True, (2, 2), 5, 3),
      ("shift", False, (1, 1), 9, 3),
      ("shift_shared_rows", False, (2, 3), 5, 2),
      # Without content: the log of touched rows over a constant memory, and
      # the dense buffer for a random one.
      ("shift_constant_memory", False, (2, 2), 6, 3, "constant"),
      ("content_random_memory", True, (1, 1), 9, 3, "random"),
      # Content ranked and weighted by the rows' fill: empty rows untouched.
      ("content_empty_rows_as_zero", True, (2, 1), 9, 3, "constant", 0.0),
      ("content_empty_rows_as_sink", True, (2, 1), 9, 3, "constant", 3.0))
  def test_values_and_gradients_equal_dense_step(
      self, content, heads, memory_size, k, memory_init="learned",
      empty_rows_as=None):
    cell = sparse_cell(content, heads, memory_size, k, memory_init,
                       empty_rows_as)
    if memory_init == "random":  # one draw of M_0 for both loops
      memory = cell.initial_ntm_state(BATCH).memory
      cell.initial_ntm_state = lambda batch, f=cell.initial_ntm_state: f(
          batch)._replace(memory=memory)
    inputs = tf.constant(self.rng.normal(size=(BATCH, STEPS, INPUTS)))
    cotangents = [tf.constant(self.rng.normal(size=s)) for s in
                  [(BATCH, STEPS, OUTPUTS), (BATCH, STEPS, sum(heads))]]
    # Where the log of touched rows may stand for the memory, both stores.
    for store in (("log", "dense") if sparse_unroll.log_store_allowed(
        cell, STEPS) else (None,)):
      assert_loops_agree(
          self, cell, [lambda x, s=store: sparse_unroll.unroll(
              cell, x, None, "sparse", store=s),
                       lambda x: dense_unroll(cell, x)], inputs,
          lambda out: (tf.reduce_sum(out.logits * cotangents[0])
                       + tf.reduce_sum(out.entropy * cotangents[1])),
          memory_init)

  def test_rows_outside_the_support_never_change(self):
    cell = sparse_cell(True, (1, 2), memory_size=12, k=3,
                       memory_init="random")
    state = cell.initial_ntm_state(BATCH)
    for t in range(STEPS):
      x = tf.constant(self.rng.normal(size=(BATCH, INPUTS)))
      _, new = cell.choice_step(x, state, "sparse")
      support = new.weights.numpy()[:, 1:] > 0  # the write heads' cells
      self.assertLessEqual(support.sum(-1).max(), 3)
      outside = ~support.any(1)
      self.assertAllEqual(new.memory.numpy()[outside],
                          state.memory.numpy()[outside], msg=f"step {t}")
      self.assertGreater(np.abs(new.memory - state.memory).max(), 0)
      state = new

  def test_model_trains_through_the_row_loop(self):
    model = memtk.NTM("lstm", OUTPUTS, memory_size=16, word_size=4,
                      controller_units=8, addressing="sparse", sparse_k=4)
    model.build((None, None, INPUTS))
    calls = []
    original = sparse_unroll.unroll

    def spy(*args):
      calls.append(args[-1])
      return original(*args)

    inputs = tf.constant(self.rng.normal(size=(BATCH, STEPS, INPUTS)))
    sparse_unroll.unroll = spy
    try:
      logits = model(inputs)
      traced = model.trace(inputs)  # the dense loop
    finally:
      sparse_unroll.unroll = original
    self.assertEqual(calls, ["sparse"])
    self.assertAllClose(logits, traced["logits"], atol=1e-12)
    self.assertAllEqual(np.sum(traced["write_weights"].numpy() > 0, -1)
                        <= 4, np.ones((BATCH, STEPS, 1), bool))


class ConfigTest(tf.test.TestCase):

  def test_bad_sparse_k(self):
    for value in (0, -1, 2.5, True, "8", None):
      with self.assertRaisesRegex(ValueError, "sparse_k"):
        memtk.NTM("lstm", OUTPUTS, addressing="sparse", sparse_k=value)

  def test_sparse_k_is_saved(self):
    model = memtk.NTM("lstm", OUTPUTS, memory_size=16, addressing="sparse",
                      sparse_k=5)
    again = memtk.NTM.from_config(model.get_config())
    self.assertEqual(again.cell.sparse_k, 5)
    self.assertEqual(again.cell.addressing, "sparse")


class CompiledTest(tf.test.TestCase, parameterized.TestCase):

  def test_compiled_model_reads_the_eager_cells_on_tied_scores(self):
    # A fresh constant memory scores every cell alike; the compiled and the
    # eager model must pick the same cells among the ties.
    keras.utils.set_random_seed(0)
    model = memtk.NTM("lstm", 5, memory_size=64, word_size=8,
                      num_read_heads=2, addressing="sparse", sparse_k=4,
                      controller_units=16)
    inputs = tf.constant(np.random.default_rng(0).random((2, 9, 6)),
                         tf.float32)
    compiled = tf.function(model, jit_compile=True)
    self.assertAllClose(compiled(inputs), model(inputs), atol=1e-5)

  @parameterized.parameters(False, True)
  def test_xla_train_step_keeps_no_memory_per_step(self, content):
    # The whole forward and backward pass: no copy of a [B, N, W] tensor
    # (the memory or its gradient), no stack of every step's memory, and
    # without content no such tensor at all.
    keras.utils.set_random_seed(0)
    cell = sparse_cell(content, memory_size=4099, k=3, memory_init="constant")
    inputs = tf.ones((BATCH, STEPS, INPUTS))
    assert_compiled_in_place(self, compiled_gradients(cell), (inputs,),
                             content)
