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
  ListStore (heads with a content_index): no [B, N, W] buffer; the rows
    written so far, in a list found by a binary search of them sorted, and an
    index of them (memtk.content_index: the list itself, or hash tables),
    so a content lookup scores candidate rows, not all N.
  LogStore (heads without content, constant or learned initial memory): no
    [B, N, W] buffer at all. A row reads as its latest value in a log of the
    rows touched so far, or its initial value; nothing scales with N.
"""

from typing import NamedTuple

import tensorflow as tf

from memtk import addressing
from memtk import content_index
from memtk import memory as memory_lib


def _scatter_add(tensor, indices, rows):
  """tensor [B, N, W] plus rows [B, R, W] at rows indices [B, R]."""
  batch = tf.broadcast_to(
      tf.range(tf.shape(indices)[0], dtype=indices.dtype)[:, None],
      tf.shape(indices))
  return tf.tensor_scatter_nd_add(tensor, tf.stack([batch, indices], -1),
                                  rows)


def _summed_over_shared_rows(indices, d_old):
  """[B, R, W]: for each slot of rows indices [B, R], the sum of d_old
  [B, R, W] over the slots naming its row (a row's gradient through all
  the step's copies of it)."""
  same = tf.cast(tf.equal(indices[:, :, None], indices[:, None, :]),
                 d_old.dtype)
  return tf.einsum("bhk,bkw->bhw", same, d_old)


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

  def initial_adjoint(self, final_state):
    del final_state
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
    return memory_lib.scatter_rows(d_state, indices,
                                   _summed_over_shared_rows(indices, d_old))

  def add_dense(self, d_state, d_memory):
    """Adds a dense gradient [B, N, W] (hard heads' content scores)."""
    return d_state + d_memory

  def add_rows(self, d_state, indices, d_rows):
    """Adds gradients d_rows [B, R, W] at rows indices [B, R] of M_{t-1}."""
    return _scatter_add(d_state, indices, d_rows)

  def d_source(self, d_state):
    return d_state


def _places(places, ids, unused):
  """([B, ...] the places of rows ids [B, ...] (content_index.Places;
  `unused` for a row not listed), [B, ...] bool listed)."""
  place = places.find(ids)
  listed = place >= 0
  return tf.where(listed, place, unused), listed


class ListedRows(NamedTuple):
  """The memory as a step's lookups see it in a ListStore."""
  values: tf.Tensor  # [B, C + 1, W] the listed rows by place; place C unused
  listing: content_index.WrittenState  # the rows written, their places
  lookup: content_index.Lookup  # the content index
  constant: tf.Tensor  # [W] every other row's value

  def places(self, ids):
    """([B, ...] int32 the places of rows ids [B, ...] (C: not listed),
    [B, ...] bool listed)."""
    return _places(self.listing.places, ids, tf.shape(self.values)[1] - 1)

  def gather(self, ids):
    """[B, ..., W] the rows ids [B, ...] (>= 0)."""
    place, listed = self.places(ids)
    flat = tf.reshape(place, [tf.shape(place)[0], -1])
    rows = tf.reshape(tf.gather(self.values, flat, batch_dims=1),
                      tf.concat([tf.shape(place), [-1]], 0))
    return tf.where(listed[..., None], rows,
                    tf.cast(self.constant, rows.dtype))

  def top_cells(self, keys, k):
    """[B, H, k] the content support of keys [B, H, W] (content_index)."""
    return self.lookup.top_cells(self.gather, keys, k)


class ListStore:
  """The rows written so far, for heads with a content index.

  A content index needs a memory whose rows start with one value
  ('constant' or 'zeros'), so a row never written holds that value and only
  the written rows need keeping: in the order they were first written
  ([B, C + 1, W], C the most distinct rows a sequence writes: T H_w K),
  found by a binary search of the rows sorted (the 'written' index,
  content_index.WrittenRows, kept for every index kind; 'hash' keeps its
  tables beside it). Nothing in the state has the memory's size N, so a
  step costs the same at every N. The adjoint is [B, C + 1, W]
  too: a row never written holds the constant, which no weight moves.
  The state is (values, the list's state, the hash index's state or ()).
  Undoing a step puts the old rows back and leaves the list and index as
  they are: the backward pass redoes each step on the selection its
  forward pass kept, and a row listed by a later write holds its old value
  at its place. `capacity`, `window`: as content_index.sizes.
  """

  def __init__(self, constant, index, first_write_slot, batch, num_cells,
               capacity, window):
    self.source = constant  # [W]
    self._listing = content_index.WrittenRows()
    self._hash = None if index.kind == "written" else index
    self._first_write_slot = first_write_slot
    self._batch, self._cells = batch, num_cells
    self._capacity, self._window = capacity, window

  def initial_state(self):
    values = tf.broadcast_to(self.source, [self._batch, self._capacity + 1,
                                           self.source.shape[-1]])
    listing = self._listing.initial_state(self._batch, self._cells,
                                          self._capacity)
    hashed = () if self._hash is None else self._hash.initial_state(
        self._batch, self._cells, self._capacity)
    return values, listing, hashed

  @staticmethod
  def bytes_per_sequence(index, num_cells, capacity, word_size):
    """Bytes one sequence's state takes: the listed rows (float32), the
    list and its sorted places, and a 'hash' index's own entries."""
    listing = content_index.WrittenRows()
    total = 4 * (capacity + 1) * word_size + listing.bytes_per_sequence(
        num_cells, capacity)
    if index.kind != "written":
      total += index.bytes_per_sequence(num_cells, capacity)
    return total

  def memory(self, state):
    """ListedRows."""
    values, listing, hashed = state
    lookup = (content_index.Lookup(self._listing, listing, listing.places,
                                   self._window)
              if self._hash is None
              else content_index.Lookup(self._hash, hashed, listing.places,
                                        self._window))
    return ListedRows(values, listing, lookup, self.source)

  def rows(self, state, t, indices):
    del t
    return self.memory(state).gather(indices)

  def _put(self, state, indices, rows):
    """values with rows [B, R, W] at the places of rows indices [B, R]."""
    place, _ = self.memory(state).places(indices)
    return memory_lib.scatter_rows(state[0], place, rows)

  def write(self, state, t, indices, touched):
    del t
    first = self._first_write_slot
    written, rows = indices[:, first:], touched[:, first:]
    listing = self._listing.insert(state[1], written, rows)
    hashed = (() if self._hash is None
              else self._hash.insert(state[2], written, rows))
    state = (state[0], listing, hashed)
    return (self._put(state, indices, touched),) + state[1:]

  def undo(self, state, t, indices, old_rows):
    del t
    return (self._put(state, indices, old_rows),) + tuple(state[1:])

  def initial_adjoint(self, final_state):
    """(dL/dM_T at the places [B, C + 1, W], the final places of the rows
    written, which serve every step of the backward pass: a place once
    given is kept)."""
    return (tf.zeros([self._batch, self._capacity + 1,
                      self.source.shape[-1]], self.source.dtype),
            final_state[1].places)

  def _places(self, d_state, indices):
    return _places(d_state[1], indices, self._capacity)

  def d_touched(self, d_state, t, indices):
    """dL/dM_t at the touched rows, counted once for heads sharing a row;
    0 at rows never written."""
    del t
    place, listed = self._places(d_state, indices)
    first = tf.logical_and(
        memory_lib.first_of_equal(indices, indices, diagonal=True), listed)
    return (memory_lib.read_rows(d_state[0], place)
            * tf.cast(first, d_state[0].dtype)[:, :, None])

  def d_update(self, d_state, state, t, indices, d_old):
    """As DenseStore.d_update, at the rows' places."""
    del state, t
    place, _ = self._places(d_state, indices)
    return (memory_lib.scatter_rows(d_state[0], place,
                                    _summed_over_shared_rows(indices, d_old)),
            d_state[1])

  def add_rows(self, d_state, indices, d_rows):
    """Adds gradients d_rows [B, R, W] at rows indices [B, R] of M_{t-1}."""
    place, _ = self._places(d_state, indices)
    return (_scatter_add(d_state[0], place, d_rows), d_state[1])

  def d_source(self, d_state):
    del d_state  # the constant is no weight
    return None


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

  def initial_adjoint(self, final_state):
    del final_state
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
