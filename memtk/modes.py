"""Access modes: how a head turns its parameters into rows and weights.

Soft, hard and sparse access differ only there. Each mode is one small object
with the same interface, owned by the cell (`NTMCell.mode`); the cell and the
model ask it instead of branching on the mode.

    name, choices, default_choice
    estimated                                  trained through an estimator
    initial_cells(cell)                        the cells w_0 may cover
    dense_step(cell, state, p, choice, ...)    one step on the dense state
        (memtk.unroll: traces, keras.layers.RNN, a hard curriculum's batches)
    uses_rows(choice, soft, collect)           whether memtk.sparse_unroll runs it

and for the row-access loop (hard and sparse):

    support_size(cell)                         K: rows a head touches per step
    first_previous(cell, initial)              w_0 as the row loop carries it
    forward_memory / backward_memory           what its selection reads
    differentiable_memory(memory)              which of that the backward
                                               pass differentiates
    select(cell, p, previous, choice, noise, memory, fixed)
        -> Selection: the rows [B, H, K], their weights, the estimator's
           statistics, what the backward pass needs to redo it (`fixed`)
           and w_t as the next step's `previous`
    add_memory_gradient(store, d_state, fixed, grads)
                                               where the gradient of what
                                               the selection read goes

In the row loop hard access is the K = 1 case with weight 1 on the chosen
cell (the choice is not differentiable; REINFORCE uses its log-probability),
and sparse access the K-row case with differentiable weights.
"""

from typing import Any, NamedTuple

import tensorflow as tf

from memtk import access
from memtk import addressing
from memtk import estimators
from memtk import hard_index
from memtk import memory as memory_lib
from memtk import stores


class Selection(NamedTuple):
  """What a head's addressing chose at one step of the row loop."""
  indices: tf.Tensor  # [B, H, K] int32 rows touched, read heads first
  weights: tf.Tensor  # [B, H, K] the weights on them (hard: 1)
  log_prob: tf.Tensor  # [B, H] log w_t(i_t) (0 when nothing is sampled)
  entropy: tf.Tensor  # [B, H] entropy of w_t
  fixed: Any  # int tensors that redo this selection in the backward pass
  previous: Any  # w_t as the next step's `previous`


def _zeros_log_prob(weights):
  return tf.zeros(tf.shape(weights)[:2], weights.dtype)


def sparse_entropy(weights):
  """[B, H] entropy of weightings given on their supports [B, H, K]."""
  return -tf.reduce_sum(
      weights * tf.math.log(tf.maximum(weights, addressing.TINY)), -1)


class SoftMode:
  """Every head attends to every cell (fully differentiable, O(N W))."""

  name = "soft"
  choices = ("soft",)
  default_choice = "soft"
  estimated = False  # trained by plain backpropagation

  def initial_cells(self, cell):
    """The cells w_0 may cover: the cell's initial window."""
    return cell.initial_window

  def uses_rows(self, choice, soft, collect):
    del choice, soft, collect
    return False

  def dense_step(self, cell, state, p, choice, noise=None, temperature=1.0,
                 soft=None, gumbel=None):
    """(w_t [B, H, N], M_t, r_t, log_prob [B, H], entropy [B, H])."""
    del choice, noise, temperature, soft, gumbel
    if cell.content_addressing:  # the fused access computes w_t itself
      weights, memory, read = access.soft_access(
          state.memory, state.weights, p.key, p.strength, p.gate, p.shift,
          p.gamma, p.erase, p.add, cell.num_read_heads, cell.empty_rows_as)
    else:
      weights = addressing.address_by_shift(state.weights, p.shift, p.gamma)
      memory, read = access.dense_access(state.memory, weights, p.erase, p.add,
                                         cell.num_read_heads)
    return (weights, memory, read, _zeros_log_prob(weights),
            estimators.entropy(weights))


class HardMode:
  """Each head reads and writes one chosen cell (see memtk.cell)."""

  name = "hard"
  choices = ("greedy", "sample", "gumbel", "soft")
  default_choice = "greedy"
  estimated = True  # trained through a gradient estimator

  def support_size(self, cell):
    del cell
    return 1

  def initial_cells(self, cell):
    """The cells w_0 may cover: the cell's initial window."""
    return cell.initial_window

  def uses_rows(self, choice, soft, collect):
    return choice in ("greedy", "sample") and soft is None and collect is None

  def dense_step(self, cell, state, p, choice, noise=None, temperature=1.0,
                 soft=None, gumbel=estimators.GumbelForm()):
    """(w_t [B, H, N] (one-hot unless soft), M_t, r_t, log w_t(i_t), entropy).

    `soft` (an optional scalar bool tensor): where true the step runs softly
    (the curriculum's soft batches), through dense one-hot access.
    `gumbel`: the estimators.GumbelForm of a 'gumbel' choice: its write
    heads' relaxed gradient through the cell written only ('chosen') or
    every cell ('relaxed'), its forward pass on the most likely cell
    ('greedy') or the Gumbel-max sample ('sample').
    """
    distribution = cell.distribution(state.memory, state.weights, p)
    entropy = estimators.entropy(distribution)
    if choice == "soft":
      memory, read = access.dense_access(state.memory, distribution, p.erase,
                                         p.add, cell.num_read_heads)
      return (distribution, memory, read, _zeros_log_prob(distribution),
              entropy)
    if choice == "gumbel":
      writes = tf.range(cell.num_heads) >= cell.num_read_heads
      indices, weights = estimators.gumbel_straight_through(
          distribution, noise, temperature,
          chosen_only=writes if gumbel.writes == "chosen" else None,
          forward=gumbel.forward)
    else:
      indices = (estimators.greedy(distribution) if choice == "greedy" else
                 estimators.sample(tf.stop_gradient(distribution), noise))
      weights = tf.one_hot(indices, cell.memory_size, dtype=distribution.dtype)
    log_prob = estimators.log_prob(distribution, indices)
    if soft is not None:
      weights = tf.where(soft, distribution, weights)
      log_prob = tf.where(soft, tf.zeros_like(log_prob), log_prob)
    if choice == "gumbel" or soft is not None:
      memory, read = access.dense_access(state.memory, weights, p.erase,
                                         p.add, cell.num_read_heads)
    else:
      memory, read = access.hard_access(state.memory, indices, p.erase, p.add,
                                        cell.num_read_heads)
    return weights, memory, read, log_prob, entropy

  # --- the row loop --------------------------------------------------------

  def first_previous(self, cell, initial):
    """w_0: the dense [B, H, N] weighting (content), else cell 0 [B, H]."""
    if cell.content_addressing:
      return tf.identity(initial.weights)
    return tf.zeros(tf.shape(initial.weights)[:2], tf.int32)

  def forward_memory(self, cell, store, state):
    return store.memory(state) if cell.content_addressing else ()

  def backward_memory(self, cell, store, state, t, fixed):
    """The memory M_{t-1} (watched by the backward pass), with its norms."""
    del t, fixed
    return self.forward_memory(cell, store, state)

  def differentiable_memory(self, memory):
    return list(memory[:1])  # the norms follow the memory (access.address)

  def add_memory_gradient(self, store, d_state, fixed, grads):
    """Content scores: a dense gradient (REINFORCE needs all of w_t)."""
    del fixed
    return store.add_dense(d_state, grads[0]) if grads else d_state

  def select(self, cell, p, previous, choice, noise, memory, fixed=None):
    """One cell per head: greedy or sampled from w_t, or `fixed` ([B, H])."""
    if cell.content_addressing:
      memory, norms = memory
      if previous.dtype.is_integer:
        previous = tf.one_hot(previous, cell.memory_size, dtype=memory.dtype)
      weights = cell.distribution(memory, previous, p, norms)
      candidates = None
    else:
      # w_t = sharpen(shift(one_hot(i_{t-1}))) is zero outside the S cells
      # i_{t-1} + o: its distribution over those cells is sharpen(s_t).
      candidates, order = self._shift_candidates(cell, previous)
      weights = tf.gather(addressing.sharpen(p.shift, p.gamma), order,
                          batch_dims=2)
    if fixed is None:
      slots = (estimators.greedy(weights) if choice == "greedy" else
               estimators.sample(tf.stop_gradient(weights), noise))
      indices = (slots if candidates is None else
                 tf.gather(candidates, slots, batch_dims=2))
    else:
      indices = fixed
      slots = indices if candidates is None else tf.argmax(
          tf.cast(tf.equal(candidates, indices[:, :, None]), tf.int32),
          axis=-1, output_type=tf.int32)
    return Selection(indices[:, :, None],
                     tf.ones_like(indices[:, :, None], dtype=p.add.dtype),
                     estimators.log_prob(weights, slots),
                     estimators.entropy(weights), indices, indices)

  @staticmethod
  def _shift_candidates(cell, positions):
    """[B, H, S] the cells a head without content can move to, in cell
    order (the order of the dense distribution, so a choice from the same
    noise picks the same cell), and [B, H, S] int the offsets' slots."""
    num_shifts = 2 * cell.shift_range + 1
    offsets = tf.range(num_shifts, dtype=positions.dtype) - cell.shift_range
    cells = tf.math.floormod(positions[:, :, None] + offsets, cell.memory_size)
    order = tf.argsort(cells, axis=-1, stable=True)
    return tf.gather(cells, order, batch_dims=2), order


class IndexedHardMode(HardMode):
  """A hard head with content addressing that finds the rows written so far
  in the 'written' index (memtk.content_index.WrittenRows) instead of
  scoring all N: the same distribution w_t, computed on the cells the
  written rows and w_{t-1} reach (memtk.hard_index), O(T H_w (W + S^2))
  per head and step. The row loop only: traces, soft and Gumbel steps scan
  (dense_step).
  """

  def first_previous(self, cell, initial):
    """w_0 as (its window's first cell [B, H], weights [B, H, P] on cells
    0 .. P - 1, the initial window)."""
    batch = tf.shape(initial.weights)[0]
    weights = cell.initial_support_weights()  # [H, P]
    shape = tf.concat([[batch], tf.shape(weights)], 0)
    return (tf.zeros(shape[:2], tf.int32),
            tf.broadcast_to(tf.cast(weights, initial.weights.dtype)[None],
                            shape))

  def backward_memory(self, cell, store, state, t, fixed):
    """The listed rows of step t at M_{t-1} (watched), their ids and the
    places of the rows written (a place once given is kept, so the final
    ones serve)."""
    del cell, t
    memory = store.memory(state)  # stores.ListedRows
    ids = fixed[1]
    return (memory.gather(ids), ids, memory.listing.places)

  def differentiable_memory(self, memory):
    return list(memory[:1])

  def add_memory_gradient(self, store, d_state, fixed, grads):
    """The listed rows' gradient, added at those rows."""
    if not grads:
      return d_state
    return store.add_rows(d_state, tf.maximum(fixed[1], 0), grads[0])

  def select(self, cell, p, previous, choice, noise, memory, fixed=None):
    """One cell per head drawn from w_t (memtk.hard_index); `memory` is the
    forward memory (stores.ListedRows) or, with `fixed`, backward_memory's."""
    if fixed is None:
      ids = memory.listing.rows[:, :-1]
      rows = memory.gather(ids)
      places = memory.listing.places
    else:
      rows, ids, places = memory
    written = hard_index.Written(ids, rows, places,
                                 cell.constant_row(rows.dtype),
                                 cell.memory_size)
    if isinstance(previous, tuple):
      previous_start, previous_weights = previous
    else:  # the cell chosen at t - 1
      previous_start = previous
      previous_weights = tf.ones(tf.concat([tf.shape(previous), [1]], 0),
                                 p.add.dtype)
    dist = hard_index.distribution(
        written, p.key, p.strength, p.gate, p.shift, p.gamma, previous_start,
        previous_weights)
    if fixed is not None:
      indices = fixed[0]
    elif choice == "greedy":
      indices = hard_index.greedy(dist)
    else:
      indices = hard_index.sample(dist, noise)
    return Selection(indices[:, :, None],
                     tf.ones_like(indices[:, :, None], dtype=p.add.dtype),
                     hard_index.log_prob(dist, indices),
                     hard_index.entropy(dist), (indices, ids), indices)


class SparseMode:
  """Each head attends to at most K cells with differentiable weights
  (Sparse Access Memory; the chain in memtk.addressing)."""

  name = "sparse"
  choices = ("sparse",)
  default_choice = "sparse"
  estimated = False

  def __init__(self, k):
    self.k = k

  def support_size(self, cell):
    """K, or N for a memory smaller than K (then sparse is soft)."""
    return min(self.k, cell.memory_size)

  def initial_cells(self, cell):
    """The cells w_0 may cover: 0 .. K - 1."""
    return self.support_size(cell)

  def uses_rows(self, choice, soft, collect):
    del choice, soft
    return collect is None

  def initial_support(self, cell, batch):
    """(indices [B, H, K], w_0 on them): cells 0 .. K - 1."""
    k = self.support_size(cell)
    indices = tf.broadcast_to(tf.range(k), [batch, cell.num_heads, k])
    weights = tf.broadcast_to(cell.initial_support_weights()[None],
                              [batch, cell.num_heads, k])
    return indices, weights

  def select(self, cell, p, previous, choice, noise, memory, fixed=None):
    """w_t on its K cells (addressing.sparse_address); `memory` is the
    memory and norms to scan (forward) or, with `fixed`, the rows of the
    content support (backward)."""
    del choice, noise
    k = self.support_size(cell)
    previous_indices, previous_weights = previous
    content_indices = content = None
    if cell.content_addressing:
      if fixed is None:
        content_indices, rows = self._content_cells(cell, p, memory, k)
      else:
        content_indices, rows = fixed[1], memory[0]
      content = addressing.sparse_content_weights(rows, p.key, p.strength,
                                                  cell.empty_rows_as)
    indices, weights = addressing.sparse_address(
        content_indices, content, previous_indices, previous_weights, p.gate,
        p.shift, p.gamma, cell.memory_size, k,
        indices=None if fixed is None else fixed[0])
    kept = (indices,) + ((content_indices,) if cell.content_addressing else ())
    return Selection(indices, weights, _zeros_log_prob(weights),
                     sparse_entropy(weights), kept, (indices, weights))

  @staticmethod
  def _content_cells(cell, p, memory, k):
    """([B, H, K] the content support, [B, H, K, W] its rows): the K best
    rows of the exact scan of `memory` (memory, norms), or of the
    candidates of its index (stores.ListedRows)."""
    if isinstance(memory, stores.ListedRows):
      cells = memory.top_cells(p.key, k)
      return cells, memory.gather(cells)
    memory, norms = memory
    cosine, _, _ = addressing.cosine_similarity(memory, p.key, norms)
    if cell.empty_rows_as is not None:  # rank by w_c's logits
      cosine = addressing.content_scores(
          cosine, p.strength, addressing.log_presence(norms)[:, None, :])
    cells = addressing.top_cells(cosine, k)
    return cells, tf.gather(memory, cells, batch_dims=1)

  def dense_step(self, cell, state, p, choice=None, noise=None,
                 temperature=1.0, soft=None, gumbel=None):
    """The straightforward dense step with the same supports: w_t scattered
    into [B, H, N], then the dense write and read (autodiff throughout)."""
    del choice, noise, temperature, soft, gumbel
    k = self.support_size(cell)
    previous = addressing.top_indices(state.weights, k)
    previous = (previous, tf.gather(state.weights, previous, batch_dims=2))
    memory = (state.memory, addressing.norms(state.memory))
    selection = self.select(cell, p, previous, None, None,
                            memory if cell.content_addressing else ())
    weights = tf.reduce_sum(
        tf.one_hot(selection.indices, cell.memory_size,
                   dtype=selection.weights.dtype)
        * selection.weights[..., None], 2)
    new_memory, read = access.dense_access(state.memory, weights, p.erase,
                                           p.add, cell.num_read_heads)
    return (weights, new_memory, read, selection.log_prob, selection.entropy)

  # --- the row loop --------------------------------------------------------

  def first_previous(self, cell, initial):
    return self.initial_support(cell, tf.shape(initial.weights)[0])

  def forward_memory(self, cell, store, state):
    return store.memory(state) if cell.content_addressing else ()

  def backward_memory(self, cell, store, state, t, fixed):
    """The rows of the content support at M_{t-1} (watched), nothing else:
    the backward pass does no N-wide work."""
    if not cell.content_addressing:
      return ()
    content_indices = fixed[1]  # [B, H, K]
    rows = store.rows(state, t, memory_lib.as_slots(content_indices))
    return (tf.reshape(rows, tf.concat([tf.shape(content_indices),
                                        [cell.word_size]], 0)),)

  def differentiable_memory(self, memory):
    return list(memory)

  def add_memory_gradient(self, store, d_state, fixed, grads):
    """The content rows' gradient, added at their K rows per head."""
    if not grads:
      return d_state
    slots = memory_lib.as_slots(fixed[1])  # the content rows
    return store.add_rows(d_state, slots, tf.reshape(
        grads[0], tf.concat([tf.shape(slots), [-1]], 0)))


def make_mode(addressing_mode, sparse_k, content_index=None):
  """The mode object of `addressing` ('soft', 'hard' or 'sparse'), with a
  content index (memtk.content_index) where it changes the mode."""
  if addressing_mode == "soft":
    return SoftMode()
  if addressing_mode == "hard":
    return HardMode() if content_index is None else IndexedHardMode()
  return SparseMode(sparse_k)
