"""Hard choices and gradient estimators, checked against exact answers."""

import numpy as np
import tensorflow as tf

from memtk import estimators
from memtk import memory as memory_lib


class SamplingTest(tf.test.TestCase):

  def test_sample_frequencies_follow_weights(self):
    weights = np.array([[[0.05, 0.4, 0.0, 0.25, 0.3]]], np.float32)
    draws = 20000
    uniform = np.random.default_rng(0).uniform(size=(draws, 1)).astype(np.float32)
    indices = estimators.sample(np.repeat(weights, draws, 0), uniform).numpy()
    counts = np.bincount(indices[:, 0], minlength=5)
    self.assertEqual(counts[2], 0)  # a zero-weight cell is never chosen
    expected = weights[0, 0] * draws
    nonzero = expected > 0
    chi_square = np.sum((counts[nonzero] - expected[nonzero]) ** 2
                        / expected[nonzero])
    # 3 degrees of freedom: P(chi2 > 16.27) = 0.001.
    self.assertLess(chi_square, 16.27)

  def test_sample_edges(self):
    weights = tf.constant([[[0.0, 1.0, 0.0], [0.5, 0.5, 0.0]]])
    for u in (0.0, 0.5, 0.999999, 1.0):
      indices = estimators.sample(weights, tf.fill((1, 2), u)).numpy()
      self.assertEqual(indices[0, 0], 1)
      self.assertIn(indices[0, 1], (0, 1))

  def test_two_level_sampling_inverts_the_whole_cdf(self):
    # Over 512 cells the CDF is inverted block by block; the cell must be the
    # one a single cumulative sum gives, never a cell of weight 0.
    rng = np.random.default_rng(3)
    num_cells = 1000  # not a multiple of the block size
    logits = rng.normal(size=(8, 2, num_cells)) * 3
    logits[:, :, rng.integers(0, num_cells, size=400)] = -np.inf
    logits[:, :, -5:] = -np.inf  # zero weight at the end
    weights = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    uniform = rng.uniform(size=(8, 2))
    uniform[0] = [0.0, 1.0]
    got = estimators.sample(tf.constant(weights, tf.float32),
                            tf.constant(uniform, tf.float32)).numpy()
    cdf = np.cumsum(weights, -1)
    want = np.minimum((cdf <= uniform[..., None] * (1 - 1e-6)).sum(-1),
                      num_cells - 6)  # the last cell of non-zero weight
    self.assertAllEqual(got, want)
    self.assertTrue(np.all(np.take_along_axis(weights, got[..., None], -1) > 0))

  def test_gumbel_argmax_samples_weights(self):
    weights = tf.constant([[[0.1, 0.6, 0.3]]])
    draws = 20000
    noise = estimators.gumbel_noise((draws, 1, 3), tf.constant([3, 4]))
    indices, one_hot = estimators.gumbel_straight_through(
        tf.repeat(weights, draws, 0), noise, 0.5)
    freq = np.bincount(indices.numpy()[:, 0], minlength=3) / draws
    self.assertAllClose(freq, [0.1, 0.6, 0.3], atol=0.015)
    self.assertAllEqual(one_hot.numpy(), tf.one_hot(indices, 3).numpy())

  def test_log_prob_and_entropy(self):
    weights = tf.constant([[[0.5, 0.25, 0.25, 0.0]]])
    self.assertAllClose(estimators.log_prob(weights, tf.constant([[1]])),
                        [[np.log(0.25)]])
    self.assertAllClose(estimators.entropy(weights),
                        [[-(0.5 * np.log(0.5) + 0.5 * np.log(0.25))]])
    self.assertTrue(np.isfinite(
        estimators.log_prob(weights, tf.constant([[3]])).numpy()).all())

  def test_rewards_to_go(self):
    rewards = tf.constant([[1.0, 2.0, 3.0, 4.0]])
    mask = tf.constant([[1.0, 1.0, 0.0, 1.0]])
    self.assertAllClose(estimators.rewards_to_go(rewards, mask),
                        [[7.0, 6.0, 4.0, 4.0]])

  def test_discounted_returns(self):
    rng = np.random.default_rng(1)
    rewards = rng.normal(size=(3, 7))
    mask = (rng.random((3, 7)) > 0.3).astype(np.float64)
    for discount in (0.0, 0.5, 0.9, 1.0):
      want = np.zeros_like(rewards)
      for t in range(7):
        for later in range(t, 7):
          want[:, t] += discount ** (later - t) * rewards[:, later] * mask[:, later]
      got = estimators.discounted_returns(tf.constant(rewards),
                                          tf.constant(mask), discount)
      self.assertAllClose(got, want, msg=discount)
    self.assertAllClose(
        estimators.discounted_returns(tf.constant(rewards), tf.constant(mask), 1.0),
        estimators.rewards_to_go(tf.constant(rewards), tf.constant(mask)))

  def test_batch_centred(self):
    rng = np.random.default_rng(2)
    returns = rng.normal(loc=3.0, size=(5, 4))
    centred = np.empty_like(returns)
    for row in range(5):
      others = [r for r in range(5) if r != row]
      centred[row] = returns[row] - returns[others].mean(0)
    want = centred / (np.sqrt(np.mean(centred ** 2)) + 1e-6)
    self.assertAllClose(estimators.batch_centred(tf.constant(returns)), want)
    # A one-row batch has no other rows: its own return is its baseline's
    # stand-in, so the signal is 0, not NaN.
    self.assertAllClose(estimators.batch_centred(tf.constant(returns[:1])),
                        np.zeros((1, 4)))

  def test_reads_of_written_cells(self):
    rng = np.random.default_rng(3)
    batch, steps, cells = 4, 9, 6
    reads = rng.integers(0, cells, size=(batch, steps, 2))
    writes = rng.integers(0, cells, size=(batch, steps, 2))
    mask = (rng.random((batch, steps)) > 0.5).astype(np.float32)
    want = np.zeros((batch, steps, 2), np.float32)
    for b in range(batch):
      for t in range(steps):
        data = {int(c) for s in range(t) if mask[b, s] == 0
                for c in writes[b, s]}
        for h in range(2):
          want[b, t, h] = float(mask[b, t] == 1 and reads[b, t, h] in data)
    got = estimators.reads_of_written_cells(
        tf.constant(reads, tf.int32), tf.constant(writes, tf.int32),
        tf.constant(mask), cells)
    self.assertAllEqual(got, want)
    self.assertGreater(want.sum(), 0)
    # By hand: cell 2 is written at data step 0, cell 4 only at answer
    # steps (not data), so of the reads at answer steps 1-3 only step 2's
    # (cell 2) counts; step 4 is a data step.
    mask = tf.constant([[0.0, 1.0, 1.0, 1.0, 0.0]])
    writes = tf.constant([[[2], [4], [4], [4], [3]]])
    reads = tf.constant([[[2], [4], [2], [0], [2]]])
    self.assertAllEqual(
        estimators.reads_of_written_cells(reads, writes, mask, 5),
        [[[0.0], [0.0], [1.0], [0.0], [0.0]]])

  def test_reads_of_answer_cells(self):
    rng = np.random.default_rng(4)
    batch, steps, cells, bits = 5, 10, 5, 2
    reads = rng.integers(0, cells, size=(batch, steps, 2))
    writes = rng.integers(0, cells, size=(batch, steps, 2))
    # Two-bit vectors and a third input channel: answers repeat inputs often.
    inputs = rng.integers(0, 2, size=(batch, steps, bits + 1)).astype(
        np.float32)
    targets = rng.integers(0, 2, size=(batch, steps, bits)).astype(np.float32)
    mask = (rng.random((batch, steps)) > 0.5).astype(np.float32)
    want = np.zeros((batch, steps, 2), np.float32)
    for b in range(batch):
      for t in range(steps):
        for h in range(2):
          cell = reads[b, t, h]
          latest = max((s for s in range(t + 1) if cell in writes[b, s]),
                       default=None)
          want[b, t, h] = float(
              mask[b, t] == 1 and latest is not None and mask[b, latest] == 0
              and np.array_equal(inputs[b, latest, :bits], targets[b, t]))
    got = estimators.reads_of_answer_cells(
        tf.constant(reads, tf.int32), tf.constant(writes, tf.int32),
        tf.constant(inputs), tf.constant(targets), tf.constant(mask))
    self.assertAllEqual(got, want)
    self.assertGreater(want.sum(), 0)
    self.assertLess(
        want.sum(), estimators.reads_of_written_cells(
            tf.constant(reads, tf.int32), tf.constant(writes, tf.int32),
            tf.constant(mask), cells).numpy().sum())
    # By hand, a copy of length 2 (data steps 0-1, delimiter 2, answers
    # 3-4) written to cells 5 and 6: reading 5 then 6 hits twice, 6 then 5
    # never (written cells, wrong order), 5 then 5 once.
    x = np.zeros((1, 5, 3), np.float32)
    x[0, 0, :2], x[0, 1, :2], x[0, 2, 2] = [1, 0], [0, 1], 1
    y = np.zeros((1, 5, 2), np.float32)
    y[0, 3], y[0, 4] = [1, 0], [0, 1]
    m = tf.constant([[0.0, 0.0, 0.0, 1.0, 1.0]])
    w = tf.constant([[[5], [6], [7], [9], [9]]])
    for read, want in (([5, 6], [1, 1]), ([6, 5], [0, 0]), ([5, 5], [1, 0])):
      r = tf.constant([[[0], [0], [0], [read[0]], [read[1]]]])
      got = estimators.reads_of_answer_cells(r, w, x, y, m)
      self.assertAllEqual(got[0, :, 0], [0, 0, 0] + want)
      # read_credit: every choice is credited with the hits from it on.
      credit = estimators.read_credit("answer", r, w, x, y, m, 10)
      self.assertAllEqual(credit[0, :, 0],
                          np.cumsum(([0, 0, 0] + want)[::-1])[::-1])
    # A write head that stays on cell 5 leaves only the last vector there
    # (written again at the delimiter and at the answers: then nothing);
    # a read of 5 at answer step 4 after an answer-step write there misses.
    for writes, want in (([5, 5, 7, 9, 9], [0, 1]), ([5, 5, 5, 5, 5], [0, 0]),
                         ([5, 6, 7, 9, 5], [1, 0])):
      w_stay = tf.constant([[[c] for c in writes]])
      r = tf.constant([[[0], [0], [0], [5], [5]]])
      self.assertAllEqual(
          estimators.reads_of_answer_cells(r, w_stay, x, y, m)[0, 3:, 0], want)
    self.assertAllEqual(
        estimators.read_credit("written", r, w, x, y, m, 10),
        estimators.reads_of_written_cells(r, w, m, 10))
    with self.assertRaisesRegex(ValueError, "cells must be one of"):
      estimators.read_credit("every", r, w, x, y, m, 10)

  def test_leave_one_out(self):
    rng = np.random.default_rng(0)
    returns = rng.normal(size=(6, 4))  # 2 sequences x 3 runs, 4 steps
    want = np.empty_like(returns)
    for row in range(6):
      first = row - row % 3
      others = [r for r in range(first, first + 3) if r != row]
      want[row] = returns[others].mean(0)
    self.assertAllClose(estimators.leave_one_out(tf.constant(returns), 3),
                        want)


class ReinforceTest(tf.test.TestCase):
  """One head picks a row of a fixed memory; the loss is how far that row is
  from a target. E[L] = sum_i w(i) L(i) has an exact gradient to compare with."""

  def setUp(self):
    super().setUp()
    rng = np.random.default_rng(1)
    self.n = 6
    self.memory = tf.constant(rng.normal(size=(1, self.n, 3)))
    self.target = tf.constant(rng.normal(size=(3,)))
    self.logits = tf.constant(rng.normal(size=(self.n,)))

  def _losses(self):  # L(i) for every row i: [N]
    rows = memory_lib.read_rows(self.memory, tf.range(self.n)[None])[0]
    return tf.reduce_sum(tf.square(rows - self.target), -1)

  def _estimates(self, draws, baseline):
    """Per-sample REINFORCE gradients [draws, N] of E[L] wrt the logits."""
    logits = tf.Variable(self.logits)
    with tf.GradientTape() as tape:
      weights = tf.nn.softmax(logits)[None, None]
      # grad log w(i) for every possible choice i: [N, N].
      every = estimators.log_prob(tf.repeat(weights, self.n, 0),
                                  tf.range(self.n)[:, None])[:, 0]
    score = tape.jacobian(every, logits).numpy()
    uniform = np.random.default_rng(2).uniform(size=(draws, 1))
    indices = estimators.sample(np.repeat(weights.numpy(), draws, 0),
                                uniform).numpy()[:, 0]
    losses = self._losses().numpy()
    # The REINFORCE sample of grad E[L]: (L(i) - b) grad log w(i).
    return (losses[indices] - baseline)[:, None] * score[indices]

  def test_matches_exact_gradient_by_enumeration(self):
    logits = tf.Variable(self.logits)
    with tf.GradientTape() as tape:
      expected = tf.reduce_sum(tf.nn.softmax(logits) * self._losses())
    exact = tape.gradient(expected, logits).numpy()
    draws = 20000
    for baseline in (0.0, float(expected)):
      estimates = self._estimates(draws, baseline)
      mean = estimates.mean(0)
      standard_error = estimates.std(0) / np.sqrt(draws)
      # Within 5 standard errors in every coordinate (and close in absolute terms).
      self.assertTrue(np.all(np.abs(mean - exact) < 5 * standard_error + 1e-9),
                      (baseline, mean, exact, standard_error))

  def test_baseline_lowers_variance(self):
    logits = tf.Variable(self.logits)
    expected = float(tf.reduce_sum(tf.nn.softmax(logits) * self._losses()))
    without = self._estimates(5000, 0.0).var(0).sum()
    with_baseline = self._estimates(5000, expected).var(0).sum()
    self.assertLess(with_baseline, 0.5 * without)

  def test_surrogate_gradient_is_the_estimate(self):
    log_probs = tf.Variable([[[np.log(0.5)], [np.log(0.25)]]], dtype=tf.float32)
    advantages = tf.constant([[2.0, -1.0]])
    with tf.GradientTape() as tape:
      loss = estimators.surrogate(log_probs, advantages)
    self.assertAllClose(tape.gradient(loss, log_probs), [[[-2.0], [1.0]]])

  def test_surrogate_with_an_advantage_per_head(self):
    rng = np.random.default_rng(4)
    log_probs = rng.normal(size=(3, 5, 2))
    advantages = rng.normal(size=(3, 5, 2))
    want = -np.mean(np.sum(log_probs * advantages, axis=(1, 2)))
    self.assertAllClose(estimators.surrogate(tf.constant(log_probs),
                                             tf.constant(advantages)), want)
    shared = advantages[..., 0]  # [B, T]: the same for both heads
    self.assertAllClose(
        estimators.surrogate(tf.constant(log_probs), tf.constant(shared)),
        estimators.surrogate(tf.constant(log_probs),
                             tf.constant(np.repeat(shared[..., None], 2, -1))))


class StraightThroughTest(tf.test.TestCase):

  def test_forward_is_hard_and_gradients_finite(self):
    rng = np.random.default_rng(3)
    memory = tf.constant(rng.normal(size=(2, 5, 4)), tf.float32)
    logits = tf.Variable(rng.normal(size=(2, 1, 5)), dtype=tf.float32)
    noise = estimators.gumbel_noise((2, 1, 5), tf.constant([1, 2]))
    with tf.GradientTape() as tape:
      weights = tf.nn.softmax(logits)
      indices, one_hot = estimators.gumbel_straight_through(weights, noise, 0.5)
      read = memory_lib.read(memory, one_hot)
      loss = tf.reduce_sum(read ** 2)
    self.assertAllClose(read, memory_lib.read_rows(memory, indices))
    grad = tape.gradient(loss, logits).numpy()
    self.assertTrue(np.all(np.isfinite(grad)))
    self.assertGreater(np.abs(grad).sum(), 0.0)

  def test_equals_soft_gradient_at_low_temperature_on_one_hot(self):
    rng = np.random.default_rng(4)
    memory = tf.Variable(rng.normal(size=(1, 5, 4)))
    weights = tf.constant(np.eye(5)[[2]][None])  # a one-hot distribution
    noise = tf.constant(rng.gumbel(size=(1, 1, 5)))
    target = tf.constant(rng.normal(size=(1, 1, 4)))
    grads = []
    for straight_through in (True, False):
      with tf.GradientTape() as tape:
        if straight_through:
          _, w = estimators.gumbel_straight_through(weights, noise, 1e-3)
        else:
          w = weights
        loss = tf.reduce_sum(tf.square(memory_lib.read(memory, w) - target))
      grads.append(tape.gradient(loss, memory))
    self.assertAllClose(grads[0], grads[1])

  def test_chosen_only_heads_reach_only_their_chosen_cell(self):
    # d sum(c * w) / d weights against numpy: the relaxed sample's Jacobian
    # through log w, taken at every cell, or at the chosen one only.
    rng = np.random.default_rng(5)
    weights = tf.constant(rng.dirichlet(np.ones(5), size=(2, 3)))
    noise = tf.constant(rng.gumbel(size=(2, 3, 5)))
    coefficients = rng.normal(size=(2, 3, 5))
    tau = 0.7
    chosen_only = tf.constant([False, True, True])
    with tf.GradientTape() as tape:
      tape.watch(weights)
      indices, w = estimators.gumbel_straight_through(weights, noise, tau,
                                                      chosen_only)
      total = tf.reduce_sum(w * coefficients)
    gradient = tape.gradient(total, weights).numpy()
    self.assertAllEqual(w, tf.one_hot(indices, 5, dtype=w.dtype))

    logits = (np.log(weights.numpy()) + noise.numpy()) / tau
    relaxed = np.exp(logits - logits.max(-1, keepdims=True))
    relaxed /= relaxed.sum(-1, keepdims=True)
    chosen = np.eye(5)[indices.numpy()]
    upstream = np.where(chosen_only.numpy()[None, :, None],
                        coefficients * chosen, coefficients)
    # softmax' Jacobian: d relaxed_j / d logit_k = relaxed_j (1[j=k] -
    # relaxed_k); d logit_k / d weight_k = 1 / (tau weight_k).
    d_logits = relaxed * (upstream - np.sum(upstream * relaxed, -1,
                                            keepdims=True))
    want = d_logits / (tau * weights.numpy())
    self.assertAllClose(gradient, want)
    with tf.GradientTape() as unmasked:
      unmasked.watch(weights)
      _, w = estimators.gumbel_straight_through(weights, noise, tau)
      total = tf.reduce_sum(w * coefficients)
    full = unmasked.gradient(total, weights).numpy()
    self.assertAllClose(full[:, 0], gradient[:, 0])  # head 0 unmasked
    self.assertGreater(np.abs(full[:, 1:] - gradient[:, 1:]).max(), 1e-3)

  def test_greedy_forward_takes_the_most_likely_cell(self):
    # Same relaxed gradient, forward on argmax w rather than the sample.
    rng = np.random.default_rng(6)
    weights = tf.constant(rng.dirichlet(np.ones(5), size=(4, 2)))
    noise = tf.constant(rng.gumbel(size=(4, 2, 5)))
    coefficients = rng.normal(size=(4, 2, 5))
    results = {}
    for forward in estimators.GUMBEL_FORWARDS:
      with tf.GradientTape() as tape:
        tape.watch(weights)
        indices, w = estimators.gumbel_straight_through(
            weights, noise, 0.7, forward=forward)
        total = tf.reduce_sum(w * coefficients)
      self.assertAllEqual(w, tf.one_hot(indices, 5, dtype=w.dtype))
      results[forward] = indices.numpy(), tape.gradient(total, weights)
    sampled = np.argmax(np.log(weights.numpy()) + noise.numpy(), -1)
    self.assertAllEqual(results["sample"][0], sampled)
    self.assertAllEqual(results["greedy"][0], np.argmax(weights.numpy(), -1))
    self.assertFalse(np.all(sampled == np.argmax(weights.numpy(), -1)))
    self.assertAllClose(results["greedy"][1], results["sample"][1])
    with self.assertRaisesRegex(ValueError, "forward must be one of .*'max'"):
      estimators.gumbel_straight_through(weights, noise, 0.7, forward="max")

  def test_gumbel_form_names_a_bad_field(self):
    self.assertEqual(estimators.gumbel_form(),
                     estimators.GumbelForm("chosen", "sample"))
    with self.assertRaisesRegex(ValueError, "gumbel_writes .*'all'"):
      estimators.gumbel_form(writes="all")
    with self.assertRaisesRegex(ValueError, "gumbel_forward .*'max'"):
      estimators.gumbel_form(forward="max")


if __name__ == "__main__":
  tf.test.main()
