"""Hard addressing in NTMCell and NTM: the step, the estimators' train_step
and every hard option."""

import os
from unittest import mock

from absl.testing import parameterized
import keras
import numpy as np
import tensorflow as tf

import memtk
from memtk import access
from memtk import addressing
from memtk import estimators
from memtk import hard_training
from memtk import memory as memory_lib
from memtk import sparse_unroll


def small_model(**kwargs):
  args = dict(memory_size=8, word_size=5, controller_units=16,
              addressing="hard")
  args.update(kwargs)
  return memtk.NTM(args.pop("controller", "lstm"), 4, **args)


def copy_batch(batch=4, steps=6, bits=4, seed=0):
  """Random inputs; the answers (second half) repeat the first half's data
  channels, as copy's do (the answer-cell read reward needs that)."""
  rng = np.random.default_rng(seed)
  x = rng.integers(0, 2, size=(batch, steps, bits + 1)).astype(np.float32)
  y = rng.integers(0, 2, size=(batch, steps, bits)).astype(np.float32)
  half = steps // 2
  y[:, half:2 * half] = x[:, :half, :bits]
  mask = np.ones((batch, steps), np.float32)
  mask[:, :half] = 0.0
  return x, y, mask


def weights_by_name(model):
  """Weights by path without the model's own (numbered) name."""
  return {v.path.split("/", 1)[1]: v.numpy() for v in model.weights}


class HardStepTest(tf.test.TestCase, parameterized.TestCase):

  def setUp(self):
    super().setUp()
    keras.utils.set_random_seed(0)
    self.model = small_model(num_read_heads=2, num_write_heads=2)
    self.model.build((None, None, 5))
    self.cell = self.model.cell
    rng = np.random.default_rng(1)
    state = self.cell.initial_ntm_state(3)
    self.state = state._replace(memory=tf.constant(
        rng.normal(size=(3, 8, 5)), tf.float32))
    self.x = tf.constant(rng.normal(size=(3, 5)), tf.float32)

  def _parts(self):
    """The step's head parameters and distribution, recomputed by hand."""
    read_flat = tf.reshape(self.state.read, [3, -1])
    h, _ = self.cell.controller(tf.concat([self.x, read_flat], -1),
                                self.state.controller)
    p = self.cell.interface(h)
    w = addressing.address(self.state.memory, self.state.weights, p.key,
                           p.strength, p.gate, p.shift, p.gamma)
    return p, w

  def test_greedy_step_reads_and_writes_the_argmax_rows(self):
    out, state = self.cell.choice_step(self.x, self.state, "greedy")
    p, w = self._parts()
    chosen = np.argmax(w.numpy(), -1)  # [B, H]
    memory = self.state.memory.numpy()
    want = memory.copy()
    for b in range(3):  # the write heads' one-hot soft write, by hand
      one_hot = np.eye(8)[chosen[b, 2:]]  # [H_w, N]
      keep = np.prod(1 - one_hot[:, :, None] * p.erase.numpy()[b][:, None],
                     0)
      want[b] = memory[b] * keep + one_hot.T @ p.add.numpy()[b]
    self.assertAllClose(state.memory, want, atol=1e-5)
    for b in range(3):
      untouched = sorted(set(range(8)) - set(chosen[b, 2:]))
      self.assertAllEqual(state.memory.numpy()[b, untouched],
                          memory[b, untouched])
      self.assertAllClose(state.read.numpy()[b], want[b, chosen[b, :2]],
                          atol=1e-6)
    self.assertAllEqual(state.weights, np.eye(8)[chosen])
    self.assertAllClose(out.log_prob,
                        np.log(np.take_along_axis(w.numpy(), chosen[..., None],
                                                  -1)[..., 0]), atol=1e-5)
    self.assertAllClose(out.entropy, estimators.entropy(w), atol=1e-5)

  def test_next_step_addresses_from_the_one_hot_choice(self):
    _, state = self.cell.choice_step(self.x, self.state, "greedy")
    self.assertAllEqual(tf.reduce_sum(state.weights, -1), np.ones((3, 4)))
    self.assertAllEqual(tf.reduce_max(state.weights, -1), np.ones((3, 4)))

  def test_sample_step_uses_the_noise(self):
    uniform = tf.constant(np.random.default_rng(2).uniform(size=(3, 4)),
                          tf.float32)
    _, state = self.cell.choice_step(self.x, self.state, "sample",
                                     noise=uniform)
    _, w = self._parts()
    want = estimators.sample(w, uniform)
    self.assertAllEqual(tf.argmax(state.weights, -1), want)

  @parameterized.parameters("greedy", "sample")
  def test_gumbel_step_equals_hard_access_of_its_choice(self, forward):
    noise = estimators.gumbel_noise((3, 4, 8), tf.constant([3, 4]))
    _, state = self.cell.choice_step(
        self.x, self.state, "gumbel", noise=noise, temperature=0.5,
        gumbel=estimators.GumbelForm(forward=forward))
    p, w = self._parts()
    sampled = tf.argmax(tf.math.log(w) + noise, -1, output_type=tf.int32)
    greedy = tf.argmax(w, -1, output_type=tf.int32)
    self.assertFalse(np.all(sampled == greedy))  # the noise moves some heads
    indices = greedy if forward == "greedy" else sampled
    self.assertAllEqual(tf.argmax(state.weights, -1), indices)
    memory, read = access.hard_access(self.state.memory, indices, p.erase,
                                      p.add, 2)
    self.assertAllClose(state.memory, memory, atol=1e-6)
    self.assertAllClose(state.read, read, atol=1e-6)

  def test_temperature_changes_gumbel_gradients(self):
    noise = estimators.gumbel_noise((3, 4, 8), tf.constant([3, 4]))

    def gradient(temperature):
      with tf.GradientTape() as tape:
        out, _ = self.cell.choice_step(self.x, self.state, "gumbel",
                                       noise=noise, temperature=temperature)
        loss = tf.reduce_sum(tf.square(out.logits))
      kernel = self.cell.interface.projection.kernel
      return tape.gradient(loss, kernel).numpy()

    cold, warm = gradient(0.1), gradient(2.0)
    self.assertTrue(np.all(np.isfinite(cold)))
    self.assertGreater(np.abs(cold - warm).max(), 1e-4)

  def test_soft_flag_runs_the_soft_step(self):
    soft_out, soft_state = self.cell.choice_step(self.x, self.state, "soft")
    for choice, noise in (("sample", tf.fill((3, 4), 0.3)),
                          ("gumbel", tf.zeros((3, 4, 8)))):
      out, state = self.cell.choice_step(self.x, self.state, choice,
                                         noise=noise, soft=tf.constant(True))
      self.assertAllClose(out.logits, soft_out.logits, atol=1e-5)
      self.assertAllClose(state.memory, soft_state.memory, atol=1e-5)
      self.assertAllEqual(out.log_prob, np.zeros((3, 4)))
      hard_out, hard_state = self.cell.choice_step(
          self.x, self.state, choice, noise=noise, soft=tf.constant(False))
      want_out, want_state = self.cell.choice_step(self.x, self.state, choice,
                                                   noise=noise)
      self.assertAllClose(hard_out.logits, want_out.logits, atol=1e-5)
      self.assertAllClose(hard_state.memory, want_state.memory, atol=1e-6)

  def test_hard_access_equals_dense_one_hot_access(self):
    rng = np.random.default_rng(5)
    memory = tf.constant(rng.normal(size=(2, 8, 5)), tf.float32)
    indices = tf.constant([[1, 3, 3], [0, 7, 2]], tf.int32)
    erase = tf.constant(rng.uniform(size=(2, 2, 5)), tf.float32)
    add = tf.constant(rng.normal(size=(2, 2, 5)), tf.float32)
    hard = access.hard_access(memory, indices, erase, add, 1)
    dense = access.dense_access(memory, tf.one_hot(indices, 8), erase, add,
                                  1)
    for a, b in zip(hard, dense):
      self.assertAllClose(a, b, atol=1e-6)
    want = memory_lib.write(memory, tf.one_hot(indices[:, 1:], 8), erase, add)
    self.assertAllClose(hard[0], want, atol=1e-6)

  def test_bad_choices(self):
    with self.assertRaisesRegex(ValueError, "choice"):
      self.cell.choice_step(self.x, self.state, "argmax")
    with self.assertRaisesRegex(ValueError, "needs noise"):
      self.cell.choice_step(self.x, self.state, "sample")
    soft = small_model(addressing="soft")
    soft.build((None, None, 5))
    with self.assertRaisesRegex(ValueError, "soft cell"):
      soft.cell.choice_step(self.x, soft.cell.initial_ntm_state(3), "greedy")
    with self.assertRaisesRegex(ValueError, "choice"):
      self.model(np.zeros((3, 6, 5), np.float32), choice="gumbel")


class HardModelTest(tf.test.TestCase, parameterized.TestCase):

  def setUp(self):
    super().setUp()
    keras.utils.set_random_seed(0)
    self.x, self.y, self.mask = copy_batch()

  def test_eager_xla_and_unknown_batch_agree(self):
    model = small_model(num_read_heads=2)
    eager = model(self.x)
    xla = tf.function(model, jit_compile=True)(self.x)
    unknown = tf.function(
        model, jit_compile=True,
        input_signature=[tf.TensorSpec([None, None, 5], tf.float32)])
    self.assertAllClose(eager, xla, atol=1e-5)
    self.assertAllClose(eager, unknown(self.x), atol=1e-5)

  def test_keras_rnn_layer_runs_a_hard_cell_greedily(self):
    model = small_model()
    model.build((None, None, 5))
    layer = keras.layers.RNN(model.cell, return_sequences=True)
    self.assertAllClose(layer(self.x), model(self.x), atol=1e-5)

  def test_trace_shows_one_hot_choices(self):
    trace = small_model().trace(self.x)
    for key in ("read_weights", "write_weights"):
      self.assertAllEqual(tf.reduce_max(trace[key], -1),
                          np.ones(trace[key].shape[:-1]))

  def test_sampled_and_greedy_calls(self):
    model = small_model()
    greedy = model(self.x)
    self.assertAllClose(model(self.x), greedy)
    self.assertAllClose(model(self.x, choice="greedy"), greedy)
    sampled = [model(self.x, choice="sample").numpy() for _ in range(5)]
    self.assertTrue(any(np.abs(s - sampled[0]).max() > 1e-6
                        for s in sampled[1:]))

  @parameterized.parameters(("reinforce", True), ("gumbel", False))
  def test_fit_trains_every_weight_it_should(self, estimator, jit_compile):
    model = small_model(estimator=estimator, soft_curriculum_steps=2)
    model.compile(optimizer=keras.optimizers.SGD(0.1),
                  jit_compile=jit_compile)
    model.build((None, None, 5))
    # Steps 0-1 in the curriculum (soft batches train no estimator term),
    # 2-3 hard, in the curriculum's own compiled step (its flag is hard from
    # step 2; one compilation instead of two).
    model.curriculum_end = lambda: 10**9
    before = weights_by_name(model)
    history = model.fit(self.x, self.y, sample_weight=self.mask, epochs=4,
                        verbose=0)
    self.assertTrue(np.all(np.isfinite(history.history["loss"])))
    self.assertIn("bit_errors", history.history)
    extra = "advantage_std" if estimator == "reinforce" else "temperature"
    self.assertIn(extra, history.history)
    self.assertIn("soft_batch", history.history)
    after = weights_by_name(model)
    changed = {k for k in before if np.abs(after[k] - before[k]).max() > 0}
    for name in ("controller", "interface", "output"):
      self.assertTrue(any(name in k for k in changed), (name, changed))
    # Only REINFORCE uses the baseline and the return statistics.
    uses_baseline = any("baseline" in k for k in changed)
    uses_stats = any("return_mean" in k for k in changed)
    self.assertEqual(uses_baseline, estimator == "reinforce")
    self.assertEqual(uses_stats, estimator == "reinforce")

  def test_row_loop_after_the_curriculum(self):
    # Curriculum over steps 0-1: the first two steps run in the curriculum's
    # dense function, steps 2-3 in a purely hard one whose sampled batches
    # go through the row-access loop; the weights equal those of a run that
    # keeps the dense function throughout (its flag is hard from step 2).
    def trained(switch):
      keras.utils.set_random_seed(0)
      model = small_model(soft_curriculum_steps=2, entropy_bonus=0.0)
      model.build((None, None, 5))
      model.compile(optimizer=keras.optimizers.SGD(0.1), jit_compile=False,
                    run_eagerly=True)
      if not switch:
        model.curriculum_end = lambda: 10**9
      with mock.patch.object(sparse_unroll, "unroll",
                             wraps=sparse_unroll.unroll) as rows:
        model.fit(self.x, self.y, sample_weight=self.mask, epochs=2,
                  verbose=0)
        traced_before = rows.call_count
        model.fit(self.x, self.y, sample_weight=self.mask, epochs=2,
                  verbose=0)
        traced_after = rows.call_count
      return model, traced_before, traced_after

    model, before, after = trained(switch=True)
    self.assertEqual(int(model.optimizer.iterations), 4)
    self.assertEqual(before, 0)  # steps 0 and 1: the dense function
    self.assertGreater(after, 0)  # steps 2 and 3: the row loop
    dense, before, after = trained(switch=False)
    self.assertEqual(after, 0)
    for a, b in zip(model.get_weights(), dense.get_weights()):
      self.assertAllClose(a, b, atol=1e-5)

  def test_a_skipped_step_draws_new_choices(self):
    # A non-finite loss skips the update (the optimizer step stays 0), but
    # the count of draws moves on, so the retry samples other cells.
    model = small_model()
    model.build((None, None, 5))
    model.compile(optimizer=keras.optimizers.SGD(0.1), jit_compile=False,
                  run_eagerly=True)
    bad = self.x.copy()
    bad[0, 0, 0] = np.nan
    model.fit(bad, self.y, sample_weight=self.mask, verbose=0)
    self.assertEqual(int(model.optimizer.iterations), 0)
    self.assertEqual(int(model.draws), 1)
    x = tf.constant(self.x)
    self.assertGreater(np.abs(model._noise(x, "sample", 0)
                              - model._noise(x, "sample", 1)).max(), 0.0)
    model.fit(self.x, self.y, sample_weight=self.mask, verbose=0)
    self.assertEqual(int(model.optimizer.iterations), 1)
    self.assertEqual(int(model.draws), 2)

  def test_end_soft_hold(self):
    # A hold of a million steps: every batch runs soft (no row loop) until
    # EndSoftHold sees the monitored error below its threshold; then, with
    # no fade-out, the next steps are purely hard.
    keras.utils.set_random_seed(0)
    model = small_model(soft_curriculum_hold=10**6)
    model.build((None, None, 5))
    model.compile(optimizer=keras.optimizers.SGD(0.1), jit_compile=False,
                  run_eagerly=True)
    self.assertEqual(model.curriculum_end(), 10**6)
    end_hold = memtk.training.EndSoftHold(below=1.0, monitor="errors")
    end_hold.set_model(model)
    with mock.patch.object(sparse_unroll, "unroll",
                           wraps=sparse_unroll.unroll) as rows:
      model.fit(self.x, self.y, sample_weight=self.mask, epochs=2, verbose=0)
      end_hold.on_epoch_end(0, {"errors": 3.0})  # not yet
      self.assertEqual(model.curriculum_end(), 10**6)
      model.fit(self.x, self.y, sample_weight=self.mask, verbose=0)
      self.assertEqual(rows.call_count, 0)
      end_hold.on_epoch_end(0, {"errors": 0.5})
      self.assertEqual(model.curriculum_end(), 3)
      end_hold.on_epoch_end(0, {"errors": 0.1})  # never later again
      model.fit(self.x, self.y, sample_weight=self.mask, verbose=0)
      self.assertGreater(rows.call_count, 0)
    self.assertEqual(model.curriculum_end(), 3)
    with self.assertRaisesRegex(ValueError, "end_soft_hold needs"):
      small_model().end_soft_hold(3)
    for kwargs, message in (
        ({"below": 0.0}, "below or soft_below must be > 0, got below=0.0, "
         "soft_below=0.0"),
        ({"below": -1.0}, "below must be >= 0, got -1.0"),
        ({"soft_below": -0.5}, "soft_below must be >= 0, got -0.5")):
      with self.assertRaisesRegex(ValueError, message):
        memtk.training.EndSoftHold(**kwargs)

  def test_end_soft_hold_on_the_soft_error(self):
    # soft_below: the error of the model run softly ends the hold too; a
    # threshold of 0 is not checked, whatever the logs say.
    model = small_model(soft_curriculum_hold=10**6)
    model.build((None, None, 5))
    model.compile(optimizer=keras.optimizers.SGD(0.1), jit_compile=False,
                  run_eagerly=True)
    model.optimizer.iterations.assign(7)
    greedy_only = memtk.training.EndSoftHold(below=1.0, monitor="hard",
                                             soft_monitor="soft")
    soft_only = memtk.training.EndSoftHold(below=0.0, monitor="hard",
                                           soft_below=0.1, soft_monitor="soft")
    for callback in (greedy_only, soft_only):
      callback.set_model(model)
    self.assertFalse(greedy_only.works({"hard": 30.0, "soft": 0.0}))
    self.assertFalse(soft_only.works({"hard": 0.0, "soft": 0.5}))
    self.assertTrue(soft_only.works({"hard": 30.0, "soft": 0.05}))
    self.assertFalse(soft_only.works({"hard": 30.0}))
    soft_only.on_epoch_end(0, {"hard": 30.0, "soft": 0.5})
    self.assertEqual(model.curriculum_end(), 10**6)
    soft_only.on_epoch_end(0, {"hard": 30.0, "soft": 0.05})
    self.assertEqual(model.curriculum_end(), 7)

  def test_reinforce_moves_the_addressing_parameters(self):
    # With erase and add frozen out of the picture (no answer depends on the
    # memory through a gradient), only the surrogate can train the keys.
    model = small_model(estimator="reinforce", entropy_bonus=0.0)
    model.build((None, None, 5))
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    x, y, mask = self.x, self.y, self.mask

    def key_gradient(model):
      with tf.GradientTape() as tape:
        noise = model._noise(tf.constant(x), "sample")
        out = model._run(x, "sample", noise)[0]
        terms, _ = model.estimator.terms(out, x, y, mask,
                                         model.optimizer.iterations)
      kernel = model.cell.interface.projection.kernel
      return tape.gradient(terms, kernel)

    gradient = key_gradient(model).numpy()
    self.assertTrue(np.all(np.isfinite(gradient)))
    self.assertGreater(np.abs(gradient).max(), 0.0)

  def test_soft_curriculum_starts_soft(self):
    # While a curriculum over very many steps runs every batch softly, the
    # shared weights move exactly as a soft model's do from the same start,
    # with the recipe's optimizer (Adam, gradients clipped to global norm
    # 10, which the baseline's gradient would share) and whatever the
    # entropy bonus (it is for sampled choices only); without the
    # curriculum they do not. The return statistics stay where they
    # started.
    def trained(addressing, curriculum, hold=0):
      keras.utils.set_random_seed(0)
      model = small_model(addressing=addressing, entropy_bonus=1.0,
                          soft_curriculum_steps=curriculum,
                          soft_curriculum_hold=hold)
      model.build((None, None, 5))
      model.compile(optimizer=memtk.training.default_optimizer(0.05),
                    jit_compile=False, run_eagerly=True)
      model.fit(self.x, self.y, sample_weight=self.mask, epochs=2,
                verbose=0)
      if addressing == "hard" and (curriculum or hold):
        self.assertEqual((float(model.return_mean),
                          float(model.return_variance)), (0.0, 1.0))
      return {k: v for k, v in weights_by_name(model).items()
              if "baseline" not in k and "return" not in k
              and "seed" not in k}

    soft = trained("soft", 0)
    curriculum = trained("hard", 10**9)
    held = trained("hard", 0, hold=10)
    hard = trained("hard", 0)
    for key, value in soft.items():
      self.assertAllClose(curriculum[key], value, atol=1e-5, msg=key)
      self.assertAllClose(held[key], value, atol=1e-5, msg=key)
    self.assertTrue(any(np.abs(hard[k] - soft[k]).max() > 1e-4 for k in soft))

  @parameterized.named_parameters(
      ("entropy_bonus", dict(entropy_bonus=0.0), dict(entropy_bonus=10.0)),
      ("temperature", dict(estimator="gumbel", temperature_steps=0,
                           temperature_final=0.05),
       dict(estimator="gumbel", temperature_steps=0, temperature_final=5.0)),
      ("gumbel_writes", dict(estimator="gumbel", gumbel_writes="chosen"),
       dict(estimator="gumbel", gumbel_writes="relaxed")),
      ("gumbel_forward", dict(estimator="gumbel", gumbel_forward="greedy"),
       dict(estimator="gumbel", gumbel_forward="sample")),
      ("stats_decay", dict(stats_decay=0.0), dict(stats_decay=0.9)),
      ("reinforce_samples", dict(reinforce_samples=1),
       dict(reinforce_samples=3)),
      ("read_discount", dict(read_discount=1.0), dict(read_discount=0.5)),
      # Three cells: reads of the answer's cell are frequent.
      ("read_reward", dict(read_reward=0.0, memory_size=3),
       dict(read_reward=1.0, memory_size=3)),
      ("read_reward_cells",
       dict(read_reward=1.0, read_reward_cells="answer", memory_size=3),
       dict(read_reward=1.0, read_reward_cells="written", memory_size=3)),
      ("read_reward_heads",
       dict(read_reward=1.0, read_reward_heads="all", memory_size=3),
       dict(read_reward=1.0, read_reward_heads="read", memory_size=3)))
  def test_option_changes_training(self, first, second):
    def trained(kwargs):
      keras.utils.set_random_seed(0)
      model = small_model(**kwargs)
      model.build((None, None, 5))
      model.compile(optimizer=keras.optimizers.SGD(0.5), jit_compile=False,
                    run_eagerly=True)
      model.fit(self.x, self.y, sample_weight=self.mask, epochs=2, verbose=0)
      return model.cell.interface.projection.kernel.numpy()

    self.assertGreater(np.abs(trained(first) - trained(second)).max(), 1e-6)

  def test_return_statistics_follow_the_returns(self):
    model = small_model(stats_decay=0.0)
    model.build((None, None, 5))
    model.compile(optimizer=keras.optimizers.SGD(0.0), jit_compile=False,
                  run_eagerly=True)
    model.fit(self.x, self.y, sample_weight=self.mask, verbose=0)
    # With decay 0 the mean is the batch's mean return: minus the summed
    # cross-entropy from each step on, at most T * O * ln(2)-ish, below 0.
    self.assertLess(float(model.return_mean), 0.0)
    self.assertGreater(float(model.return_variance), 0.0)

  def test_several_runs_per_sequence(self):
    # Every sequence runs k times: the REINFORCE terms see k * B runs whose
    # returns are centred on their siblings', while the metrics and the
    # returned logits are those of each sequence's first run.
    model = small_model(reinforce_samples=3, stats_decay=0.0)
    model.build((None, None, 5))
    model.compile(optimizer=keras.optimizers.SGD(0.0), jit_compile=False,
                  run_eagerly=True)
    logits, _, _, _ = model._hard_losses(tf.constant(self.x),
                                         tf.constant(self.y),
                                         tf.constant(self.mask))
    self.assertEqual(logits.shape, self.y.shape)
    # Centred on the leave-one-out means, the returns average to 0 over the
    # batch (each run's return minus its siblings' mean sums to 0 per
    # sequence), so the running mean with decay 0 is 0.
    self.assertAllClose(float(model.return_mean), 0.0, atol=1e-5)
    history = model.fit(self.x, self.y, sample_weight=self.mask, verbose=0)
    self.assertTrue(np.isfinite(history.history["loss"][0]))

  def test_the_train_step_takes_its_terms_from_the_estimator_object(self):
    for name, kind in [("reinforce", hard_training.Reinforce),
                       ("gumbel", hard_training.StraightThroughGumbel)]:
      model = small_model(estimator=name)
      model.build((None, None, 5))
      self.assertIsInstance(model.estimator, kind)
    # REINFORCE's running statistics are the model's own weights (saved and
    # checkpointed with it).
    reinforce = small_model(estimator="reinforce")
    reinforce.build((None, None, 5))
    self.assertIs(reinforce.estimator.return_mean, reinforce.return_mean)
    # Whatever the object returns is what the step adds and logs: terms of 0
    # leave a gradient from the task loss alone, which never reaches the
    # baseline layer (it only feeds REINFORCE's terms).
    reinforce.compile(optimizer=keras.optimizers.SGD(0.5), jit_compile=False,
                      run_eagerly=True)
    reinforce.estimator.terms = lambda *args: (tf.constant(0.0),
                                               {"probe": tf.constant(7.0)})
    before = weights_by_name(reinforce)
    logs = reinforce.fit(self.x, self.y, sample_weight=self.mask,
                         verbose=0).history
    self.assertEqual(logs["probe"], [7.0])
    after = weights_by_name(reinforce)
    baseline = [k for k in before if "baseline" in k]
    self.assertNotEmpty(baseline)
    for key in baseline:
      self.assertAllEqual(before[key], after[key])
    self.assertTrue(any(np.abs(after[k] - before[k]).max() > 0
                        for k in before if "interface" in k))

  def test_save_and_load_round_trip(self):
    model = small_model(estimator="gumbel", soft_curriculum_steps=10)
    model.compile(optimizer="adam", jit_compile=False,
                  run_eagerly=True)
    model.fit(self.x, self.y, sample_weight=self.mask, verbose=0)
    path = os.path.join(self.get_temp_dir(), "hard.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    self.assertEqual(loaded.cell.addressing, "hard")
    self.assertEqual(loaded.hard_settings, model.hard_settings)
    self.assertAllClose(loaded(self.x), model(self.x), atol=1e-6)

  @parameterized.named_parameters(
      ("estimator", dict(estimator="score"), "estimator"),
      ("entropy_bonus", dict(entropy_bonus=-1.0), "entropy_bonus"),
      ("temperature", dict(temperature=0.0), "temperature"),
      ("temperature_final", dict(temperature_final=-1.0), "temperature_final"),
      ("entropy_steps", dict(entropy_steps=1.5), "entropy_steps"),
      ("curriculum", dict(soft_curriculum_steps=-1), "soft_curriculum_steps"),
      ("hold", dict(soft_curriculum_hold=2.0), "soft_curriculum_hold"),
      ("stats_decay", dict(stats_decay=1.0), "stats_decay"),
      ("samples", dict(reinforce_samples=0), "reinforce_samples"),
      ("samples_bool", dict(reinforce_samples=True), "reinforce_samples"),
      ("gumbel_writes", dict(gumbel_writes="all"),
       "gumbel_writes must be one of .*'all'"),
      ("gumbel_forward", dict(gumbel_forward="max"),
       "gumbel_forward must be one of .*'max'"),
      ("read_discount", dict(read_discount=1.5),
       r"read_discount must be in \[0, 1\], got 1.5"),
      ("samples_gumbel", dict(reinforce_samples=2, estimator="gumbel"),
       "reinforce_samples=2 needs estimator='reinforce'"),
      ("read_reward", dict(read_reward=-0.5), "read_reward must be >= 0, got -0.5"),
      ("read_reward_gumbel", dict(read_reward=1.0, estimator="gumbel"),
       "read_reward=1.0 needs estimator='reinforce'"),
      ("read_reward_cells", dict(read_reward_cells="all"),
       "read_reward_cells must be one of .*'all'"),
      ("read_reward_heads", dict(read_reward_heads="write"),
       "read_reward_heads must be one of .*'write'"))
  def test_bad_estimator_settings(self, kwargs, message):
    with self.assertRaisesRegex(ValueError, message):
      small_model(**kwargs)


class ScheduleTest(tf.test.TestCase):

  def test_linear_and_geometric(self):
    self.assertAllClose([estimators.linear_schedule(1.0, 0.0, s, 10)
                         for s in (0, 5, 10, 20)], [1.0, 0.5, 0.0, 0.0])
    self.assertAllClose(estimators.linear_schedule(1.0, 0.0, 3, 0), 0.0)
    self.assertAllClose([estimators.geometric_schedule(1.0, 0.01, s, 10)
                         for s in (0, 5, 10, 20)], [1.0, 0.1, 0.01, 0.01],
                        rtol=1e-5)

  def test_update_moments(self):
    values = tf.constant([1.0, 3.0])
    mean, variance = estimators.update_moments(0.0, 1.0, values, 0.5)
    self.assertAllClose(mean, 1.0)  # 0.5 * 0 + 0.5 * 2
    self.assertAllClose(variance, 0.5 + 0.5 * 2.0)  # E[(x - 1)^2] = 2

  def test_step_losses(self):
    logits = tf.constant([[[0.0, 2.0]]])
    targets = tf.constant([[[1.0, 0.0]]])
    want = np.log(2.0) + np.log1p(np.exp(2.0))
    self.assertAllClose(estimators.step_losses(logits, targets), [[want]])


if __name__ == "__main__":
  tf.test.main()
