"""The O(W) hard loop equals the straightforward dense one, value and gradient,
and XLA runs it without copying the memory."""

import re
from unittest import mock

from absl.testing import parameterized
import keras
import numpy as np
import tensorflow as tf

import memtk
from memtk import cell as cell_lib
from memtk import sparse_unroll
from memtk import stores
from memtk.unroll import unroll
from float64_case import Float64TestCase

BATCH, STEPS, INPUTS, OUTPUTS = 2, 6, 5, 3


def hard_cell(content, heads=(1, 1), memory_size=7, memory_init="learned"):
  cell = cell_lib.NTMCell(
      "lstm", OUTPUTS, memory_size=memory_size, word_size=4,
      num_read_heads=heads[0], num_write_heads=heads[1], addressing="hard",
      memory_init=memory_init, content_addressing=content, controller_units=8)
  cell.build((None, INPUTS))
  return cell


def dense_unroll(cell, inputs, noise, choice):
  """The straightforward loop: one-hot weights through memory.write/read."""
  hard = tf.constant(False)  # `soft` flag off: the dense one-hot access

  def step(x, state):
    return cell.choice_step(x[0], state, choice, noise=x[1], soft=hard)

  return unroll(step, (inputs, noise), cell.initial_ntm_state(BATCH))[0]


def assert_loops_agree(test, cell, loops, inputs, loss, memory_init):
  """The row loop and the dense loop (`loops`, functions of the inputs) give
  equal outputs and equal gradients of `loss(outputs)` for every variable."""
  results = []
  for fn in loops:
    with tf.GradientTape() as tape:
      tape.watch(inputs)
      out = fn(inputs)
      value = loss(out)
    sources = [inputs] + cell.trainable_variables
    results.append((out, tape.gradient(value, sources)))
  (rows, row_grads), (full, full_grads) = results
  for got, want in zip(rows, full):
    test.assertAllClose(got, want, atol=1e-12)
  test.assertLen(row_grads, len(full_grads))
  for variable, got, want in zip(["inputs"] + cell.trainable_variables,
                                 row_grads, full_grads):
    test.assertIsNotNone(got, msg=str(variable))
    test.assertAllClose(got, want, atol=1e-10, rtol=1e-8, msg=str(variable))
  if memory_init == "learned":  # the gradient reaches the initial memory
    memory_grad = row_grads[1 + [v.path for v in cell.trainable_variables]
                            .index(cell.initial_memory.path)]
    test.assertGreater(np.abs(memory_grad).max(), 0)


def sampled_gradients(cell):
  """An XLA tf.function: the gradients of the sampled row loop's logits and
  log-probabilities over (inputs, noise) with respect to the cell's weights."""

  @tf.function(jit_compile=True)
  def gradients(inputs, noise):
    with tf.GradientTape() as tape:
      out = sparse_unroll.unroll(cell, inputs, noise, "sample")
      loss = tf.reduce_sum(out.logits) + tf.reduce_sum(out.log_prob)
    return tape.gradient(loss, cell.trainable_variables)

  return gradients


def assert_compiled_in_place(test, gradients, args, content, cells=4099,
                             word_size=4, hlo=None):
  """The optimised HLO of `gradients` (an XLA tf.function; `hlo` if the
  caller has it already) copies no [B, N, W] tensor (the memory or its
  gradient), in particular not per step, keeps no stack of every step's
  memory ([T, B, N, W], as autodiff does) and without content has no such
  tensor at all; its gradients are finite."""
  if hlo is None:
    hlo = gradients.experimental_get_compiler_ir(*args)(stage="optimized_hlo")
  memory_shape = f"f32[{BATCH},{cells},{word_size}]"
  if content:
    test.assertIn(memory_shape, hlo)
  else:
    test.assertNotIn(memory_shape, hlo)
  copies = [line for line in hlo.splitlines()
            if re.search(r"= f32\[%d,%d,%d\]\S* copy\(" % (
                BATCH, cells, word_size), line)]
  test.assertEqual(copies, [])
  test.assertNotRegex(hlo, r"f32\[%d,%d,%d,%d\]" % (STEPS, BATCH, cells,
                                                    word_size))
  for g in gradients(*args):
    test.assertTrue(np.all(np.isfinite(g.numpy())))


class SparseUnrollTest(Float64TestCase):

  def setUp(self):
    super().setUp()
    self.inputs = tf.constant(self.rng.normal(size=(BATCH, STEPS, INPUTS)))
    self.cotangents = [tf.constant(self.rng.normal(size=s)) for s in
                       [(BATCH, STEPS, OUTPUTS), (BATCH, STEPS, 5),
                        (BATCH, STEPS, 5), (BATCH, STEPS)]]

  @parameterized.named_parameters(
      ("content_greedy", True, "greedy", (1, 1), 7),
      ("content_sample", True, "sample", (1, 1), 7),
      ("shift_greedy", False, "greedy", (1, 1), 7),
      ("shift_sample", False, "sample", (1, 1), 7),
      # Several heads on few cells: heads share rows, read what is written.
      ("content_shared_rows", True, "sample", (2, 2), 4),
      ("shift_shared_rows", False, "sample", (2, 3), 4),
      # Without content: the log of touched rows over a constant memory, and
      # the dense buffer for a random one.
      ("shift_constant_memory", False, "sample", (2, 2), 4, "constant"),
      ("shift_random_memory", False, "sample", (1, 1), 7, "random"))
  def test_values_and_gradients_equal_dense_unroll(
      self, content, choice, heads, memory_size, memory_init="learned"):
    cell = hard_cell(content, heads, memory_size, memory_init)
    if memory_init == "random":  # one draw of M_0 for both loops
      memory = cell.initial_ntm_state(BATCH).memory
      cell.initial_ntm_state = lambda batch, f=cell.initial_ntm_state: f(
          batch)._replace(memory=memory)
    noise = tf.constant(self.rng.uniform(size=(BATCH, STEPS, sum(heads))))
    # Where the log of touched rows may stand for the memory, both stores.
    for store in (("log", "dense") if sparse_unroll.log_store_allowed(
        cell, STEPS) else (None,)):
      assert_loops_agree(
          self, cell, [lambda x, s=store: sparse_unroll.unroll(
              cell, x, noise, choice, store=s),
                       lambda x: dense_unroll(cell, x, noise, choice)],
          self.inputs,
          lambda out: sum(tf.reduce_sum(o * c[..., :o.shape[-1]])
                          for o, c in zip(out, self.cotangents)), memory_init)

  @parameterized.parameters((12, False), (13, True))
  def test_log_store_where_it_is_smaller_than_the_memory(self, cells, log):
    # 6 steps x 2 heads = 12 logged rows: the log for 13 cells, not for 12.
    cell = hard_cell(False, memory_size=cells, memory_init="constant")
    with mock.patch.object(stores, "LogStore", wraps=stores.LogStore) as made:
      sparse_unroll.unroll(cell, self.inputs, None, "greedy")
    self.assertEqual(made.called, log)

  def test_shift_heads_wrap_around_like_the_dense_distribution(self):
    # Without content a head at cell 0 may move to cell N - 1; the same
    # noise must pick the same cell as sampling the dense distribution.
    cell = hard_cell(False, memory_size=5)
    for seed in range(3):
      noise = tf.constant(np.random.default_rng(seed).uniform(
          size=(BATCH, STEPS, 2)))
      sparse = sparse_unroll.unroll(cell, self.inputs, noise, "sample")
      dense = dense_unroll(cell, self.inputs, noise, "sample")
      self.assertAllClose(sparse.log_prob, dense.log_prob, atol=1e-12)

  def test_model_uses_it_for_greedy_and_sampled_choices(self):
    model = memtk.NTM("lstm", OUTPUTS, memory_size=6, word_size=4,
                      controller_units=8, addressing="hard")
    model.build((None, None, INPUTS))
    calls = []
    original = sparse_unroll.unroll

    def spy(*args):
      calls.append(args[-1])
      return original(*args)

    sparse_unroll.unroll = spy
    try:
      logits = model(self.inputs)
      model(self.inputs, choice="sample")
      traced = model.trace(self.inputs)["logits"]  # the dense loop
    finally:
      sparse_unroll.unroll = original
    self.assertEqual(calls, ["greedy", "sample"])
    self.assertAllClose(logits, traced, atol=1e-12)

  def test_bad_arguments(self):
    with self.assertRaisesRegex(ValueError, "choice must be one of"):
      sparse_unroll.unroll(hard_cell(True), self.inputs, None, "gumbel")
    soft = cell_lib.NTMCell("lstm", OUTPUTS, memory_size=5)
    soft.build((None, INPUTS))
    with self.assertRaisesRegex(ValueError, "needs a hard or sparse cell"):
      sparse_unroll.unroll(soft, self.inputs, None, "greedy")
    with self.assertRaisesRegex(ValueError, "store must be one of"):
      sparse_unroll.unroll(hard_cell(False), self.inputs, None, "greedy",
                           store="rows")
    with self.assertRaisesRegex(ValueError, "content_addressing=True"):
      sparse_unroll.unroll(hard_cell(True), self.inputs, None, "greedy",
                           store="log")


class CompiledTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.parameters(False, True)
  def test_xla_updates_memory_in_place(self, content):
    # The whole forward and backward pass: no copy of a [B, N, W] tensor
    # (the memory or its gradient) anywhere, in particular not per step;
    # without content no such tensor at all.
    keras.utils.set_random_seed(0)
    cell = hard_cell(content, memory_size=4099, memory_init="constant")
    inputs = tf.ones((BATCH, STEPS, INPUTS))
    noise = tf.fill((BATCH, STEPS, 2), 0.5)
    assert_compiled_in_place(self, sampled_gradients(cell), (inputs, noise),
                             content)
