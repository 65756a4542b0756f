"""Content lookups for sparse heads that do not scan the memory.

An exact content lookup scores all N rows and a sparse head keeps the K
best: O(N W) per head and step, whatever K. With a `content_index` a sparse
head scores a set of candidate rows kept in the step's state instead, so a
lookup costs the same at every N. Two kinds, one object each, with the same
interface (initial_state, insert, candidates, bytes_per_sequence, config):

  * 'written' (WrittenRows): the list of every row written so far. A
    lookup scores them all, so it finds exactly the scan's K cells, at
    O(T R W) per head and step (T steps, R rows written per step: H_w K),
    whatever N: the index of choice while T R is well below N.
  * 'hash' (HashIndex): L tables of 2^b buckets of S slots each
    ([B, L, 2^b, S] row numbers, -1 empty). Table l files a vector v in the
    bucket whose b bits are the signs of P_l v, for b fixed random
    hyperplanes P_l (SimHash: two vectors at angle theta share a bucket of
    a table with probability (1 - theta / pi)^b, so a bucket gathers rows
    of one direction, which is what a cosine ranks). A write files each row
    it changed in the bucket of its new value in every table, unless it is
    there already; a bucket's slots are a ring, a full bucket forgets its
    oldest entry. A row whose value has moved on stays in its old buckets
    too (a stale slot: every candidate is scored again exactly, so it costs
    one candidate, never a wrong score). A lookup takes the S slots of the
    key's bucket in every table: O(L S W) per head and step, whatever N and
    T, and approximate: a row of the scan's K best that shares no bucket
    with the key is missed (recall below 1).

Beside either, the rows written so far are kept sorted with their places
in the list (Places, [B, C + 1] each, C = T R at most): a row's place is a
binary search, not a [B, N] map, so nothing in the state grows with N
(a hard head finds a row's score the same way: memtk.hard_index). Rows
never written hold the memory's initial value, one value for all of them
('constant' or 'zeros' memory), so they tie, and the exact scan takes the
lowest-numbered of tied rows (`addressing.top_cells`); the K lowest
unwritten rows lie among the first K + (rows written so far) rows, so a
lookup marks the written ones among those and adds the K lowest unwritten
rows to the index's candidates (Lookup). The candidates are scored by the
cosine as the scan scores them and the K best are the support, ties to the
lowest row.

So whenever the candidates hold every written row the scan ranks among its
K best ('written': always), the support is the scan's, and the weights on
it and their gradients are the scan's (either way the support is held
constant, as in Sparse Access Memory). The backward pass redoes each step
on the support its forward pass kept, so it never looks up and an index
needs no undoing. Traces (model.trace, the dense step) use the exact scan.
"""

from typing import NamedTuple

import numpy as np
import tensorflow as tf

from memtk import addressing
from memtk import memory as memory_lib

KINDS = ("written", "hash")


def _repeats(ids):
  """[B, R] bool: an entry whose row an earlier entry of ids [B, R] names."""
  return tf.logical_not(memory_lib.first_of_equal(ids, ids, diagonal=True))


_ABSENT = np.iinfo(np.int32).max  # no row is numbered this


def _in_batch(columns):
  """[B, R, 2] (batch, column) pairs of columns [B, R], for a scatter."""
  batch = tf.broadcast_to(tf.range(tf.shape(columns)[0])[:, None],
                          tf.shape(columns))
  return tf.stack([batch, columns], -1)


def _count(mask):
  """[...] int32 the true entries of mask [..., n]."""
  return tf.reduce_sum(tf.cast(mask, tf.int32), -1)


class Places(NamedTuple):
  """The places of the rows written, sorted by row: a row's place is found
  by a binary search (O(log C) gathers), with nothing the size of the
  memory; a write merges its new rows in (O(C R) compares)."""
  ids: tf.Tensor  # [B, C + 1] int32 the rows listed, increasing; then _ABSENT
  places: tf.Tensor  # [B, C + 1] int32 their places in the list

  @classmethod
  def empty(cls, batch, capacity):
    return cls(tf.fill([batch, capacity + 1], _ABSENT),
               tf.fill([batch, capacity + 1], -1))

  def find(self, ids):
    """[B, ...] int32 the places of rows ids [B, ...] (-1: not listed)."""
    flat = tf.reshape(ids, [tf.shape(ids)[0], -1])
    size = tf.shape(self.ids)[1]
    static = self.ids.shape[1]
    # Binary lifting: `below` ends as the number of listed rows < the id.
    step = 2 ** ((static.bit_length() - 1) if static else 30)
    below = tf.zeros_like(flat)
    while step >= 1:
      probe = below + step - 1
      value = tf.gather(self.ids, tf.minimum(probe, size - 1), batch_dims=1)
      below = tf.where(tf.logical_and(probe < size, value < flat),
                       below + step, below)
      step //= 2
    at = tf.minimum(below, size - 1)
    found = tf.equal(tf.gather(self.ids, at, batch_dims=1), flat)
    place = tf.where(found, tf.gather(self.places, at, batch_dims=1), -1)
    return tf.reshape(place, tf.shape(ids))

  def added(self, ids, places, new):
    """These places with rows ids [B, R] at places [B, R] where `new`
    [B, R] (rows not listed, no two equal)."""
    size = tf.shape(self.ids)[1]
    keys = tf.where(new, ids, _ABSENT)
    # Each entry moves to (entries of the other kind below it) + its rank.
    listed = self.ids != _ABSENT
    old_to = tf.where(listed, tf.range(size) + _count(
        keys[:, None, :] < self.ids[:, :, None]), size)
    new_to = tf.where(new, _count(self.ids[:, None, :] < keys[:, :, None])
                      + _count(keys[:, None, :] < keys[:, :, None]), size)
    to = tf.concat([old_to, new_to], 1)
    where = _in_batch(to)

    def merged(fill, old, added):  # place `size` takes the rest, cut off
      return tf.tensor_scatter_nd_update(
          tf.fill([tf.shape(to)[0], size + 1], fill), where,
          tf.concat([old, added], 1))[:, :-1]

    return Places(merged(_ABSENT, self.ids, keys),
                  merged(-1, self.places, places))

  def written_below(self, window):
    """[B, window] bool: rows 0 .. window - 1 listed."""
    marked = tf.tensor_scatter_nd_update(
        tf.zeros([tf.shape(self.ids)[0], window + 1], tf.bool),
        _in_batch(tf.minimum(self.ids, window)),
        tf.ones(tf.shape(self.ids), tf.bool))
    return marked[:, :window]


class WrittenState(NamedTuple):
  places: Places  # the rows written and their places in `rows`: a written
  # row is found by a binary search (memtk.hard_index too)
  rows: tf.Tensor  # [B, C + 1] int32 the rows written, in order; -1 after
  count: tf.Tensor  # [B] int32 rows listed


class WrittenRows(NamedTuple):
  """Every written row is a candidate: exact (module docstring)."""

  kind = "written"

  def initial_state(self, batch, num_cells, capacity):
    """`capacity`: the most distinct rows a sequence can write."""
    del num_cells
    return WrittenState(Places.empty(batch, capacity),
                        tf.fill([batch, capacity + 1], -1),
                        tf.zeros([batch], tf.int32))

  def insert(self, state, ids, rows):
    """The index after rows [B, R, W] were written at rows `ids` [B, R]."""
    del rows
    known = state.places.find(ids)
    new = tf.logical_not(tf.logical_or(known >= 0, _repeats(ids)))
    capacity = tf.shape(state.rows)[1] - 1
    position = tf.where(new, state.count[:, None] + tf.cumsum(
        tf.cast(new, tf.int32), axis=1, exclusive=True), capacity)
    listed = tf.tensor_scatter_nd_update(
        state.rows, _in_batch(position), tf.where(new, ids, -1))
    return WrittenState(state.places.added(ids, position, new), listed,
                        state.count + _count(new))

  def candidates(self, state, keys):
    """[B, H, C] int32 candidate rows of keys [B, H, W] (-1: none)."""
    listed = state.rows[:, :-1]
    return tf.broadcast_to(listed[:, None], [
        tf.shape(keys)[0], tf.shape(keys)[1], tf.shape(listed)[1]])

  def bytes_per_sequence(self, num_cells, capacity):
    """Bytes of one sequence's index: the list, its rows sorted and their
    places (int32)."""
    del num_cells
    return 4 * (3 * (capacity + 1) + 1)

  def config(self):
    return {"kind": self.kind}


class HashState(NamedTuple):
  tables: tf.Tensor  # [B, L, 2^b, S + 1] int32 rows, -1 empty; slot S unused
  cursors: tf.Tensor  # [B, L, 2^b] int32 the slot each bucket fills next


class HashIndex(NamedTuple):
  """Random-hyperplane hash tables (module docstring): `tables` L, `bits` b
  per table (2^b buckets), `slots` S per bucket, `seed` of the planes.

  The defaults (512 candidates a lookup) were chosen by recall of the
  scan's cells on development models (docs/cost.md): few bits put the
  rows a trained key ranks highest in its bucket far more often than many
  (8 bits in 8 tables found 0.2-0.6 of them), and many tables make up for
  the rows a ring of 16 slots forgets."""
  tables: int = 32
  bits: int = 2
  slots: int = 16
  seed: int = 0

  kind = "hash"

  def planes(self, word_size, dtype):
    """[L, b, W] the hyperplanes, the same for every run of these settings."""
    rng = np.random.default_rng(self.seed)
    return tf.constant(rng.standard_normal(
        (self.tables, self.bits, word_size)), dtype=dtype)

  def buckets(self, vectors):
    """[..., L] int32 the bucket of vectors [..., W] in each table."""
    products = tf.einsum("lbw,...w->...lb",
                         self.planes(vectors.shape[-1], vectors.dtype),
                         vectors)
    return tf.reduce_sum(tf.cast(products > 0, tf.int32)
                         * 2 ** tf.range(self.bits), -1)

  def initial_state(self, batch, num_cells, capacity):
    del num_cells, capacity
    buckets = 2 ** self.bits
    return HashState(
        tf.fill([batch, self.tables, buckets, self.slots + 1], -1),
        tf.zeros([batch, self.tables, buckets], tf.int32))

  def insert(self, state, ids, rows):
    """The index after rows [B, R, W] were written at rows `ids` [B, R]
    (entries with equal ids carry equal values; each is filed once)."""
    where = _table_positions(self.buckets(rows))  # [B, R, L, 3]
    filed = tf.gather_nd(state.tables, where)[..., :self.slots]
    present = tf.reduce_any(tf.equal(filed, ids[:, :, None, None]), -1)
    new = tf.logical_and(tf.logical_not(present),
                         tf.logical_not(_repeats(ids))[:, :, None])
    # New entries of one bucket take consecutive slots after its cursor.
    buckets = where[..., 2]
    num = tf.shape(ids)[1]
    earlier = tf.range(num)[None, :] < tf.range(num)[:, None]
    offset = tf.reduce_sum(tf.cast(tf.logical_and(
        tf.logical_and(tf.equal(buckets[:, :, None], buckets[:, None]),
                       new[:, None]),
        earlier[None, :, :, None]), tf.int32), 2)  # [B, R, L]
    new = tf.logical_and(new, offset < self.slots)  # a ring holds S a step
    cursor = tf.gather_nd(state.cursors, where)
    slot = tf.where(new, tf.math.floormod(cursor + offset, self.slots),
                    self.slots)
    tables = tf.tensor_scatter_nd_update(
        state.tables, tf.concat([where, slot[..., None]], -1),
        tf.where(new, tf.broadcast_to(ids[:, :, None], tf.shape(slot)), -1))
    cursors = tf.math.floormod(tf.tensor_scatter_nd_add(
        state.cursors, where, tf.cast(new, tf.int32)), self.slots)
    return HashState(tables, cursors)

  def candidates(self, state, keys):
    """[B, H, L S] int32 candidate rows of keys [B, H, W] (-1: none)."""
    filed = tf.gather_nd(state.tables, _table_positions(self.buckets(keys)))
    shape = tf.shape(filed)
    return tf.reshape(filed[..., :self.slots],
                      [shape[0], shape[1], self.tables * self.slots])

  def bytes_per_sequence(self, num_cells, capacity):
    """Bytes of one sequence's index: its int32 tables and cursors."""
    del num_cells, capacity
    return 4 * self.tables * 2 ** self.bits * (self.slots + 2)

  def config(self):
    return {"kind": self.kind, **self._asdict()}


def _table_positions(buckets):
  """[B, R, L, 3] (batch, table, bucket) of buckets [B, R, L]."""
  shape = tf.shape(buckets)
  batch = tf.broadcast_to(tf.range(shape[0])[:, None, None], shape)
  table = tf.broadcast_to(tf.range(shape[2])[None, None, :], shape)
  return tf.stack([batch, table, buckets], -1)


def parse(value):
  """The index `content_index` names: None (the exact scan), 'written',
  'hash' (the default settings), a dict with 'kind' (and for 'hash' any
  HashIndex fields), or a WrittenRows or HashIndex."""
  if value is None or isinstance(value, (WrittenRows, HashIndex)):
    return value
  usage = (f"content_index must be None, one of {KINDS} or a dict with "
           f"'kind' (and for 'hash' the fields {HashIndex._fields}), got "
           f"{value!r}")
  if isinstance(value, str):
    value = {"kind": value}
  if not isinstance(value, dict) or value.get("kind") not in KINDS:
    raise ValueError(usage)
  fields = {name: v for name, v in value.items() if name != "kind"}
  if value["kind"] == "written":
    if fields:
      raise ValueError(f"content_index 'written' takes no settings, got "
                       f"{sorted(fields)}")
    return WrittenRows()
  unknown = sorted(set(fields) - set(HashIndex._fields))
  if unknown:
    raise ValueError(f"content_index has unknown fields {unknown}; 'hash' "
                     f"takes {HashIndex._fields}")
  fields = {**HashIndex._field_defaults, **fields}
  for name in HashIndex._fields:
    v, low = fields[name], 0 if name == "seed" else 1
    if isinstance(v, bool) or not isinstance(v, int) or v < low:
      raise ValueError(f"content_index {name} must be an int >= {low}, got "
                       f"{v!r}")
  if fields["bits"] > 24:
    raise ValueError(f"content_index bits must be <= 24, got {fields['bits']}")
  return HashIndex(**fields)


def sizes(num_cells, num_steps, num_write_heads, k):
  """(capacity, window) of an index over a sequence of `num_steps` steps:
  it writes at most T H_w K distinct rows (or N), and the K lowest
  unwritten rows lie among the first K + that many; ints, or scalar
  tensors when `num_steps` is one (a length known only when the loop runs)."""
  smaller = min if isinstance(num_steps, int) else tf.minimum
  capacity = smaller(num_cells, num_steps * num_write_heads * k)
  return capacity, smaller(num_cells, capacity + k)


def lowest_unwritten(written, k, window):
  """[B, k] int32 the k lowest rows not written, in increasing order (then
  the lowest written ones, if fewer than k of the first `window` rows are
  unwritten); `window` >= k + rows written, or N."""
  position = tf.range(window)
  rank = tf.where(written[:, :window], window - position,
                  2 * window - position)
  return tf.math.top_k(rank, k=k, sorted=True).indices


def best_of(rows_of, rows, keys, k):
  """[B, H, k] int32 the k candidates `rows` [B, H, C] (-1: none; repeats
  allowed) of highest cosine with keys [B, H, W], scored as the exact scan
  scores them, ties to the lowest row, in increasing row order; needs at
  least k distinct rows. `rows_of(ids)` gives the memory's rows ids
  [B, H, C] (all >= 0) as [B, H, C, W].

  k rounds, each taking the best score left (of equal ones, the lowest
  row) and striking every copy of that row: O(k C) compares, where sorting
  the candidates to drop repeats and two top-ks took 7.9 of a lookup's
  8.8 ms at C = 520, B = 32, H = 2 (XLA sorts slowly on CPUs)."""
  usable = rows >= 0
  safe = tf.where(usable, rows, 0)
  gathered = rows_of(safe)  # [B, H, C, W]
  dots = tf.reduce_sum(keys[:, :, None, :] * gathered, -1)
  cosine = dots / (addressing.norms(keys)[:, :, None]
                   * addressing.norms(gathered))
  lowest = cosine.dtype.min
  scores = tf.where(usable, tf.stop_gradient(cosine), lowest)
  beyond = rows.dtype.max  # no row is numbered this
  ids = tf.where(usable, rows, beyond)
  chosen = []
  for _ in range(k):
    best = tf.reduce_max(scores, -1, keepdims=True)
    row = tf.reduce_min(tf.where(tf.equal(scores, best), ids, beyond), -1,
                        keepdims=True)
    chosen.append(row)
    scores = tf.where(tf.equal(ids, row), lowest, scores)
  return tf.sort(tf.concat(chosen, -1), axis=-1)


class Lookup(NamedTuple):
  """An index as a step's lookup sees it."""
  index: object  # WrittenRows or HashIndex
  state: object  # its state
  places: Places  # the rows written so far
  window: object  # int (or scalar tensor): the first rows, which hold the
  # K lowest unwritten

  def top_cells(self, rows_of, keys, k):
    """[B, H, k] the support of keys [B, H, W] (module docstring): the
    index's candidates and the k lowest unwritten rows, as best_of ranks
    them; `rows_of` as best_of's."""
    fresh = lowest_unwritten(self.places.written_below(self.window), k,
                             self.window)
    rows = tf.concat([self.index.candidates(self.state, keys),
                      tf.broadcast_to(fresh[:, None], [
                          tf.shape(keys)[0], tf.shape(keys)[1], k])], -1)
    return best_of(rows_of, rows, keys, k)
