"""The row loop's stores (memtk.stores) against a numpy memory: ListStore,
which keeps only the rows written (with a content index), reads, writes and
undoes as a dense [B, N, W] memory would, and holds no adjoint at rows never
written."""

import numpy as np
import tensorflow as tf

from memtk import content_index
from memtk import stores

BATCH, CELLS, WIDTH = 2, 30, 3
CONSTANT = 0.25


def list_store(index="written", steps=4, write_slots=2, read_slots=1):
  capacity, window = content_index.sizes(CELLS, steps, write_slots, 1)
  return stores.ListStore(
      tf.fill([WIDTH], tf.constant(CONSTANT, tf.float64)),
      content_index.parse(index), read_slots, BATCH, CELLS, capacity,
      window)


class ListStoreTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    self.rng = np.random.default_rng(0)
    # Per step: slot 0 reads, slots 1-2 write; rows repeat across steps and
    # within one (slots 1 and 2 of step 2 name one row), a read row is
    # written later (row 7) and one is never written (row 29).
    self.steps = np.array([[[7, 3, 5], [29, 3, 4]],
                           [[3, 7, 9], [4, 0, 4]],
                           [[29, 2, 2], [0, 4, 1]],
                           [[9, 5, 3], [1, 29, 6]]], np.int32)

  def touched(self, memory, ids):
    """Rows after a step: written rows (slots 1 on) get new values, every
    slot naming one (the read slot too) the same; other rows keep theirs."""
    rows = memory[np.arange(BATCH)[:, None], ids].copy()
    for b in range(BATCH):
      for row in set(ids[b, 1:]):
        rows[b, ids[b] == row] = self.rng.normal(size=WIDTH)
    return rows

  def test_reads_writes_and_undo_as_a_dense_memory(self):
    for index in ("written", "hash"):
      store = list_store(index)
      state = store.initial_state()
      memory = np.full((BATCH, CELLS, WIDTH), CONSTANT)
      history = []
      for t, ids in enumerate(self.steps):
        got = store.rows(state, t, tf.constant(ids))
        self.assertAllClose(got, memory[np.arange(BATCH)[:, None], ids])
        new = self.touched(memory, ids)
        history.append((ids, got))
        state = store.write(state, t, tf.constant(ids), tf.constant(new))
        for b in range(BATCH):
          memory[b, ids[b]] = new[b]
        every = tf.broadcast_to(tf.range(CELLS), [BATCH, CELLS])
        self.assertAllClose(store.memory(state).gather(every), memory)
      for t in reversed(range(len(self.steps))):
        ids, old = history[t]
        state = store.undo(state, t, tf.constant(ids), old)
        every = tf.broadcast_to(tf.range(CELLS), [BATCH, CELLS])
        self.assertAllClose(store.rows(state, t, tf.constant(ids)), old)
      self.assertAllClose(store.memory(state).gather(every),
                          np.full((BATCH, CELLS, WIDTH), CONSTANT))

  def test_no_adjoint_at_rows_never_written(self):
    store = list_store()
    state = store.initial_state()
    memory = np.full((BATCH, CELLS, WIDTH), CONSTANT)
    for t, ids in enumerate(self.steps):
      state = store.write(state, t, tf.constant(ids),
                          tf.constant(self.touched(memory, ids)))
    d_state = store.initial_adjoint(state)
    # Rows 29 (batch 0) and 7 (batch 1) are read but never written.
    ids = tf.constant([[29, 9, 5], [7, 3, 0]])
    d_rows = tf.constant(self.rng.normal(size=(BATCH, 3, WIDTH)))
    d_state = store.add_rows(d_state, ids, d_rows)
    got = store.d_touched(d_state, 3, ids).numpy()
    self.assertAllClose(got[:, 0], np.zeros((BATCH, WIDTH)))
    self.assertAllClose(got[:, 1:], d_rows[:, 1:])  # written rows keep theirs
