"""A hard head's addressing distribution from the list of written rows.

A hard head with content addressing draws its cell from w_t over all N cells
(eq. 5-9), which scores every row. In a 'constant' or 'zeros' memory every
row never written holds the initial value, so all of them share one content
logit z_0, and the chain keeps them equal wherever the rows written so far
and the previous weighting do not reach:

    w_c(y) = exp(z_y) / Z on the n listed (written) rows, b = exp(z_0) / Z
             on every other, Z = sum_listed exp(z_y) + (N - n) exp(z_0)
    w_g(y) = g w_c(y) + (1 - g) w_{t-1}(y) = g b + delta(y), where delta is
             non-zero only on D = the listed rows and supp w_{t-1}
    w~(x)  = sum_o s(o) w_g(x - o) = v + sum_o s(o) delta(x - o), with the
             background value v = g b sum_o s(o): w~ = v except on the
             special cells D + o (at most (n + |supp w_{t-1}|) S of them)
    w(x)   = w~(x)^gamma / (sum_special w~^gamma + (N - m) v^gamma), m the
             number of distinct special cells

so the distribution is exact in O((n + |supp w_{t-1}|) S^2) per head, with
no N-wide work: a written row's position in the list is found by a binary
search of the rows written, sorted (memtk.content_index.Places), not a
scan.
Special cells are enumerated as pairs (d, o) with repeats (two cells of D
closer than S share some); each counts 1 / (its number of pairs) wherever
distinct cells are summed.

Choices: greedy takes the most likely cell, the lowest of equal ones (as
tf.argmax over the dense w_t). A sampled cell has w_t's distribution, drawn
with one uniform number in two stages (the background's share, then a cell
within it or among the special ones), so it is not the cell the dense
inversion of the CDF would give for the same number; tests compare
distributions.
"""

from typing import NamedTuple

import tensorflow as tf

from memtk import addressing

_NONE = -1e30  # a logit that takes no share (finite: no NaN gradients)


class Written(NamedTuple):
  """What a step knows of the rows written before it."""
  ids: tf.Tensor  # [B, C] int32 the listed rows (-1: none)
  rows: tf.Tensor  # [B, C, W] their values in M_{t-1}
  places: object  # content_index.Places: a row's place in the list;
  # places >= the number listed here are later writes
  background: tf.Tensor  # [W] the value of every row not written
  num_cells: int  # N


class _Chain(NamedTuple):
  """The pieces of w~ that lookups of single cells need."""
  listed_weight: tf.Tensor  # [B, H, C] g (w_c - b) on the listed rows
  count: tf.Tensor  # [B] rows listed
  places: object  # content_index.Places
  previous_start: tf.Tensor  # [B, H] the first cell of w_{t-1}'s window
  previous_part: tf.Tensor  # [B, H, P] (1 - g) w_{t-1} on the window
  shift_weights: tf.Tensor  # [B, H, S]
  background: tf.Tensor  # [B, H] v
  num_cells: int


class Distribution(NamedTuple):
  """w_t of H heads on its special cells and everywhere else."""
  cells: tf.Tensor  # [B, H, M] int32 special cells, repeats allowed
  share: tf.Tensor  # [B, H, M] 1 / (pairs of that cell); 0: not a cell
  log_weights: tf.Tensor  # [B, H, M] log w_t at those cells
  log_background: tf.Tensor  # [B, H] log w_t at every other cell
  num_background: tf.Tensor  # [B, H] int32 N - m, the other cells
  chain: _Chain  # for lookups of single cells (greedy's free cells)


def _logsumexp_with(logits, extra_logit, extra_count):
  """log(sum exp(logits) + extra_count exp(extra_logit)), [B, H]."""
  extra = tf.where(extra_count > 0, extra_logit + tf.math.log(
      tf.maximum(tf.cast(extra_count, logits.dtype), 1.0)), _NONE)
  return tf.reduce_logsumexp(tf.concat([logits, extra[..., None]], -1), -1)


def _content(written, keys, strengths, num_cells):
  """w_c: on the listed rows [B, H, C] (0 where none), b [B, H] on every
  other; the listed mask [B, C] and its count [B]."""
  valid = written.ids >= 0
  count = tf.reduce_sum(tf.cast(valid, tf.int32), -1)
  key_norms = addressing.norms(keys)
  dots = tf.reduce_sum(keys[:, :, None, :] * written.rows[:, None], -1)
  cosine = dots / (key_norms[:, :, None]
                   * addressing.norms(written.rows)[:, None, :])
  background = tf.cast(written.background, keys.dtype)
  background_cosine = tf.reduce_sum(keys * background, -1) / (
      key_norms * addressing.norms(background))
  logits = tf.where(valid[:, None], strengths[:, :, None] * cosine, _NONE)
  background_logit = strengths * background_cosine
  log_z = _logsumexp_with(logits, background_logit,
                          (num_cells - count)[:, None])
  listed = tf.where(valid[:, None], tf.exp(logits - log_z[..., None]), 0.0)
  return listed, tf.exp(background_logit - log_z), valid, count


def _lookup(chain, cells):
  """(delta [B, H, Q], in D [B, H, Q] bool) at cells [B, H, Q]."""
  position = chain.places.find(cells)
  listed = tf.logical_and(position >= 0,
                          position < chain.count[:, None, None])
  safe = tf.where(listed, position, 0)
  delta = tf.where(listed, tf.gather(chain.listed_weight, safe, batch_dims=2),
                   0.0)
  window = chain.previous_part.shape[-1] or tf.shape(chain.previous_part)[-1]
  offset = tf.math.floormod(cells - chain.previous_start[..., None],
                            chain.num_cells)
  inside = offset < window
  delta += tf.where(inside, tf.gather(chain.previous_part,
                                      tf.minimum(offset, window - 1),
                                      batch_dims=2), 0.0)
  return delta, tf.logical_or(listed, inside)


def _offsets(num_shifts):
  return tf.range(num_shifts) - num_shifts // 2


def _shifted(chain, cells):
  """(w~ [B, H, Q], pairs [B, H, Q] int32) at cells [B, H, Q]: the shifted
  weight and how many pairs (d, o), d in D, name the cell."""
  num_shifts = chain.shift_weights.shape[-1]
  sources = tf.math.floormod(
      cells[..., None] - _offsets(num_shifts), chain.num_cells)  # [B,H,Q,S]
  shape = tf.shape(sources)
  delta, member = _lookup(chain, tf.reshape(sources, [shape[0], shape[1], -1]))
  delta = tf.reshape(delta, shape)
  member = tf.reshape(member, shape)
  shifted = chain.background[..., None] + tf.reduce_sum(
      chain.shift_weights[:, :, None, :] * delta, -1)
  return shifted, tf.reduce_sum(tf.cast(member, tf.int32), -1)


def _chain(written, keys, strengths, gates, shift_weights, previous_start,
           previous_weights):
  """(_Chain, the listed mask [B, C]) of one step."""
  num_cells = written.num_cells
  listed, back, valid, count = _content(written, keys, strengths, num_cells)
  g = gates[..., None]
  chain = _Chain(g * (listed - back[..., None]), count, written.places,
                 previous_start, (1.0 - g) * previous_weights, shift_weights,
                 gates * back * tf.reduce_sum(shift_weights, -1), num_cells)
  return chain, valid


def _special_cells(chain, valid, ids):
  """[B, H, M] the cells D + o, and [B, H, M] bool: a pair of D (a listed
  row, or a cell of w_{t-1}'s window not listed)."""
  num_shifts = chain.shift_weights.shape[-1]
  batch, heads = tf.shape(chain.previous_start)[0], tf.shape(
      chain.previous_start)[1]
  listed = tf.broadcast_to(ids[:, None], [batch, heads, tf.shape(ids)[1]])
  listed_ok = tf.broadcast_to(valid[:, None], tf.shape(listed))
  previous_ids = tf.math.floormod(
      chain.previous_start[..., None]
      + tf.range(tf.shape(chain.previous_part)[-1]), chain.num_cells)
  position = chain.places.find(previous_ids)
  previous_ok = tf.logical_not(tf.logical_and(
      position >= 0, position < chain.count[:, None, None]))
  sources = tf.concat([tf.where(listed_ok, listed, 0), previous_ids], -1)
  ok = tf.concat([listed_ok, previous_ok], -1)
  cells = tf.math.floormod(sources[..., None] + _offsets(num_shifts),
                           chain.num_cells)
  ok = tf.broadcast_to(ok[..., None], tf.shape(cells))
  flat = [batch, heads, -1]
  return tf.reshape(cells, flat), tf.reshape(ok, flat)


def distribution(written, keys, strengths, gates, shift_weights, gammas,
                 previous_start, previous_weights):
  """w_t (module docstring) of H heads.

  Args:
    written: Written, the rows written before this step.
    keys: [B, H, W]; strengths, gates, gammas: [B, H]; shift_weights:
      [B, H, S]: the heads' parameters.
    previous_start: [B, H] int32 the first of P consecutive cells (mod N,
      P <= N) that hold w_{t-1}'s support: w_0's initial window, or a hard
      head's previous cell (P = 1).
    previous_weights: [B, H, P] w_{t-1} on them (the rest of w_{t-1} is 0).

  Returns:
    Distribution.
  """
  chain, valid = _chain(written, keys, strengths, gates, shift_weights,
                        previous_start, previous_weights)
  cells, ok = _special_cells(chain, valid, written.ids)
  shifted, pairs = _shifted(chain, cells)
  share = tf.where(ok, 1.0 / tf.cast(tf.maximum(pairs, 1), shifted.dtype), 0.0)
  num_special = tf.cast(tf.round(tf.reduce_sum(share, -1)), tf.int32)
  num_background = chain.num_cells - num_special
  log_weights = gammas[..., None] * tf.math.log(
      tf.maximum(shifted, addressing.TINY))
  log_background = gammas * tf.math.log(
      tf.maximum(chain.background, addressing.TINY))
  log_z = _logsumexp_with(
      tf.where(ok, log_weights
               + tf.math.log(tf.maximum(share, addressing.TINY)), _NONE),
      log_background, num_background)
  return Distribution(cells, share, log_weights - log_z[..., None],
                      log_background - log_z, num_background, chain)


def log_prob(dist, indices):
  """[B, H] log w_t(i) of cells `indices` [B, H], floored at log(1e-30).

  A special cell's weight is among the distribution's, any other cell's is
  the background's: no lookup of places after the choice."""
  match = tf.logical_and(tf.equal(dist.cells, indices[..., None]),
                         dist.share > 0)
  log_weight = tf.where(
      tf.reduce_any(match, -1),
      tf.reduce_max(tf.where(match, dist.log_weights, _NONE), -1),
      dist.log_background)
  return tf.maximum(log_weight, tf.math.log(
      tf.constant(addressing.TINY, log_weight.dtype)))


def entropy(dist):
  """[B, H] -sum_i w(i) log w(i) over all N cells."""
  floor = tf.math.log(tf.constant(addressing.TINY, dist.log_weights.dtype))
  special = -tf.reduce_sum(dist.share * tf.exp(dist.log_weights)
                           * tf.maximum(dist.log_weights, floor), -1)
  rest = -(tf.cast(dist.num_background, special.dtype)
           * tf.exp(dist.log_background)
           * tf.maximum(dist.log_background, floor))
  return special + rest


def _is_special(chain, cells):
  """[B, H, Q] bool: cells [B, H, Q] are among D + o."""
  return _shifted(chain, cells)[1] > 0


def greedy(dist):
  """[B, H] int32 the most likely cell, the lowest of equal ones."""
  n = dist.chain.num_cells
  special = dist.share > 0
  best = tf.reduce_max(tf.where(special, dist.log_weights, _NONE), -1)
  lowest_best = tf.reduce_min(tf.where(
      tf.logical_and(special, tf.equal(dist.log_weights, best[..., None])),
      dist.cells, n), -1)
  # The lowest background cell is 0 or follows a special one.
  after = tf.concat([tf.zeros_like(dist.cells[..., :1]), dist.cells + 1], -1)
  after = tf.minimum(after, n - 1)
  free = tf.logical_and(tf.logical_not(_is_special(dist.chain, after)),
                        tf.concat([tf.ones_like(special[..., :1]),
                                   special], -1))
  lowest_free = tf.reduce_min(tf.where(free, after, n), -1)
  has_free = dist.num_background > 0
  back = dist.log_background
  take_free = tf.logical_and(has_free, tf.logical_or(
      back > best, tf.logical_and(tf.equal(back, best),
                                  lowest_free < lowest_best)))
  return tf.where(take_free, lowest_free, lowest_best)


def sample(dist, uniform):
  """[B, H] int32 cells drawn from w_t with U(0, 1) noise `uniform` [B, H]:
  the background with its share of the mass (then its j-th cell, j uniform),
  else a special cell in proportion to its weight."""
  weights = dist.share * tf.exp(dist.log_weights)  # [B, H, M]
  back = tf.cast(dist.num_background, weights.dtype) * tf.exp(
      dist.log_background)
  total = tf.reduce_sum(weights, -1) + back
  target = uniform * total
  # Special: the first pair whose running sum passes what is left.
  rest = target - back
  running = tf.cumsum(weights, -1)
  last = tf.shape(weights)[-1] - 1 - tf.argmax(
      tf.cast(tf.reverse(weights, [-1]) > 0, tf.int32), -1,
      output_type=tf.int32)
  pick = tf.minimum(tf.reduce_sum(
      tf.cast(running <= rest[..., None], tf.int32), -1), last)
  special_cell = tf.gather(dist.cells, pick, batch_dims=2)
  # Background: its j-th cell, the x with x - (special cells <= x) = j.
  j = tf.cast(target / tf.maximum(tf.exp(dist.log_background),
                                  addressing.TINY), tf.int32)
  j = tf.clip_by_value(j, 0, tf.maximum(dist.num_background - 1, 0))
  background_cell = _nth_free(dist, j)
  use_back = tf.logical_and(dist.num_background > 0, target < back)
  return tf.where(use_back, background_cell, special_cell)


def _nth_free(dist, j):
  """[B, H] the j-th (from 0) cell that is not special: the least fixed
  point of x = j + (special cells <= x), reached from x = j."""
  special = dist.share > 0

  def below(x):
    return tf.cast(tf.round(tf.reduce_sum(tf.where(
        tf.logical_and(special, dist.cells <= x[..., None]), dist.share,
        0.0), -1)), tf.int32)

  def body(x, _):
    return j + below(x), x

  x, _ = tf.while_loop(lambda x, previous: tf.reduce_any(x != previous), body,
                       (j + below(j), j),
                       maximum_iterations=tf.shape(dist.cells)[-1] + 1)
  return tf.minimum(x, dist.chain.num_cells - 1)
