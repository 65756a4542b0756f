"""Content indexes (memtk.content_index): numpy references for the hashing,
the tables and the candidate scoring; equality with the exact scan in values
and gradients where the candidates hold the scan's rows; no N-wide work in
a compiled train step; settings that are ValueErrors."""

import re

from absl.testing import parameterized
import keras
import numpy as np
import tensorflow as tf

import memtk
from memtk import addressing
from memtk import cell as cell_lib
from memtk import content_index
from memtk import sparse_unroll
from float64_case import Float64TestCase
from sparse_test import compiled_gradients
from sparse_unroll_test import assert_compiled_in_place

BATCH, STEPS, INPUTS, OUTPUTS = 2, 6, 5, 3
# Every written row shares a bucket with every key in some table.
GENEROUS_HASH = {"kind": "hash", "tables": 24, "bits": 1, "slots": 64}


def indexed_cell(index, heads=(1, 1), memory_size=40, k=3,
                 memory_init="constant", word_size=4):
  cell = cell_lib.NTMCell(
      "lstm", OUTPUTS, memory_size=memory_size, word_size=word_size,
      num_read_heads=heads[0], num_write_heads=heads[1], addressing="sparse",
      sparse_k=k, memory_init=memory_init, controller_units=8,
      content_index=index)
  cell.build((None, INPUTS))
  return cell


def numpy_buckets(planes, vectors):
  """[..., L] bucket numbers: bit j of table l is [P_l[j] . v > 0]."""
  signs = np.einsum("lbw,...w->...lb", planes, vectors) > 0
  return (signs * 2 ** np.arange(planes.shape[1])).sum(-1)


class EquationsTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    self.rng = np.random.default_rng(0)

  def test_buckets_are_the_signs_of_the_planes(self):
    index = content_index.HashIndex(tables=3, bits=5, slots=2, seed=4)
    vectors = self.rng.normal(size=(2, 6, 7)).astype(np.float32)
    planes = index.planes(7, tf.float32).numpy()
    self.assertAllEqual(index.buckets(tf.constant(vectors)),
                        numpy_buckets(planes, vectors))
    # The same settings give the same planes; another seed others.
    self.assertAllEqual(index.planes(7, tf.float32), planes)
    self.assertNotAllClose(index._replace(seed=5).planes(7, tf.float32),
                           planes)

  def test_a_written_row_is_filed_in_its_bucket_of_every_table(self):
    index = content_index.HashIndex(tables=4, bits=3, slots=4)
    state = index.initial_state(2, 20, None)
    ids = tf.constant([[3, 7, 3], [0, 19, 5]])
    rows = self.rng.normal(size=(2, 3, 6)).astype(np.float32)
    rows[0, 2] = rows[0, 0]  # entries naming one row carry one value
    state = index.insert(state, ids, tf.constant(rows))
    buckets = numpy_buckets(index.planes(6, tf.float32).numpy(), rows)
    tables = state.tables.numpy()
    for b in range(2):
      for r in range(3):
        for table in range(4):
          filed = tables[b, table, buckets[b, r, table], :index.slots]
          self.assertEqual(list(filed).count(ids[b, r].numpy()), 1)
    # Filing the same rows again changes no table.
    again = index.insert(state, ids, tf.constant(rows))
    self.assertAllEqual(again.tables, state.tables)

  def test_a_full_bucket_forgets_its_oldest_row(self):
    index = content_index.HashIndex(tables=1, bits=1, slots=3)
    state = index.initial_state(1, 10, None)
    row = index.planes(4, tf.float32)[0, 0][None, None]  # bucket 1
    for i in range(5):  # one row per step, all in bucket 1
      state = index.insert(state, tf.constant([[i]]), row)
    self.assertAllEqual(np.sort(state.tables[0, 0, 1, :3]), [2, 3, 4])
    # Several new rows of one bucket in one step take consecutive slots.
    state = index.insert(index.initial_state(1, 10, None),
                         tf.constant([[6, 8, 9, 1]]),
                         tf.tile(row, [1, 4, 1]))
    self.assertAllEqual(np.sort(state.tables[0, 0, 1, :3]), [6, 8, 9])

  def test_written_rows_lists_each_row_once_in_order(self):
    index = content_index.WrittenRows()
    state = index.initial_state(1, 12, 6)
    rows = tf.zeros((1, 3, 4))
    for ids in ([[4, 2, 4]], [[2, 9, 0]]):
      state = index.insert(state, tf.constant(ids), rows)
    self.assertAllEqual(state.rows[0, :4], [4, 2, 9, 0])
    self.assertAllEqual(state.rows[0, 4:6], [-1, -1])
    self.assertEqual(int(state.count[0]), 4)
    # Each row's place is found (-1: never written).
    self.assertAllEqual(state.places.find(tf.constant([[0, 1, 2, 4, 9, 11]])),
                        [[3, -1, 1, 0, 2, -1]])
    self.assertAllEqual(state.places.written_below(5),
                        [[True, False, True, False, True]])

  def test_places_are_found_as_a_dict_finds_them(self):
    # Rows added a few per step, in random order, over many steps: every
    # lookup agrees with a dict (list sizes that are and are not powers of
    # two, with lookups above, below and between the rows listed).
    for capacity in (1, 7, 8, 40):
      batch, n = 3, 100
      places = content_index.Places.empty(batch, capacity)
      known = [dict() for _ in range(batch)]
      for _ in range(capacity):
        ids = np.full((batch, 3), 0)
        new = np.zeros((batch, 3), bool)
        at = np.zeros((batch, 3), np.int32)
        for b in range(batch):
          free = [i for i in range(n) if i not in known[b]]
          take = int(self.rng.integers(0, min(3, capacity - len(known[b])) + 1))
          chosen = self.rng.choice(free, 3, replace=False)
          ids[b] = chosen
          for j in range(take):
            new[b, j] = True
            at[b, j] = len(known[b])
            known[b][int(chosen[j])] = len(known[b])
        places = places.added(tf.constant(ids, tf.int32), tf.constant(at),
                              tf.constant(new))
        queries = np.arange(-1, n + 1)[None].repeat(batch, 0)
        got = places.find(tf.constant(queries, tf.int32)).numpy()
        want = [[known[b].get(int(q), -1) for q in queries[b]]
                for b in range(batch)]
        self.assertAllEqual(got, want)
        self.assertAllEqual(places.written_below(n), [
            [i in known[b] for i in range(n)] for b in range(batch)])

  def test_sizes_of_an_index(self):
    # T H_w K rows at most (or N), and K more for the lowest unwritten.
    self.assertEqual(content_index.sizes(100, 5, 2, 3), (30, 33))
    self.assertEqual(content_index.sizes(31, 5, 2, 3), (30, 31))
    self.assertEqual(content_index.sizes(20, 5, 2, 3), (20, 20))
    capacity, window = content_index.sizes(100, tf.constant(5), 2, 3)
    self.assertEqual((int(capacity), int(window)), (30, 33))

  def test_lowest_unwritten_rows(self):
    written = self.rng.random((3, 30)) < 0.5
    written[2, :] = True  # none unwritten: the lowest written ones
    got = content_index.lowest_unwritten(tf.constant(written), 4, 30).numpy()
    for b in range(3):
      order = np.concatenate([np.flatnonzero(~written[b]),
                              np.flatnonzero(written[b])])
      self.assertAllEqual(got[b], order[:4])

  def test_best_of_candidates_as_the_scan_ranks_them(self):
    n, w, k = 50, 5, 4
    memory = self.rng.normal(size=(2, n, w)).astype(np.float32)
    memory[:, 20:] = 1e-6  # unwritten rows: they tie
    keys = self.rng.normal(size=(2, 3, w)).astype(np.float32)
    rows = self.rng.integers(-1, n, size=(2, 3, 30))
    rows[..., :k] = 25 + np.arange(k)  # enough distinct rows
    rows[..., 5] = rows[..., 6]  # a repeat
    rows[..., 10:20] = rows[..., :1]  # many copies of one row (across tables)
    norms = addressing.norms(tf.constant(memory))
    got = content_index.best_of(
        lambda ids: tf.gather(tf.constant(memory), ids, batch_dims=1),
        tf.constant(rows, tf.int32), tf.constant(keys), k).numpy()
    cosine = addressing.cosine_similarity(tf.constant(memory),
                                          tf.constant(keys), norms)[0].numpy()
    for b in range(2):
      for h in range(3):
        candidates = sorted(set(rows[b, h]) - {-1})
        # Highest score first, then the lowest row.
        best = sorted(candidates, key=lambda i: (-cosine[b, h, i], i))[:k]
        self.assertAllEqual(got[b, h], sorted(best))


class IndexedModelTest(Float64TestCase):

  def run_both(self, index, heads):
    exact = indexed_cell(None, heads)
    indexed = indexed_cell(index, heads)
    indexed.set_weights(exact.get_weights())
    inputs = tf.constant(self.rng.normal(size=(BATCH, STEPS, INPUTS)))

    def run(cell):
      with tf.GradientTape() as tape:
        tape.watch(inputs)
        out = sparse_unroll.unroll(cell, inputs, None, "sparse")
        loss = tf.reduce_sum(tf.sin(out.logits))
      return [out.logits] + tape.gradient(
          loss, [inputs] + cell.trainable_variables)

    return run(exact), run(indexed)

  @parameterized.parameters(
      ("written", (1, 1)), ("written", (2, 2)),
      (GENEROUS_HASH, (1, 1)), (GENEROUS_HASH, (2, 2)))
  def test_equals_the_scan_where_it_holds_the_scans_rows(self, index, heads):
    # (compiled by XLA: CompiledTest)
    exact, indexed = self.run_both(index, heads)
    for a, b in zip(exact, indexed):
      self.assertAllClose(a, b, rtol=1e-10, atol=1e-10)

  def test_a_small_hash_misses_rows_the_scan_finds(self):
    # One table of one slot per bucket: not every written row is found.
    exact, indexed = self.run_both(
        {"kind": "hash", "tables": 1, "bits": 6, "slots": 1}, (1, 1))
    self.assertGreater(np.abs(exact[0] - indexed[0]).max(), 1e-6)

  def test_settings_that_are_value_errors(self):
    for value, pattern in [("bogus", "content_index must be"),
                           (5, "content_index must be"),
                           ({"tables": 2}, "content_index must be"),
                           ({"kind": "hash", "tables": 0}, "tables"),
                           ({"kind": "hash", "bits": 25}, "bits"),
                           ({"kind": "hash", "seed": -1}, "seed"),
                           ({"kind": "hash", "colour": 1}, "colour"),
                           ({"kind": "written", "slots": 2}, "slots")]:
      with self.assertRaisesRegex(ValueError, pattern):
        indexed_cell(value)
    # (hard heads take 'written': tests/hard_index_test.py)
    for kwargs, name in [({"addressing": "soft"}, "addressing"),
                         ({"content_addressing": False}, "content_addressing"),
                         ({"memory_init": "learned"}, "memory_init"),
                         ({"empty_rows_as": 0}, "empty_rows_as")]:
      kwargs = {"addressing": "sparse", **kwargs}
      with self.assertRaisesRegex(ValueError, f"content_index needs {name}"):
        memtk.NTM("lstm", OUTPUTS, content_index="written", **kwargs)

  def test_a_sequence_length_known_only_when_run(self):
    # An evaluation traces for any length: the index's sizes follow T.
    exact = indexed_cell(None)
    cell = indexed_cell("written")
    cell.set_weights(exact.get_weights())
    spec = [tf.TensorSpec([None, None, INPUTS], tf.float64)]
    inputs = tf.constant(self.rng.normal(size=(BATCH, STEPS, INPUTS)))
    for c in (exact, cell):
      c.run = tf.function(
          lambda x, c=c: sparse_unroll.unroll(c, x, None, "sparse").logits,
          input_signature=spec)
    self.assertAllClose(cell.run(inputs), exact.run(inputs), rtol=1e-10,
                        atol=1e-10)
    self.assertAllClose(cell.run(inputs[:, :3]), exact.run(inputs[:, :3]),
                        rtol=1e-10, atol=1e-10)

  def test_the_index_is_saved(self):
    for index in ("written", GENEROUS_HASH):
      model = memtk.NTM("lstm", OUTPUTS, memory_size=16, addressing="sparse",
                        content_index=index)
      again = memtk.NTM.from_config(model.get_config())
      self.assertEqual(again.cell.content_index, model.cell.content_index)
      self.assertEqual(again.cell.content_index.kind,
                       model.cell.content_index.kind)


def n_wide_work(hlo, cells):
  """Lines of an HLO module that reduce over, sort or take the top-k of an
  axis of `cells` entries."""
  found = []
  for line in hlo.splitlines():
    match = re.search(r"\breduce\(\w+\[([\d,]*)\]", line)
    dims = re.search(r"dimensions=\{([\d,]*)\}", line)
    if match and dims:
      shape = [int(d) for d in match.group(1).split(",") if d]
      if any(shape[int(d)] == cells for d in dims.group(1).split(",") if d):
        found.append(line)
    if re.search(r"\b(sort|TopK)\b|topk", line, re.IGNORECASE) and re.search(
        r"\[[\d,]*\b%d\b[\d,]*\]" % cells, line):
      found.append(line)
  return found


class CompiledTest(tf.test.TestCase):

  def test_train_step_does_no_memory_wide_work_with_an_index(self):
    # cells: a size no other axis of the program has.
    keras.utils.set_random_seed(0)
    cells = 4099
    inputs = tf.constant(np.random.default_rng(0).normal(
        size=(BATCH, STEPS, INPUTS)), tf.float32)
    scan = indexed_cell(None, memory_size=cells)
    # The program XLA runs (after fusion the reductions and sorts keep their
    # operands' shapes): the scan's reduction and top-k are there (its step
    # tests/sparse_test.py checks in place).
    self.assertNotEmpty(n_wide_work(compiled_gradients(
        scan).experimental_get_compiler_ir(inputs)(stage="optimized_hlo"),
                                    cells))
    with tf.GradientTape() as tape:  # the scan's gradients, eagerly
      loss = tf.reduce_sum(
          sparse_unroll.unroll(scan, inputs, None, "sparse").logits)
    want = tape.gradient(loss, scan.trainable_variables)
    for index in ("written", "hash"):
      cell = indexed_cell(index, memory_size=cells)
      cell.set_weights(scan.get_weights())
      gradients = compiled_gradients(cell)
      hlo = gradients.experimental_get_compiler_ir(inputs)(
          stage="optimized_hlo")
      self.assertEqual(n_wide_work(hlo, cells), [], index)
      # No tensor has an axis of N cells (the written rows are a list:
      # stores.ListStore, found through content_index.Places); finite
      # gradients.
      self.assertEqual(
          re.findall(r"\w+\[[\d,]*\b%d\b[\d,]*\]" % cells, hlo), [], index)
      assert_compiled_in_place(self, gradients, (inputs,), False, cells=cells,
                               hlo=hlo)
      if index == "written":  # holds the scan's rows: its gradients
        for a, b in zip(want, gradients(inputs)):
          self.assertAllClose(a, b, rtol=1e-4, atol=1e-5)

  def test_compiled_model_reads_the_eager_cells_on_tied_scores(self):
    # A fresh constant memory: every unwritten row ties. (For 'written':
    # compiled equals the compiled scan above, which equals the eager scan
    # on ties in tests/sparse_test.py, which equals the eager index in
    # IndexedModelTest.)
    index = "hash"
    keras.utils.set_random_seed(0)
    model = memtk.NTM("lstm", 5, memory_size=64, word_size=8,
                      num_read_heads=2, addressing="sparse", sparse_k=4,
                      controller_units=16, content_index=index)
    inputs = tf.constant(np.random.default_rng(0).random((2, 9, 6)),
                         tf.float32)
    compiled = tf.function(model, jit_compile=True)
    self.assertAllClose(compiled(inputs), model(inputs), atol=1e-5)


if __name__ == "__main__":
  tf.test.main()
