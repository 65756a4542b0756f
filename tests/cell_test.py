"""NTMCell and NTM: execution modes, Keras integration, options, bad input."""

import os
from unittest import mock

from absl.testing import parameterized
import keras
import numpy as np
import tensorflow as tf
from tensorflow.python.autograph.impl import api as autograph_api

import memtk
from memtk import cell as cell_lib
from memtk import diagnostics
from memtk import sparse_unroll


def small_model(**kwargs):
  args = dict(memory_size=8, word_size=5, controller_units=16)
  args.update(kwargs)
  return memtk.NTM(args.pop("controller", "lstm"), 4, **args)


class AutographTest(tf.test.TestCase):

  def test_tracing_converts_none_of_memtks_code(self):
    # NTM.trace, both unrolls and the diagnostics' functions run without
    # AutoGraph (the model's and the cell's call run under Keras's __call__,
    # which AutoGraph does not enter): their control flow is TensorFlow's
    # own, and AutoGraph's source transformation of every function below
    # them took most of a trace (the row loop's compiled gradient: 8.5 of
    # 10 s). A sparse model reaches both unrolls: its row loop, and the
    # dense loop of trace and the diagnostics.
    converted = []
    convert = autograph_api._convert_actual

    def recording(entity, program_ctx):
      converted.append(f"{getattr(entity, '__module__', None)}."
                       f"{getattr(entity, '__qualname__', None)}")
      return convert(entity, program_ctx)

    keras.utils.set_random_seed(0)
    model = small_model(addressing="sparse", sparse_k=3)
    model.compile()
    x = np.random.default_rng(0).normal(size=(2, 4, 5)).astype(np.float32)
    want = model(x)
    with mock.patch.object(autograph_api, "_convert_actual", recording):

      @tf.function
      def gradients(x):
        with tf.GradientTape() as tape:
          logits = sparse_unroll.unroll(model.cell, x, None, "sparse").logits
          loss = tf.reduce_sum(logits)
        return logits, tape.gradient(loss, model.trainable_variables)

      logits, grads = gradients(x)
      tf.function(lambda x: model.trace(x)["logits"])(x)
      tf.function(lambda x, s: model.cell(x, s))(
          x[:, 0], model.cell.get_initial_state(2))
      targets = np.zeros((2, 4, 4), np.float32)
      mask = np.ones((2, 4), np.float32)
      diagnostics.head_statistics(model, x, targets, mask)
      diagnostics.gradient_norms(model, x, targets, mask)
    self.assertAllClose(logits, want, atol=1e-6)
    self.assertTrue(all(g is not None for g in grads))
    self.assertNotEmpty(converted)  # the test's own functions: it records
    self.assertEqual([m for m in converted if m.startswith("memtk")], [])


class CellTest(tf.test.TestCase, parameterized.TestCase):

  def setUp(self):
    super().setUp()
    keras.utils.set_random_seed(0)
    self.x = np.random.default_rng(0).normal(size=(3, 6, 5)).astype(np.float32)

  @parameterized.parameters("lstm", "gru", "feedforward")
  def test_eager_xla_and_unknown_batch_agree(self, controller):
    model = small_model(controller=controller, num_read_heads=2,
                        num_write_heads=2)
    eager = model(self.x)
    xla = tf.function(model, jit_compile=True)(self.x)
    unknown = tf.function(
        model, jit_compile=True,
        input_signature=[tf.TensorSpec([None, None, 5], tf.float32)])
    self.assertAllClose(eager, xla, atol=1e-5)
    self.assertAllClose(eager, unknown(self.x), atol=1e-5)
    self.assertEqual(eager.shape, (3, 6, 4))

  def test_fit_on_batches_of_unknown_length(self):
    # A user's task without a fixed num_steps: the stream's time axis is
    # None, so the compiled step learns T only when XLA compiles each length
    # (the dense time loop's gradient needs a bound on its iterations; the
    # row-access loop of hard and sparse cells keeps its own record).
    model = small_model()
    model.compile()
    rng = np.random.default_rng(1)
    lengths = (3, 5)

    def batches():
      for length in lengths:
        yield (rng.normal(size=(2, length, 5)).astype(np.float32),
               np.ones((2, length, 4), np.float32),
               np.ones((2, length), np.float32))

    stream = tf.data.Dataset.from_generator(batches, output_signature=(
        tf.TensorSpec((2, None, 5)), tf.TensorSpec((2, None, 4)),
        tf.TensorSpec((2, None))))
    logs = model.fit(stream, epochs=1, verbose=0).history
    self.assertTrue(np.isfinite(logs["loss"][0]), logs)
    self.assertEqual(int(model.optimizer.iterations.numpy()), len(lengths))

  def test_cell_step_eager_and_xla_agree(self):
    model = small_model()
    model.build((None, None, 5))
    cell = model.cell
    states = cell.get_initial_state(3)
    eager, eager_states = cell(self.x[:, 0], states)
    step = tf.function(
        lambda x, s: cell(x, s), jit_compile=True)
    xla, xla_states = step(self.x[:, 0], states)
    self.assertAllClose(eager, xla, atol=1e-5)
    for a, b in zip(eager_states, xla_states):
      self.assertAllClose(a, b, atol=1e-5)

  def test_keras_rnn_layer_runs_the_cell(self):
    model = small_model(num_read_heads=2)
    want = model(self.x)
    rnn = keras.layers.RNN(model.cell, return_sequences=True)
    self.assertAllClose(rnn(self.x), want, atol=1e-5)

  def test_state_structure(self):
    model = small_model(num_read_heads=2, num_write_heads=3)
    model.build((None, None, 5))
    state = model.cell.initial_ntm_state(4)
    self.assertIsInstance(state, cell_lib.NTMState)
    self.assertEqual(state.memory.shape, (4, 8, 5))
    self.assertEqual(state.read.shape, (4, 2, 5))
    self.assertEqual(state.weights.shape, (4, 5, 8))
    self.assertAllClose(tf.reduce_sum(state.weights, -1), np.ones((4, 5)))
    flat = model.cell.get_initial_state(4)
    repacked = model.cell.pack_state(flat)
    self.assertAllClose(repacked.memory, state.memory)

  def test_trace_weights_are_distributions(self):
    model = small_model(num_read_heads=2, num_write_heads=1)
    trace = model.trace(tf.constant(self.x))
    self.assertEqual(trace["read_weights"].shape, (3, 6, 2, 8))
    self.assertEqual(trace["write_weights"].shape, (3, 6, 1, 8))
    self.assertAllClose(tf.reduce_sum(trace["read_weights"], -1),
                        np.ones((3, 6, 2)), atol=1e-5)
    self.assertAllClose(trace["logits"], model(self.x), atol=1e-5)

  def test_read_vectors_feed_back_to_controller(self):
    model = small_model(num_read_heads=2)
    model.build((None, None, 5))
    # The controller sees x_t (5) and both read vectors (2 x 5).
    self.assertEqual(model.cell.controller.kernel.shape[0], 5 + 2 * 5)
    before = model(self.x).numpy()
    model.cell.initial_read.assign(np.ones((2, 5)))
    self.assertNotAllClose(model(self.x).numpy()[:, 0], before[:, 0])

  def test_trainable_variables_hold_every_weight(self):
    model = small_model(memory_init="learned")
    model.build((None, None, 5))
    names = {v.path.split("/", 1)[1] for v in model.trainable_variables}
    self.assertEqual(names, {
        "ntm_cell/initial_weight_logits", "ntm_cell/initial_read",
        "ntm_cell/initial_memory", "ntm_cell/controller/kernel",
        "ntm_cell/controller/recurrent_kernel", "ntm_cell/controller/bias",
        "ntm_cell/interface/projection/kernel",
        "ntm_cell/interface/projection/bias", "ntm_cell/output/kernel",
        "ntm_cell/output/bias"})

  def test_zero_memory_stays_finite(self):
    model = small_model(memory_init="zeros", num_read_heads=2)
    model.build((None, None, 5))
    state = model.cell.initial_ntm_state(3)
    self.assertAllEqual(state.memory, np.zeros((3, 8, 5)))
    with tf.GradientTape() as tape:
      loss = tf.reduce_sum(model(self.x))
    grads = tape.gradient(loss, model.trainable_variables)
    self.assertTrue(np.isfinite(model(self.x).numpy()).all())
    for g in grads:
      self.assertTrue(np.isfinite(tf.convert_to_tensor(g).numpy()).all())

  def test_memory_init_options(self):
    constant = small_model(memory_init="constant")
    constant.build((None, None, 5))
    self.assertAllClose(constant.cell.initial_ntm_state(2).memory,
                        np.full((2, 8, 5), 1e-6))
    learned = small_model(memory_init="learned")
    learned.build((None, None, 5))
    learned.cell.initial_memory.assign(np.full((8, 5), 0.25))
    self.assertAllClose(learned.cell.initial_ntm_state(2).memory,
                        np.full((2, 8, 5), 0.25))
    random = small_model(memory_init="random")
    random.build((None, None, 5))
    first = random.cell.initial_ntm_state(2).memory.numpy()
    second = random.cell.initial_ntm_state(2).memory.numpy()
    self.assertGreater(first.std(), 0.3)
    self.assertNotAllClose(first, second)

  def test_outputs_are_clipped(self):
    model = small_model(clip_value=0.5)
    model.build((None, None, 5))
    model.cell.output_layer.bias.assign(np.full(4, 100.0))
    self.assertAllClose(model(self.x), np.full((3, 6, 4), 0.5))

  @parameterized.named_parameters(("lstm", "lstm", "constant"),
                                  ("gru_learned", "gru", "learned"))
  def test_save_and_load_round_trip(self, controller, memory_init):
    model = small_model(controller=controller, memory_init=memory_init,
                        num_read_heads=2)
    model.compile(optimizer="adam", jit_compile=False, run_eagerly=True)
    model.fit(self.x, np.zeros((3, 6, 4), np.float32), verbose=0)
    want = model(self.x)
    path = os.path.join(self.get_temp_dir(), f"{controller}.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    self.assertIsInstance(loaded, memtk.NTM)
    self.assertAllClose(loaded(self.x), want, atol=1e-6)
    self.assertEqual(loaded.cell.memory_init, memory_init)
    # Compiled again with the optimizer state: training continues as before.
    self.assertEqual(int(loaded.optimizer.iterations), 1)

  @parameterized.parameters("soft", "hard")
  def test_heads_without_content_only_shift(self, addressing):
    model = small_model(content_addressing=False, addressing=addressing)
    model.build((None, None, 5))
    cell = model.cell
    self.assertFalse(any("initial_weight_logits" in v.path
                         for v in model.weights))
    state = cell.initial_ntm_state(3)
    self.assertAllEqual(state.weights, np.broadcast_to(np.eye(8)[0],
                                                       (3, 2, 8)))
    choice = cell.default_choice
    x = tf.constant(self.x[:, 0])
    steps = [cell.choice_step(x, state._replace(memory=tf.constant(
        np.random.default_rng(seed).normal(size=(3, 8, 5)), tf.float32)),
                              choice)[1] for seed in (0, 1)]
    # The memory's contents do not move the heads; the shift does.
    self.assertAllClose(steps[0].weights, steps[1].weights)
    p = cell.control(x, state)[2]
    want = memtk.addressing.address_by_shift(state.weights, p.shift, p.gamma)
    if addressing == "hard":
      want = tf.one_hot(tf.argmax(want, -1), 8)
    self.assertAllClose(steps[0].weights, want, atol=1e-6)
    # With content addressing the memory does move them.
    with_content = small_model(addressing=addressing)
    with_content.build((None, None, 5))
    moved = [with_content.cell.distribution(
        tf.constant(np.random.default_rng(seed).normal(size=(3, 8, 5)),
                    tf.float32), state.weights, p) for seed in (0, 1)]
    self.assertNotAllClose(moved[0], moved[1])
    config = model.get_config()
    self.assertFalse(config["content_addressing"])
    self.assertFalse(memtk.NTM.from_config(config).cell.content_addressing)

  @parameterized.named_parameters(
      ("memory_size", dict(memory_size=0), "memory_size"),
      ("word_size", dict(word_size=-1), "word_size"),
      ("read_heads", dict(num_read_heads=0), "num_read_heads"),
      ("write_heads", dict(num_write_heads=0), "num_write_heads"),
      ("shift_wider_than_memory", dict(memory_size=4, shift_range=2),
       "shift_range=2"),
      ("negative_shift", dict(shift_range=-1), "shift_range"),
      ("addressing", dict(addressing="fuzzy"), "addressing"),
      ("memory_init", dict(memory_init="ones"), "memory_init"),
      ("controller_name", dict(controller="transformer"), "transformer"),
      ("clip", dict(clip_value=0.0), "clip_value"),
      ("content", dict(content_addressing="no"), "content_addressing"),
      ("window_wider_than_memory", dict(initial_window=9),
       "initial_window must be <= memory_size=8, got 9"),
      ("window", dict(initial_window=0), "initial_window"),
      ("empty_rows_as", dict(empty_rows_as=-1.0), "empty_rows_as must be"),
      ("empty_rows_as_bool", dict(empty_rows_as=True), "empty_rows_as must"))
  def test_bad_constructor_arguments(self, kwargs, message):
    with self.assertRaisesRegex(ValueError, message):
      small_model(**kwargs)

  @parameterized.parameters("soft", "hard", "sparse")
  def test_no_weight_depends_on_the_memory_size(self, addressing):
    shapes = []
    for n in (16, 200, 300):
      model = small_model(memory_size=n, addressing=addressing)
      model.build((None, None, 5))
      shapes.append([tuple(v.shape) for v in model.weights])
    self.assertEqual(shapes[1], shapes[2])  # past the 128-cell window
    model = small_model(memory_size=16, addressing=addressing)
    model(self.x)
    model.compile()
    larger = model.with_memory_size(64)
    self.assertEqual(larger.cell.memory_size, 64)
    for old, new in zip(model.weights, larger.weights):
      self.assertAllEqual(old.numpy(), new.numpy())
    # w_0 is the trained one on its window, zero past it.
    self.assertAllClose(larger.cell.initial_weights()[:, :16],
                        model.cell.initial_weights())
    self.assertAllEqual(larger.cell.initial_weights()[:, 16:],
                        np.zeros((2, 48)))
    trace = larger.trace(self.x)
    self.assertEqual(trace["read_weights"].shape, (3, 6, 1, 64))
    self.assertTrue(np.all(np.isfinite(trace["logits"])))
    self.assertIs(model.with_memory_size(16), model)
    learned = small_model(memory_init="learned")
    learned(self.x)
    with self.assertRaisesRegex(ValueError, "memory_init='learned'"):
      learned.with_memory_size(32)

  @parameterized.parameters(("soft", 0.005), ("sparse", 1e-6), ("hard", 1e-6))
  def test_empty_rows_as_runs_alike_at_any_memory_size(self, addressing,
                                                       tolerance):
    """With empty_rows_as a model's outputs hardly change when its memory
    grows from 16 to 512 cells (the unused rows take no content weight;
    with S = 0 a soft model's first step, on an all-empty memory, still
    spreads over every cell, with S = 128 it goes to the sink); without it
    they do."""
    x = np.round(self.x[:, :, :5] > 0).astype(np.float32)
    changes = {}
    for empty_rows_as in (None, 0.0, 128.0):
      keras.utils.set_random_seed(0)
      model = small_model(memory_size=16, addressing=addressing,
                          empty_rows_as=empty_rows_as)
      changes[empty_rows_as] = np.abs(
          model(x) - model.with_memory_size(512)(x)).max()
      self.assertEqual(model.get_config()["empty_rows_as"], empty_rows_as)
    self.assertLess(changes[0.0], tolerance, changes)
    self.assertLess(changes[128.0], 1e-5, changes)
    self.assertGreater(changes[None], 3 * tolerance, changes)

  @parameterized.parameters("soft", "hard", "sparse")
  def test_empty_rows_as_reaches_the_lookups(self, addressing):
    x = np.round(self.x[:, :, :5] > 0).astype(np.float32)
    outputs = []
    for empty_rows_as in (0.0, 16.0):
      keras.utils.set_random_seed(0)
      outputs.append(small_model(addressing=addressing,
                                 empty_rows_as=empty_rows_as)(x))
    self.assertGreater(np.abs(outputs[0] - outputs[1]).max(), 1e-3)

  def test_check_numerics_reports_bad_inputs(self):
    bad = self.x.copy()
    bad[1, 2, 3] = np.nan
    quiet = small_model()
    self.assertTrue(np.isnan(quiet(bad).numpy()).any())  # off: no check
    model = small_model(check_numerics=True)
    model.build((None, None, 5))
    with self.assertRaisesRegex(tf.errors.InvalidArgumentError,
                                "NTM inputs"):
      model(bad)
    model.compile(optimizer="adam")
    self.assertFalse(model.jit_compile)  # XLA would drop the check
    bad[1, 2, 3] = np.inf
    with self.assertRaisesRegex(tf.errors.InvalidArgumentError,
                                "NTM inputs"):
      model.fit(bad, np.zeros((3, 6, 4), np.float32), verbose=0)
    model.cell.output_layer.bias.assign(np.full(4, np.nan))
    with self.assertRaisesRegex(tf.errors.InvalidArgumentError,
                                "NTM logits"):
      model(self.x)

  def test_bad_inputs_at_call_time(self):
    model = small_model()
    model(self.x)
    with self.assertRaisesRegex(ValueError, r"\[batch, time, features\]"):
      model(self.x[:, 0])
    with self.assertRaisesRegex(ValueError, "5 features"):
      model(np.zeros((3, 6, 7), np.float32))


if __name__ == "__main__":
  tf.test.main()
