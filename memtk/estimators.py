"""Hard (sampled) address choices and their gradient estimators.

A hard head turns its addressing distribution w [B, H, N] into one cell per
head. Choosing is not differentiable, so training needs an estimator:

  * REINFORCE (score function): grad E_i[L] = E_i[(L - b) grad log w(i)]
    for any baseline b that does not depend on the choice i; `surrogate`
    builds the loss whose gradient is that estimate, from per-step rewards
    turned into rewards-to-go.
  * straight-through Gumbel-softmax: the forward pass uses the one-hot of
    argmax(log w + g), g ~ Gumbel(0, 1) (an exact sample of w), or of
    argmax w (forward='greedy'); the backward pass uses the gradient of
    softmax((log w + g) / tau).

Pure functions of tensors; the noise is an argument, so the caller owns the
random stream (and a seed reproduces a run).
"""

import math
from typing import NamedTuple

import tensorflow as tf

from memtk.addressing import TINY as _TINY  # a weight of 0 has log-prob -69

ESTIMATORS = ("reinforce", "gumbel")
# Where a straight-through Gumbel write head's gradient reaches its relaxed
# sample: the chosen cell only, or every cell (gumbel_straight_through).
GUMBEL_WRITES = ("chosen", "relaxed")
# Which cell a straight-through Gumbel step's forward pass uses: the
# Gumbel-max sample, or the most likely cell (gumbel_straight_through).
GUMBEL_FORWARDS = ("sample", "greedy")
# What a read reward pays for (read_credit): reads of the cell that holds the
# answer, or of any cell written before the answers.
READ_REWARD_CELLS = ("answer", "written")
# Whose signal a read reward adds to: every head's, or the read heads' only.
READ_REWARD_HEADS = ("all", "read")
_CDF_MARGIN = 1e-6
_BLOCK = 128  # cells per block of the two-level CDF inversion
_UNIFORM_FLOOR = 1e-20  # keeps -log(-log(u)) finite at u = 0


def sample(weights, uniform):
  """Draws one cell per head from w by inverting its CDF.

  Over more than 4 * 128 cells the CDF is inverted in two levels (pick the
  block of 128 cells, then the cell in it), which avoids a cumulative sum
  over all N cells, slow in XLA on CPU; the result is the same cell up to
  rounding at the edges between cells.

  Args:
    weights: [B, H, N] addressing distributions (rows sum to 1).
    uniform: [B, H] U(0, 1) noise.

  Returns:
    [B, H] int32 indices i ~ w.
  """
  num_cells = weights.shape[-1]
  if num_cells is None or num_cells <= 4 * _BLOCK:
    return _invert_cdf(weights, uniform[..., None] * tf.reduce_sum(
        weights, -1, keepdims=True) * (1.0 - _CDF_MARGIN))
  num_blocks = -(-num_cells // _BLOCK)
  padded = tf.pad(weights, [[0, 0], [0, 0],
                            [0, num_blocks * _BLOCK - num_cells]])
  blocks = tf.reshape(padded, tf.concat([tf.shape(weights)[:2],
                                         [num_blocks, _BLOCK]], 0))
  block_sums = tf.reduce_sum(blocks, -1)  # [B, H, blocks]
  threshold = uniform[..., None] * tf.reduce_sum(
      block_sums, -1, keepdims=True) * (1.0 - _CDF_MARGIN)
  block = _invert_cdf(block_sums, threshold)
  before = tf.reduce_sum(tf.where(
      tf.range(num_blocks) < block[..., None], block_sums, 0.0), -1)
  within = _invert_cdf(tf.gather(blocks, block, batch_dims=2),
                       threshold - before[..., None])
  return tf.minimum(block * _BLOCK + within, num_cells - 1)


def _invert_cdf(weights, threshold):
  """[B, H] the first index whose cumulative weight exceeds threshold [B, H, 1],
  never past the last cell of non-zero weight (which rounding could give)."""
  cdf = tf.cumsum(weights, axis=-1)
  index = tf.reduce_sum(tf.cast(cdf <= threshold, tf.int32), axis=-1)
  num_cells = tf.shape(weights)[-1]
  last_positive = num_cells - 1 - tf.argmax(
      tf.cast(tf.reverse(weights, [-1]) > 0, tf.int32), axis=-1,
      output_type=tf.int32)
  return tf.minimum(index, last_positive)


def greedy(weights):
  """[B, H] int32 argmax of w: the deterministic choice for evaluation."""
  return tf.argmax(weights, axis=-1, output_type=tf.int32)


def log_prob(weights, indices):
  """[B, H] log w(i) of the chosen indices."""
  chosen = tf.gather(weights, indices, batch_dims=2)
  return tf.math.log(tf.maximum(chosen, _TINY))


def entropy(weights):
  """[B, H] entropy -sum_i w(i) log w(i) of each head's distribution."""
  return -tf.reduce_sum(weights * tf.math.log(tf.maximum(weights, _TINY)), -1)


class GumbelForm(NamedTuple):
  """How a straight-through Gumbel step chooses and differentiates
  (gumbel_straight_through): `writes` one of GUMBEL_WRITES, `forward` one
  of GUMBEL_FORWARDS. Build it with gumbel_form, which checks both."""
  writes: str = "chosen"
  forward: str = "sample"


def gumbel_form(writes="chosen", forward="sample"):
  """A checked GumbelForm; a ValueError names a bad field."""
  if writes not in GUMBEL_WRITES:
    raise ValueError(f"gumbel_writes must be one of {GUMBEL_WRITES}, got "
                     f"{writes!r}")
  if forward not in GUMBEL_FORWARDS:
    raise ValueError(f"gumbel_forward must be one of {GUMBEL_FORWARDS}, got "
                     f"{forward!r}")
  return GumbelForm(writes, forward)


def gumbel_straight_through(weights, gumbel_noise, temperature,
                            chosen_only=None, forward="sample"):
  """Straight-through Gumbel-softmax choice.

  Args:
    weights: [B, H, N] addressing distributions.
    gumbel_noise: [B, H, N] Gumbel(0, 1) noise, -log(-log(U)).
    temperature: tau > 0 of the relaxation used by the backward pass.
    chosen_only: optional [H] bool: heads whose gradient reaches the relaxed
      sample only through its chosen cell's entry (what the one-hot forward
      touched). A write head's gradient at every other cell comes from rows
      it left as they were, where the content scores of nearly empty rows
      (cosines against norms of ~sqrt(eps)) make it explode through time.
    forward: 'sample' (the estimator of Jang et al. 2017: the forward pass
      takes the Gumbel-max sample argmax(log w + g)) or 'greedy' (it takes
      argmax w, the cell a greedy evaluation reads; the backward pass is
      the relaxed sample's either way).

  Returns:
    (indices [B, H] int32, one-hot [B, H, N] whose value is exactly
    one_hot(indices) and whose gradient is that of the relaxed sample).
  """
  if forward not in GUMBEL_FORWARDS:
    raise ValueError(f"forward must be one of {GUMBEL_FORWARDS}, got "
                     f"{forward!r}")
  logits = tf.math.log(tf.maximum(weights, _TINY)) + gumbel_noise
  indices = (greedy(weights) if forward == "greedy" else
             tf.argmax(logits, axis=-1, output_type=tf.int32))
  relaxed = tf.nn.softmax(logits / temperature, axis=-1)
  hard = tf.one_hot(indices, tf.shape(weights)[-1], dtype=weights.dtype)
  # relaxed - stop_gradient(relaxed) is exactly 0 forward, so the value is
  # exactly one-hot; (hard + relaxed) - relaxed would round.
  gradient_path = relaxed - tf.stop_gradient(relaxed)
  if chosen_only is not None:
    gradient_path = tf.where(chosen_only[:, None], gradient_path * hard,
                             gradient_path)
  return indices, hard + gradient_path


def gumbel_from_uniform(uniform):
  """Gumbel(0, 1) noise -log(-log(u)) from U(0, 1) noise of any shape."""
  uniform = tf.clip_by_value(uniform, _UNIFORM_FLOOR, 1.0 - 1e-7)
  return -tf.math.log(-tf.math.log(uniform))


def gumbel_noise(shape, seed, dtype=tf.float32):
  """Gumbel(0, 1) noise from a stateless seed (a [2] int tensor)."""
  return gumbel_from_uniform(
      tf.random.stateless_uniform(shape, seed, dtype=dtype))


def rewards_to_go(rewards, mask):
  """R_t = sum_{t' >= t} r_t' mask_t': the return that a choice at t affects.

  Args:
    rewards: [B, T] per-step rewards (minus the per-step task loss).
    mask: [B, T] 1 where the step's reward counts.

  Returns:
    [B, T] rewards-to-go.
  """
  return tf.cumsum(rewards * mask, axis=1, reverse=True)


def discounted_returns(rewards, mask, discount):
  """R_t = sum_{t' >= t} discount^(t' - t) r_t' mask_t': rewards-to-go that
  credit a choice mostly with the steps right after it (discount 1:
  rewards_to_go; 0: the step's own reward).

  Args:
    rewards: [B, T] per-step rewards; mask: [B, T] 1 where a reward counts.
    discount: in [0, 1].

  Returns:
    [B, T].
  """
  steps = tf.shape(rewards)[1]
  lag = tf.range(steps)[:, None] - tf.range(steps)[None, :]  # [t', t]
  weights = tf.where(lag >= 0, tf.pow(tf.cast(discount, rewards.dtype),
                                      tf.cast(tf.maximum(lag, 0), rewards.dtype)),
                     tf.zeros([], rewards.dtype))
  return tf.matmul(rewards * mask, weights)


def batch_centred(returns, row_mean=None, rows=None):
  """Each row's return minus the mean of the other rows at the same step
  (a baseline that does not depend on the row's own choices), divided by
  the root mean square of the result.

  Args:
    returns: [B, T].
    row_mean: [B, T] -> [T], the mean over the rows of the whole batch (a
      cross-replica mean when the batch is split between replicas; default:
      over this tensor's rows).
    rows: the whole batch's row count (default: this tensor's).

  Returns:
    [B, T] (R - leave-one-out mean) / (root mean square + 1e-6); zeros
    for a batch of one row.
  """
  if row_mean is None:
    row_mean = lambda x: tf.reduce_mean(x, 0)
  rows = tf.cast(tf.shape(returns)[0] if rows is None else rows, returns.dtype)
  others = (rows * row_mean(returns)[None] - returns) / tf.maximum(rows - 1.0,
                                                                   1.0)
  # One row has no others to compare with: no signal rather than its return.
  centred = tf.where(rows > 1.0, returns - others, tf.zeros_like(returns))
  spread = tf.sqrt(tf.reduce_mean(row_mean(tf.square(centred))))
  return centred / (spread + 1e-6)


def leave_one_out(returns, samples):
  """The mean return of the other runs of the same sequence.

  Args:
    returns: [B * samples, T], the runs of each sequence in consecutive rows
      (as tf.repeat(x, samples, axis=0) lays them out).
    samples: runs per sequence, >= 2.

  Returns:
    [B * samples, T]: row j holds the mean of the other samples - 1 rows of
    its sequence, a baseline that does not depend on run j's choices.
  """
  grouped = tf.reshape(returns, tf.concat([[-1, samples],
                                           tf.shape(returns)[1:]], 0))
  others = (tf.reduce_sum(grouped, 1, keepdims=True) - grouped) / (samples - 1)
  return tf.reshape(others, tf.shape(returns))


def surrogate(log_probs, advantages):
  """REINFORCE surrogate loss: its gradient is -E[A grad log w(i)].

  Args:
    log_probs: [B, T, H] log w(i) of the choices made.
    advantages: [B, T] return minus baseline (held constant), one for every
      head, or [B, T, H], one per head.

  Returns:
    Scalar: -mean_B sum_{T, H} log w(i) * stop_gradient(A).
  """
  advantages = tf.stop_gradient(advantages)
  if advantages.shape.rank == 2:
    weighted = tf.reduce_sum(log_probs, axis=-1) * advantages
  else:
    weighted = tf.reduce_sum(log_probs * advantages, axis=-1)
  return -tf.reduce_mean(tf.reduce_sum(weighted, axis=1))


def reads_of_written_cells(read_choices, write_choices, mask, memory_size):
  """Which reads at answer steps chose a cell written at a step before any
  answer was due: a reward for reading where the data went, whatever the
  order (shaping for REINFORCE from scratch; a read of the cell being
  written at that very step does not count).

  Args:
    read_choices: [B, T, H_r] int cells the read heads chose.
    write_choices: [B, T, H_w] int cells the write heads chose.
    mask: [B, T] 1 at the steps whose output is scored (answers), 0 at the
      others (data).
    memory_size: N.

  Returns:
    [B, T, H_r] float: 1 where mask_t = 1 and the read's cell was written by
    some write head at a step s < t with mask_s = 0; else 0.
  """
  mask = tf.cast(mask, tf.float32)
  written = tf.reduce_max(tf.one_hot(write_choices, memory_size), axis=2)
  written *= (1.0 - mask)[..., None]  # [B, T, N]: data steps' writes
  before = tf.cumsum(written, axis=1, exclusive=True) > 0
  hit = tf.gather(before, read_choices, batch_dims=2)  # [B, T, H_r]
  return tf.cast(hit, tf.float32) * mask[..., None]


def reads_of_answer_cells(read_choices, write_choices, inputs, targets,
                          mask):
  """Which reads at answer steps chose the cell that holds the answer: the
  cell's latest write up to the read (a step writes before it reads) was at
  a data step whose input vector (its first O channels) equals the answer
  step's target. For tasks whose answers repeat input vectors (copy,
  associative recall: the data channels come first in their inputs); where
  no input matches, nothing is a hit. A cell written again later (by a head
  that stays put, say) holds the later vector and pays only for that one.

  Args:
    read_choices: [B, T, H_r] int cells the read heads chose.
    write_choices: [B, T, H_w] int cells the write heads chose.
    inputs: [B, T, I] with I >= O; targets: [B, T, O].
    mask: [B, T] 1 at the steps whose output is scored (answers), 0 at the
      others (data).

  Returns:
    [B, T, H_r] float: 1 where mask_t = 1 and s, the latest step <= t at
    which some write head chose the read's cell, has mask_s = 0 and
    inputs_s[:O] = targets_t; else 0.
  """
  mask = tf.cast(mask, tf.float32)
  num_outputs = tf.shape(targets)[-1]
  data = tf.cast(inputs[..., :num_outputs], tf.float32)
  targets = tf.cast(targets, tf.float32)
  same = tf.reduce_all(tf.equal(targets[:, :, None], data[:, None]), -1)
  steps = tf.shape(mask)[1]
  up_to = tf.linalg.band_part(tf.ones([steps, steps]), -1, 0)  # s <= t
  # [B, T (answer), S (step)]: the data steps that held step t's answer.
  source = tf.cast(same, tf.float32) * (1.0 - mask)[:, None, :]
  read_choices = tf.cast(read_choices, tf.int32)
  write_choices = tf.cast(write_choices, tf.int32)
  same_cell = tf.equal(read_choices[:, :, None, :, None],
                       write_choices[:, None, :, None, :])  # [B, T, S, Hr, Hw]
  written = tf.reduce_max(tf.cast(same_cell, tf.float32), axis=-1)
  written *= up_to[None, :, :, None]  # [B, T, S, H_r]
  # The latest such step: s + 1 where written, 0 elsewhere; its argmax.
  order = tf.range(1, steps + 1, dtype=tf.float32)[None, None, :, None]
  latest = tf.one_hot(tf.argmax(written * order, axis=2), steps, axis=2)
  hit = tf.reduce_sum(latest * written * source[..., None], axis=2)
  return hit * mask[..., None]


def read_credit(cells, read_choices, write_choices, inputs, targets, mask,
                memory_size):
  """[B, T, H_r] what a read reward pays each read choice (`cells` in
  READ_REWARD_CELLS). 'answer': every read choice is credited with the
  reads of answer cells from its step on (reads_of_answer_cells, summed to
  go): a head reaches the right cell through the moves before it, so the
  moves that wait during the input earn the later hits. 'written': the
  step's own read of a cell written before the answers
  (reads_of_written_cells), whatever the order."""
  if cells == "answer":
    hits = reads_of_answer_cells(read_choices, write_choices, inputs, targets,
                                 mask)
    return tf.cumsum(hits, axis=1, reverse=True)
  if cells == "written":
    return reads_of_written_cells(read_choices, write_choices, mask,
                                  memory_size)
  raise ValueError(f"cells must be one of {READ_REWARD_CELLS}, got {cells!r}")


def step_losses(logits, targets):
  """[B, T] per-step task loss: sigmoid cross-entropy summed over the bits.

  Args:
    logits: [B, T, O]; targets: [B, T, O] in [0, 1].
  """
  return tf.reduce_sum(tf.nn.sigmoid_cross_entropy_with_logits(
      labels=tf.cast(targets, logits.dtype), logits=logits), axis=-1)


def update_moments(mean, variance, values, decay, average=tf.reduce_mean):
  """Running mean and variance (exponential moving averages) after a batch.

      mean'     = decay * mean + (1 - decay) * E[x]
      variance' = decay * variance + (1 - decay) * E[(x - mean')^2]

  Args:
    mean, variance: scalars, the statistics so far.
    values: a tensor of new samples x.
    decay: in [0, 1); 0 uses this batch alone.
    average: E[.], the mean of a tensor (a cross-replica mean when the batch
      is split between replicas).

  Returns:
    (mean', variance').
  """
  new_mean = decay * mean + (1.0 - decay) * average(values)
  new_variance = decay * variance + (1.0 - decay) * average(
      tf.square(values - new_mean))
  return new_mean, new_variance


def linear_schedule(start, end, step, num_steps):
  """start at step 0, moving linearly to end at num_steps, then end.

  num_steps = 0 gives end from the start.
  """
  step = tf.cast(step, tf.float32)
  if not num_steps:
    return tf.constant(end, tf.float32)
  fraction = tf.minimum(step / float(num_steps), 1.0)
  return start + (end - start) * fraction


def geometric_schedule(start, end, step, num_steps):
  """start at step 0, moving geometrically (linearly in log) to end at num_steps."""
  log_value = linear_schedule(math.log(start), math.log(end), step, num_steps)
  return tf.exp(log_value)
