"""Where the row-access loop keeps the memory (memtk.sparse_unroll).

Both stores hold M_t as the loop runs forward, give the rows a step touches,
take them back after the write, undo a step in the backward pass and carry
the adjoint dL/dM_t; rows are named by slots, indices [B, R] (R = H K: every
head's K rows).

  DenseStore (heads with content addressing, or a random initial memory):
    one [B, N, W] buffer. Content scoring reads all of it (the one O(N W)
    term, with the rows' norms kept up to date as rows change); the rows go
    back by a scatter that depends on every read of the step, so XLA updates
    the buffer in place instead of copying it.
  IndexedStore (sparse heads with a content_index): the dense buffer and an
    index of its rows (memtk.content_index: the rows written so far, or
    hash tables), so a content lookup scores candidate rows, not all N.
  LogStore (heads without content, constant or learned initial memory): no
    [B, N, W] buffer at all. A row reads as its latest value in a log of the
    rows touched so far, or its initial value; nothing scales with N.
"""

import tensorflow as tf

from memtk import addressing
from memtk import content_index
from memtk import memory as memory_lib


class DenseStore:
  """The memory as one [B, N, W] buffer, updated in place (inside XLA).

  Content addressing reads the whole buffer, so heads with content use this
  store; it keeps the rows' norms [B, N] up to date as rows change, which
  saves the content scores one pass over the memory per step. The adjoint
  dL/dM_t is one [B, N, W] tensor.
  """

  def __init__(self, memory):
    self._initial = memory  # [B, N, W] M_0

  def initial_state(self):
    return self._initial, addressing.norms(self._initial)

  def memory(self, state):
    """(memory [B, N, W], its row norms [B, N])."""
    return state

  def rows(self, state, t, indices):
    del t
    return memory_lib.read_rows(state[0], indices)

  def _set_rows(self, state, indices, rows):
    return (memory_lib.scatter_rows(state[0], indices, rows),
            memory_lib.scatter_rows(state[1], indices, addressing.norms(rows)))

  def write(self, state, t, indices, touched):
    # Every touched row, read rows included (rewritten with the value they
    # hold): the scatter then depends on every read of this step's memory,
    # so XLA can order those reads first and update the buffer in place.
    del t
    return self._set_rows(state, indices, touched)

  def undo(self, state, t, indices, old_rows):
    """M_{t-1} from M_t: the touched rows get their old values back."""
    del t
    return self._set_rows(state, indices, old_rows)

  def initial_adjoint(self):
    return tf.zeros_like(self._initial)

  def d_touched(self, d_state, t, indices):
    """dL/dM_t at the touched rows, counted once for heads sharing a row."""
    del t
    first = memory_lib.first_of_equal(indices, indices, diagonal=True)
    return (memory_lib.read_rows(d_state, indices)
            * tf.cast(first, d_state.dtype)[:, :, None])

  def d_update(self, d_state, state, t, indices, d_old):
    """dL/dM_{t-1} from dL/dM_t: a touched row reaches the loss only through
    the slots' copies of it, d_old [B, R, W]."""
    del state, t
    same = tf.cast(tf.equal(indices[:, :, None], indices[:, None, :]),
                   d_old.dtype)
    return memory_lib.scatter_rows(
        d_state, indices, tf.einsum("bhk,bkw->bhw", same, d_old))

  def add_dense(self, d_state, d_memory):
    """Adds a dense gradient [B, N, W] (hard heads' content scores)."""
    return d_state + d_memory

  def add_rows(self, d_state, indices, d_rows):
    """Adds gradients d_rows [B, R, W] at rows indices [B, R] of M_{t-1}."""
    batch = tf.broadcast_to(
        tf.range(tf.shape(indices)[0], dtype=indices.dtype)[:, None],
        tf.shape(indices))
    return tf.tensor_scatter_nd_add(d_state, tf.stack([batch, indices], -1),
                                    d_rows)

  def d_source(self, d_state):
    return d_state


class IndexedStore(DenseStore):
  """The dense buffer and an index of its rows for content lookups.

  The state is (memory, norms, the index's state). A write files the rows
  the write heads touched (slots from `first_write_slot` on: read heads
  come first) in the index; `memory(state)` gives the lookup with it.
  Undoing a step leaves the index as it is: the backward pass redoes each
  step on the support its forward pass kept and never looks up.
  `capacity`: the most distinct rows a sequence writes; `window`: the
  first rows of the memory that hold the K lowest unwritten ones
  (memtk.content_index).
  """

  def __init__(self, memory, index, first_write_slot, capacity, window):
    super().__init__(memory)
    self._index, self._first_write_slot = index, first_write_slot
    self._capacity, self._window = capacity, window

  def initial_state(self):
    memory, norms = super().initial_state()
    shape = tf.shape(memory)
    return memory, norms, self._index.initial_state(
        shape[0], memory.shape[1] or shape[1], self._capacity)

  def memory(self, state):
    """(memory [B, N, W], row norms [B, N], content_index.Lookup)."""
    return state[0], state[1], content_index.Lookup(self._index, state[2],
                                                    self._window)

  def write(self, state, t, indices, touched):
    memory, norms = super().write(state[:2], t, indices, touched)
    first = self._first_write_slot
    return memory, norms, self._index.insert(state[2], indices[:, first:],
                                             touched[:, first:])

  def undo(self, state, t, indices, old_rows):
    return super().undo(state[:2], t, indices, old_rows) + (state[2],)


class LogStore:
  """The memory without an [B, N, W] buffer, for heads without content.

  Such heads only ever read the rows they choose, so the memory is kept as
  its initial value (a constant, or the learned [N, W] matrix) plus a log of
  the rows every step touched: L = T R entries of (index, row), time-major,
  R rows per step (H heads times K rows each).
  Row i reads as its latest logged value before step t, or its initial
  value. Per step that is a comparison with the log's indices, O(T R^2)
  integers, and O(R W) floats: nothing scales with N, not even one fill of
  the memory per sequence. The adjoint is one [L, B, W] tensor (and [N, W]
  for a learned initial memory).
  """

  def __init__(self, source, batch, num_steps, num_rows, word_size):
    self._source = source  # a scalar (every cell's value) or [N, W]
    self._learned = len(source.shape) == 2
    self._batch, self._rows, self._width = batch, num_rows, word_size
    self._length = num_steps * num_rows

  def initial_state(self):
    return (tf.fill([self._length, self._batch], -1),
            tf.zeros([self._length, self._batch, self._width],
                     self._source.dtype))

  def memory(self, state):
    raise ValueError("heads with content addressing need the dense store")

  def _slots(self, t):
    """[H, 1] the log entries of step t."""
    return (t * self._rows + tf.range(self._rows))[:, None]

  def _latest(self, state, t, indices):
    """([B, H, 2] where in the log the latest entry before step t holding
    each head's row is, [B, H] bool whether there is one)."""
    earlier = tf.range(self._length) < t * self._rows
    match = tf.logical_and(
        tf.equal(tf.transpose(state[0])[:, None, :], indices[:, :, None]),
        earlier)
    latest = tf.argmax(tf.where(match, tf.range(self._length), -1), -1,
                       output_type=tf.int32)
    batch = tf.broadcast_to(tf.range(self._batch)[:, None], tf.shape(latest))
    return tf.stack([latest, batch], -1), tf.reduce_any(match, -1)

  def rows(self, state, t, indices):
    where, logged = self._latest(state, t, indices)
    if self._learned:
      initial = tf.gather(self._source, indices)
    else:
      initial = tf.fill([self._batch, tf.shape(indices)[1], self._width],
                        self._source)
    return tf.where(logged[..., None], tf.gather_nd(state[1], where), initial)

  def write(self, state, t, indices, touched):
    slots = self._slots(t)
    return (tf.tensor_scatter_nd_update(state[0], slots, tf.transpose(indices)),
            tf.tensor_scatter_nd_update(state[1], slots,
                                        tf.transpose(touched, [1, 0, 2])))

  def undo(self, state, t, indices, old_rows):
    del t, indices, old_rows  # reads before step t never see later entries
    return state

  def initial_adjoint(self):
    d_log = tf.zeros([self._length, self._batch, self._width],
                     self._source.dtype)
    return d_log, tf.zeros_like(self._source)

  def d_touched(self, d_state, t, indices):
    del indices  # a later read takes its adjoint to one entry only
    return tf.transpose(tf.gather_nd(d_state[0], self._slots(t)), [1, 0, 2])

  def d_update(self, d_state, state, t, indices, d_old):
    d_log, d_initial = d_state
    where, logged = self._latest(state, t, indices)
    zeros = tf.zeros_like(d_old)
    d_log = tf.tensor_scatter_nd_add(
        d_log, where, tf.where(logged[..., None], d_old, zeros))
    if self._learned:
      d_initial += tf.math.unsorted_segment_sum(
          tf.reshape(tf.where(logged[..., None], zeros, d_old),
                     [-1, self._width]),
          tf.reshape(indices, [-1]), tf.shape(self._source)[0])
    return d_log, d_initial

  def d_source(self, d_state):
    return d_state[1] if self._learned else None
