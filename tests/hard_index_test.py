"""Hard heads with the 'written' index (memtk.hard_index): the distribution
against the dense chain (memtk.addressing.address) at every cell, in value
and gradient; greedy choices and ties; sampled cells' frequencies; the row
loop against the scan's; settings that are ValueErrors."""

import glob
import os
import re
import subprocess
import sys

import keras
import numpy as np
import tensorflow as tf

import memtk
from memtk import addressing
from memtk import cell as cell_lib
from memtk import content_index
from memtk import estimators
from memtk import hard_index
from memtk import sparse_unroll
from float64_case import Float64TestCase
from tests import background

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
N, W, CAPACITY = 24, 4, 8
CONSTANT = 1e-6  # a 'constant' memory's rows


def memory_with(ids, rng, batch):
  """[B, N, W] a constant memory with rows ids[b] written (random values)."""
  memory = np.full((batch, N, W), CONSTANT)
  for b in range(batch):
    memory[b, ids[b]] = rng.normal(size=(len(ids[b]), W))
  return memory


def written_of(memory, ids):
  """hard_index.Written for rows ids[b] listed in that order."""
  batch = len(ids)
  listed = np.full((batch, CAPACITY), -1)
  places = content_index.Places.empty(batch, CAPACITY)
  for b in range(batch):
    listed[b, :len(ids[b])] = ids[b]
  for at in range(CAPACITY):  # one row listed a step, in the list's order
    places = places.added(tf.constant(listed[:, at:at + 1], tf.int32),
                          tf.fill([batch, 1], at),
                          tf.constant(listed[:, at:at + 1] >= 0))
  listed = tf.constant(listed, tf.int32)
  rows = tf.gather(memory, tf.maximum(listed, 0), batch_dims=1)
  return hard_index.Written(listed, rows, places,
                            tf.fill([W], tf.constant(CONSTANT, tf.float64)),
                            N)


def head_params(rng, batch, heads, num_shifts, gate=None, strength=None):
  keys = rng.normal(size=(batch, heads, W))
  strengths = (np.full((batch, heads), strength) if strength is not None
               else np.log1p(np.exp(rng.normal(size=(batch, heads)))) * 3)
  gates = (np.full((batch, heads), gate) if gate is not None
           else rng.uniform(0.05, 0.95, size=(batch, heads)))
  shifts = rng.normal(size=(batch, heads, num_shifts))
  shifts = np.exp(shifts) / np.exp(shifts).sum(-1, keepdims=True)
  gammas = 1.0 + np.log1p(np.exp(rng.normal(size=(batch, heads))))
  return [tf.constant(v) for v in (keys, strengths, gates, shifts, gammas)]


def dense_previous(previous_start, previous_weights):
  """[B, H, N] w_{t-1} from weights [B, H, P] on the P cells from start."""
  cells = (previous_start[..., None]
           + tf.range(previous_weights.shape[-1])) % N
  return tf.reduce_sum(tf.one_hot(cells, N, dtype=tf.float64)
                       * previous_weights[..., None], 2)


# (written rows per sequence, previous support): rows that wrap around the
# end, neighbours that share special cells, a previous cell that was
# written, and w_0 over a window of cells before anything is written.
CASES = [
    ([[5, 6, 7, 23, 0], [12]], "one-hot"),
    ([[], []], "window"),
    ([[3, 4, 9, 10, 11, 2, 1, 22], [17, 16]], "window"),
]


class DistributionTest(Float64TestCase):

  def both(self, ids, previous, num_shifts=3, gate=None, strength=None,
           heads=2):
    batch = len(ids)
    memory = tf.constant(memory_with(ids, self.rng, batch))
    params = head_params(self.rng, batch, heads, num_shifts, gate, strength)
    if previous == "one-hot":
      cells = np.array([[i[-1] if i else 3] * heads for i in ids])
      previous_start = tf.constant(cells, tf.int32)
      previous_weights = tf.ones(cells.shape + (1,), tf.float64)
    else:
      # A window of 6 cells around the end of the memory.
      previous_start = tf.fill([batch, heads], N - 2)
      w = self.rng.random((batch, heads, 6))
      previous_weights = tf.constant(w / w.sum(-1, keepdims=True))
    return memory, ids, params, previous_start, previous_weights

  def indexed(self, memory, ids, params, previous_start, previous_weights):
    keys, strengths, gates, shifts, gammas = params
    return hard_index.distribution(
        written_of(memory, ids), keys, strengths, gates, shifts, gammas,
        previous_start, previous_weights)

  def dense(self, memory, params, previous_start, previous_weights):
    keys, strengths, gates, shifts, gammas = params
    return addressing.address(memory, dense_previous(previous_start,
                                                     previous_weights),
                              keys, strengths, gates, shifts, gammas)

  def every_cell(self, dist):
    """[B, H, N] w_t from log_prob at each cell."""
    shape = tf.shape(dist.log_background)
    return tf.stack([tf.exp(hard_index.log_prob(dist, tf.fill(shape, i)))
                     for i in range(N)], -1)

  def test_weights_entropy_and_greedy_equal_the_dense_chain(self):
    for ids, previous in CASES:
      for num_shifts in (3, 5):
        inputs = self.both(ids, previous, num_shifts)
        dist = self.indexed(*inputs)
        dense = self.dense(inputs[0], *inputs[2:])
        self.assertAllClose(self.every_cell(dist), dense, rtol=1e-10,
                            atol=1e-14)
        self.assertAllClose(hard_index.entropy(dist),
                            estimators.entropy(dense), rtol=1e-10)
        self.assertAllEqual(hard_index.greedy(dist),
                            estimators.greedy(dense))
        # The cells it names and the others make up all N, once each.
        counted = tf.reduce_sum(dist.share, -1) + tf.cast(
            dist.num_background, tf.float64)
        self.assertAllClose(counted, tf.fill(counted.shape, float(N)))

  def test_ties_go_to_the_lowest_cell(self):
    # Content only (gate 1) over a memory nobody wrote: every cell ties.
    inputs = self.both([[], []], "window", gate=1.0)
    dist = self.indexed(*inputs)
    self.assertAllEqual(hard_index.greedy(dist), tf.zeros([2, 2]))
    # Written rows 0-2 score below the background: cell 3 is the lowest of
    # the most likely ones, a background cell right after special ones.
    ids = [[0, 1, 2], [0, 1, 2]]
    memory, _, params, previous_start, previous_weights = self.both(
        ids, "one-hot", gate=1.0)
    keys = params[0]
    rows = -tf.tile(keys[:, :1], [1, 3, 1])  # cosine -1 with head 0's key
    memory = tf.tensor_scatter_nd_update(
        memory, [[b, i] for b in range(2) for i in range(3)],
        tf.reshape(rows, [-1, W]))
    params = [keys[:, :1]] + [p[:, :1] for p in params[1:]]
    dist = self.indexed(memory, ids, params, previous_start[:, :1],
                                previous_weights[:, :1])
    dense = self.dense(memory, params, previous_start[:, :1],
                       previous_weights[:, :1])
    self.assertAllEqual(hard_index.greedy(dist),
                        estimators.greedy(dense))
    self.assertAllEqual(hard_index.greedy(dist), [[4], [4]])

  def test_gradients_equal_the_dense_chain(self):
    for ids, previous in CASES:
      memory, ids, params, previous_start, previous_weights = self.both(
          ids, previous)
      cells = tf.constant(self.rng.integers(0, N, size=(len(ids), 2)),
                          tf.int32)
      sources = [memory] + params + [previous_weights]

      def loss_indexed(memory, *rest):
        dist = self.indexed(memory, ids, rest[:5], previous_start,
                                    rest[5])
        return (tf.reduce_sum(hard_index.log_prob(dist, cells))
                + tf.reduce_sum(hard_index.entropy(dist)))

      def loss_dense(memory, *rest):
        dense = self.dense(memory, rest[:5], previous_start, rest[5])
        return (tf.reduce_sum(estimators.log_prob(dense, cells))
                + tf.reduce_sum(estimators.entropy(dense)))

      grads = []
      for loss in (loss_indexed, loss_dense):
        with tf.GradientTape() as tape:
          tape.watch(sources)
          value = loss(*sources)
        grads.append(tape.gradient(value, sources))
      indexed, dense = grads
      # The rows never written get no gradient from the index (their value
      # is the constant initial memory, which nothing trains).
      written = np.zeros((len(ids), N, 1))
      for b, rows in enumerate(ids):
        written[b, rows] = 1.0
      self.assertAllClose(indexed[0], dense[0] * written, rtol=1e-9,
                          atol=1e-12)
      for a, b in zip(indexed[1:], dense[1:]):
        self.assertAllClose(a, b, rtol=1e-9, atol=1e-12)

  def test_sampled_cells_follow_the_distribution(self):
    # Weak keys: the background (cells no written row or w_{t-1} reaches)
    # holds much of the mass, so both stages of a draw are exercised.
    for strength in (0.5, 20.0):
      memory, ids, params, previous_start, previous_weights = self.both(
          [[5, 6, 7, 23, 0]], "one-hot", strength=strength, heads=1)
      draws = 40000
      tile = lambda x: tf.repeat(x, draws, axis=0)
      dist = self.indexed(
          tile(memory), ids * draws, [tile(p) for p in params],
          tile(previous_start), tile(previous_weights))
      cells = hard_index.sample(dist, tf.constant(
          self.rng.random((draws, 1))))
      frequency = np.bincount(cells.numpy().ravel(), minlength=N) / draws
      expected = self.dense(memory, params, previous_start,
                            previous_weights).numpy()[0, 0]
      # Four standard deviations of a frequency.
      bound = 4 * np.sqrt(expected * (1 - expected) / draws) + 1e-3
      self.assertAllLessEqual(np.abs(frequency - expected) - bound, 0.0)


def hard_cell(index, heads=(1, 1), memory_size=40):
  cell = cell_lib.NTMCell(
      "lstm", 3, memory_size=memory_size, word_size=4,
      num_read_heads=heads[0], num_write_heads=heads[1], addressing="hard",
      controller_units=8, content_index=index)
  cell.build((None, 5))
  return cell


class RowLoopTest(Float64TestCase):

  def run_cell(self, cell, inputs, choice, noise=None):
    with tf.GradientTape() as tape:
      tape.watch(inputs)
      out = sparse_unroll.unroll(cell, inputs, noise, choice)
      loss = (tf.reduce_sum(tf.sin(out.logits))
              + tf.reduce_sum(0.3 * out.log_prob)
              + tf.reduce_sum(0.1 * out.entropy))
    return ([out.logits, out.log_prob, out.entropy, out.choices]
            + tape.gradient(loss, [inputs] + cell.trainable_variables))

  def test_greedy_equals_the_scan_in_values_and_gradients(self):
    for heads in ((1, 1), (2, 2)):
      exact, indexed = hard_cell(None, heads), hard_cell("written", heads)
      indexed.set_weights(exact.get_weights())
      self.assertIsInstance(indexed.mode, memtk.modes.IndexedHardMode)
      inputs = tf.constant(self.rng.normal(size=(2, 7, 5)))
      for a, b in zip(self.run_cell(exact, inputs, "greedy"),
                      self.run_cell(indexed, inputs, "greedy")):
        self.assertAllClose(a, b, rtol=1e-10, atol=1e-12)


# One train step of a model with the index, in a fresh process that has XLA
# write the programs it compiles (the flag must be set before TensorFlow
# starts): the train step as Keras compiles it, REINFORCE terms included.
_TRAIN_STEP = r"""
import numpy as np
import keras
import memtk
keras.utils.set_random_seed(0)
model = memtk.NTM("lstm", 3, memory_size=4099, word_size=4, addressing="hard",
                  controller_units=8, content_index="written")
model.compile(optimizer="adam")
rng = np.random.default_rng(0)
logs = model.train_on_batch(rng.integers(0, 2, (2, 6, 5)).astype("float32"),
                            rng.integers(0, 2, (2, 6, 3)).astype("float32"),
                            return_dict=True)
print("loss", float(logs["loss"]), "skipped", float(logs["skipped_steps"]))
"""


def _train_step_program(directory):
  """(the process, the optimised HLO of the model's train step)."""
  env = dict(os.environ, XLA_FLAGS=(
      f"{os.environ.get('XLA_FLAGS', '')} "
      f"--xla_dump_to={directory} --xla_dump_hlo_as_text "
      "--xla_dump_hlo_module_re=.*one_step_on_data.* "
      "--xla_dump_hlo_pass_re=NONE"))
  process = subprocess.run([sys.executable, "-c", _TRAIN_STEP], cwd=_ROOT,
                           env=env, capture_output=True, text=True,
                           timeout=600, check=False)
  paths = glob.glob(os.path.join(directory, "*one_step_on_data*"
                                 "cpu_after_optimizations.txt"))
  return process, [open(p).read() for p in paths]


COMMANDS = {"test_the_models_train_step_has_nothing_of_the_memorys_size":
                _train_step_program}


class TrainStepTest(tf.test.TestCase):

  def test_the_models_train_step_has_nothing_of_the_memorys_size(self):
    # The train step as Keras compiles it (the program XLA runs, after
    # fusion), REINFORCE terms included. The scan forms w_t over every cell
    # (f32[B, H, N] and more); with the index no tensor has an axis of N
    # cells (4099, a size no other axis has): no [B, N, W] memory
    # (stores.ListStore), no map of places (content_index.Places; an
    # earlier form's [B, N] map was filled once per sequence and copied
    # twice per step), so no step does N-wide work. The step was taken,
    # with a finite loss.
    process, programs = background.result(self._testMethodName,
                                          _train_step_program)
    self.assertEqual(process.returncode, 0, process.stderr[-3000:])
    self.assertLen(programs, 1)
    hlo = programs[0]
    self.assertEqual(re.findall(r"\w+\[[\d,]*\b4099\b[\d,]*\]", hlo), [])
    loss, skipped = re.search(r"loss (\S+) skipped (\S+)",
                              process.stdout).groups()
    self.assertTrue(np.isfinite(float(loss)))
    self.assertEqual(float(skipped), 0.0)


class SettingsTest(tf.test.TestCase):

  def test_hard_heads_take_the_written_index_only(self):
    with self.assertRaisesRegex(ValueError, "hard heads take content_index "
                                "'written' only"):
      memtk.NTM("lstm", 3, addressing="hard", content_index="hash")
    model = memtk.NTM("lstm", 3, addressing="hard", content_index="written")
    again = memtk.NTM.from_config(model.get_config())
    self.assertIsInstance(again.cell.mode, memtk.modes.IndexedHardMode)
    self.assertIsInstance(
        memtk.NTM("lstm", 3, addressing="hard").cell.mode,
        memtk.modes.HardMode)
    keras.backend.clear_session()
