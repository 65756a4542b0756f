"""The recipe's Keras parts (memtk.training) and the train step's guard
against non-finite updates."""

import os
import types

import keras
import numpy as np
import tensorflow as tf

import memtk
from memtk import sequence_model
from memtk import training
from tasks import common
from tasks.copy import CopyTask


def tiny_model(**kwargs):
  args = dict(memory_size=8, word_size=4, controller_units=8)
  args.update(kwargs)
  return memtk.NTM("lstm", 8, **args)


def copy_batch(seed=0, size=64):
  return CopyTask(max_length=4).sample(np.random.default_rng(seed), size)


def drive(schedule, epochs, steps_per_epoch=4):
  """Runs a learning-rate schedule through epochs of logged values (dicts)
  the way fit calls it, with no model to train: the optimizer's rate after
  each epoch."""
  optimizer = keras.optimizers.Adam(1e-3)
  schedule.set_model(types.SimpleNamespace(optimizer=optimizer))
  schedule.on_train_begin()
  rates = []
  for epoch, logs in enumerate(epochs):
    for batch in range(steps_per_epoch):
      schedule.on_train_batch_begin(batch)
      optimizer.iterations.assign_add(1)
    schedule.on_epoch_end(epoch, dict(logs))
    rates.append(float(optimizer.learning_rate.numpy()))
  return rates


def logged(errors, phases):
  return [{"err": e, "phase": p} for e, p in zip(errors, phases)]


def small_steps(optimizer, variable):
  """A compiled loop of 3,000 steps on a small gradient (Adam's second
  moment forgets in about 1,000)."""

  @tf.function
  def run():
    for _ in tf.range(3000):
      optimizer.apply_gradients([(tf.constant([1e-3, 1e-3]), variable)])

  return run


class DefaultOptimizerTest(tf.test.TestCase):

  def test_compile_without_optimizer_gives_the_recipe(self):
    model = tiny_model()
    model.compile()
    config = model.optimizer.get_config()
    self.assertIsInstance(model.optimizer, keras.optimizers.Adam)
    self.assertAllClose(config["learning_rate"], training.DEFAULT_LEARNING_RATE)
    self.assertEqual(config["global_clipnorm"], training.DEFAULT_CLIP_NORM)
    self.assertFalse(config["amsgrad"])

  def test_amsgrad_shrinks_steps_as_gradients_shrink(self):
    # A large gradient, then small ones: Adam's step returns to full size,
    # AMSGrad's stays scaled by the largest second moment seen.
    moved = {}
    for amsgrad in (True, False):
      variable = keras.Variable(np.zeros(2, np.float32))
      optimizer = training.default_optimizer(amsgrad=amsgrad)
      optimizer.apply_gradients([(tf.constant([5.0, 5.0]), variable)])
      start = variable.numpy().copy()
      small_steps(optimizer, variable)()
      moved[amsgrad] = float(np.abs(variable.numpy() - start).max())
    self.assertLess(moved[True], 0.5 * moved[False])

  def test_tasks_train_uses_the_same_optimizer(self):
    model = common.make_model(
        dict(common.DEFAULT_CONFIG, memory_size=8, word_size=4,
             controller_units=8), CopyTask())
    reference = training.default_optimizer().get_config()
    config = model.optimizer.get_config()
    for key in ("learning_rate", "global_clipnorm", "beta_1", "beta_2",
                "epsilon", "amsgrad"):
      self.assertAllClose(config[key], reference[key])
    variant = common.make_model(
        dict(common.DEFAULT_CONFIG, memory_size=8, word_size=4,
             controller_units=8, amsgrad=True), CopyTask())
    self.assertTrue(variant.optimizer.get_config()["amsgrad"])

  def test_bad_arguments(self):
    with self.assertRaisesRegex(ValueError, "learning_rate must be > 0, got 0"):
      training.default_optimizer(learning_rate=0)
    with self.assertRaisesRegex(ValueError, "clip_norm must be > 0, got -1"):
      training.default_optimizer(clip_norm=-1)


class DecayOnSolveTest(tf.test.TestCase):

  def test_decayed_rate(self):
    self.assertEqual(training.decayed_rate(1e-3, 500, None, 100, 0.1), 1e-3)
    self.assertAllClose(training.decayed_rate(1e-3, 300, 200, 100, 0.1), 5e-4)
    self.assertAllClose(training.decayed_rate(1e-3, 400, 200, 100, 0.1),
                        2.5e-4)
    self.assertAllClose(training.decayed_rate(1e-3, 9000, 200, 100, 0.1), 1e-4)
    self.assertEqual(training.decayed_rate(1e-3, 400, 200, 0, 0.1), 1e-3)

  def _fit(self, callbacks):
    keras.utils.set_random_seed(1)
    model = tiny_model()
    model.compile(jit_compile=False, run_eagerly=True)
    x, y, m = copy_batch()
    model.fit(x, y, sample_weight=m, batch_size=16, epochs=3, verbose=0,
              callbacks=callbacks)
    return model

  def test_decays_once_the_metric_is_below_and_changes_training(self):
    decay = training.DecayOnSolve(below=1e9, half_life=4, floor=0.1)
    decayed = self._fit([decay])
    # Solved (by a threshold every error passes) at the end of epoch 1,
    # step 4; two epochs of 4 steps later the rate halved twice.
    self.assertEqual(decay.start_step, 4)
    self.assertAllClose(decayed.optimizer.learning_rate.numpy(), 1e-3 / 4)
    plain = self._fit([])
    self.assertAllClose(plain.optimizer.learning_rate.numpy(), 1e-3)
    self.assertNotAllClose(decayed.cell.output_layer.kernel.numpy(),
                           plain.cell.output_layer.kernel.numpy())

  def test_never_below_never_decays(self):
    decay = training.DecayOnSolve(below=1e-9, half_life=1)
    rates = drive(decay, [{"bit_errors": 0.01}] * 3)
    self.assertIsNone(decay.start_step)
    self.assertAllClose(rates, [1e-3] * 3)

  def test_a_new_phase_stops_the_decay_until_solved_again(self):
    # A soft phase solved at the end of epoch 1 (step 4) decays the rate;
    # hard epochs at 5 bits stop the decay until one is below 1 (step 16).
    errors, phases = [0.5, 0.4, 5.0, 0.8, 0.7], [1.0, 1.0, 0.0, 0.0, 0.0]
    decay = training.DecayOnSolve(below=1.0, half_life=4, floor=0.01,
                                  monitor="err", phase_monitor="phase")
    rates = drive(decay, logged(errors, phases))
    self.assertAllClose(rates, [1e-3, 5e-4, 1e-3, 1e-3, 5e-4])
    self.assertEqual((decay.start_step, decay.phase), (16, 0.0))
    # Without it the decay started in the soft phase runs on.
    decay = training.DecayOnSolve(below=1.0, half_life=4, floor=0.01,
                                  monitor="err")
    rates = drive(decay, logged(errors, phases))
    self.assertAllClose(rates, [1e-3, 5e-4, 2.5e-4, 1.25e-4, 6.25e-5])
    # Resumed in the soft phase with its decay started: a hard epoch stops it.
    decay = training.DecayOnSolve(below=1.0, half_life=4, floor=0.01,
                                  monitor="err", phase_monitor="phase",
                                  phase=1.0, start_step=0)
    self.assertAllClose(drive(decay, logged([5.0], [0.0])), [1e-3])
    self.assertIsNone(decay.start_step)

  def test_tasks_train_uses_it_watching_the_evaluations(self):
    config = dict(common.DEFAULT_CONFIG, lr_schedule="half_life",
                  lr_half_life=500, lr_decay_below=1.0)
    history = [{"step": 200, "bits_per_sequence": 30.0},
               {"step": 400, "bits_per_sequence": 0.5}]
    callback = common.decay_callback(config, history)
    self.assertIsInstance(callback, training.DecayOnSolve)
    self.assertEqual(callback.monitor, common.TRAINED_MONITOR)
    self.assertEqual(callback.start_step, 400)
    self.assertEqual((callback.below, callback.half_life), (1.0, 500))
    self.assertEqual(callback.floor, common.DEFAULT_CONFIG["lr_floor"])
    self.assertIsNone(common.decay_callback(config, history[:1]).start_step)
    self.assertEqual(callback.phase_monitor, common.PHASE_MONITOR)
    # A soft phase's evaluation run softly counts as well...
    soft = [{"step": 200, "bits_per_sequence": 30.0,
             "soft_bits_per_sequence": 0.2}]
    resumed = common.decay_callback(config, soft)
    self.assertEqual((resumed.start_step, resumed.phase), (200, 1.0))
    # ...until the batches are all hard: then only the hard records count.
    resumed = common.decay_callback(config, soft + history)
    self.assertEqual((resumed.start_step, resumed.phase), (400, 0.0))
    resumed = common.decay_callback(config, soft + history[:1])
    self.assertEqual((resumed.start_step, resumed.phase), (None, 0.0))

  def test_bad_arguments(self):
    for kwargs, message in (({"below": 0}, "below must be > 0, got 0"),
                            ({"half_life": -1}, "half_life must be an int"),
                            ({"floor": 0}, r"floor must be in \(0, 1\]")):
      with self.assertRaisesRegex(ValueError, message):
        training.DecayOnSolve(**kwargs)


class ErrorScaledRateTest(tf.test.TestCase):

  def test_error_scaled_rate(self):
    self.assertEqual(training.error_scaled_rate(1e-3, None, 1.0, 0.01, power=1.0), 1e-3)
    self.assertEqual(training.error_scaled_rate(1e-3, 3.0, 1.0, 0.01, power=1.0), 1e-3)
    self.assertAllClose(training.error_scaled_rate(1e-3, 0.25, 1.0, 0.01, power=1.0),
                        2.5e-4)
    self.assertAllClose(training.error_scaled_rate(1e-3, 0.25, 0.5, 0.01, power=1.0),
                        5e-4)
    self.assertAllClose(training.error_scaled_rate(1e-3, 0.0, 1.0, 0.01, power=1.0), 1e-5)
    self.assertAllClose(
        training.error_scaled_rate(1e-3, 0.25, 1.0, 0.01, power=0.5), 5e-4)
    self.assertAllClose(
        training.error_scaled_rate(1e-3, 1e-6, 1.0, 0.01, power=0.5), 1e-5)

  def _fit(self, callbacks):
    keras.utils.set_random_seed(1)
    model = tiny_model()
    model.compile(jit_compile=False, run_eagerly=True)
    x, y, m = copy_batch()
    history = model.fit(x, y, sample_weight=m, batch_size=16, epochs=3,
                        verbose=0, callbacks=callbacks)
    return model, history.history["bit_errors"]

  def test_follows_the_lowest_error_and_changes_training(self):
    # below=100 bits: every epoch's mean training error is below it.
    scaled = training.ErrorScaledRate(below=100.0, floor=0.001, power=1.0)
    model, errors = self._fit([scaled])
    self.assertAllClose(scaled.best, min(errors))
    self.assertAllClose(model.optimizer.learning_rate.numpy(),
                        1e-3 * min(errors) / 100.0)
    plain, _ = self._fit([])
    self.assertAllClose(plain.optimizer.learning_rate.numpy(), 1e-3)
    self.assertNotAllClose(model.cell.output_layer.kernel.numpy(),
                           plain.cell.output_layer.kernel.numpy())

  def test_power_sets_how_steeply_the_rate_follows(self):
    scaled = training.ErrorScaledRate(below=100.0, floor=0.001)  # power 0.5
    rates = drive(scaled, [{"bit_errors": 25.0}])
    self.assertAllClose(rates, [1e-3 * 0.5])
    scaled = training.ErrorScaledRate(below=100.0, floor=0.001, power=2.0)
    self.assertAllClose(drive(scaled, [{"bit_errors": 25.0}]), [1e-3 / 16])

  def test_never_rises_and_keeps_its_floor(self):
    scaled = training.ErrorScaledRate(below=100.0, floor=0.5, best=1.0)
    rates = drive(scaled, [{"bit_errors": 3.0}, {"bit_errors": 2.0}])
    self.assertEqual(scaled.best, 1.0)  # no epoch did better than 1 bit
    self.assertAllClose(rates, [5e-4, 5e-4])

  def test_tasks_train_uses_it_watching_the_evaluations(self):
    config = dict(common.DEFAULT_CONFIG, lr_schedule="error", lr_floor=0.05,
                  lr_error_power=0.25)
    history = [{"step": 200, "bits_per_sequence": 0.5},
               {"step": 400, "bits_per_sequence": 2.0}]
    callback = common.decay_callback(config, history)
    self.assertIsInstance(callback, training.ErrorScaledRate)
    self.assertEqual(callback.monitor, common.TRAINED_MONITOR)
    self.assertEqual((callback.best, callback.floor, callback.power),
                     (0.5, 0.05, 0.25))
    self.assertIsNone(common.decay_callback(config, []).best)
    # A hard model's soft phase: the lower of its greedy and soft errors.
    history[1]["soft_bits_per_sequence"] = 0.1
    self.assertEqual(common.decay_callback(config, history).best, 0.1)
    self.assertEqual(callback.phase_monitor, common.PHASE_MONITOR)
    # Resumed after the soft phase: the lowest error of the hard records.
    soft = [{"step": 200, "bits_per_sequence": 8.0,
             "soft_bits_per_sequence": 0.01}]
    hard = [{"step": 400, "bits_per_sequence": 7.0},
            {"step": 600, "bits_per_sequence": 6.5}]
    resumed = common.decay_callback(config, soft + hard)
    self.assertEqual((resumed.best, resumed.phase), (6.5, 0.0))
    resumed = common.decay_callback(config, soft)
    self.assertEqual((resumed.best, resumed.phase), (0.01, 1.0))

  def test_a_new_phase_restarts_the_lowest_error(self):
    # Two epochs of a soft phase solved (0.01, 0.02 bits), then one hard
    # epoch at 5 bits: the rate follows the 5, not the soft phase's 0.01.
    def rate(errors, phases, **kwargs):
      scaled = training.ErrorScaledRate(below=100.0, floor=0.001, power=1.0,
                                        monitor="err", **kwargs)
      rates = drive(scaled, logged(errors, phases))
      return scaled.best, rates[-1]

    soft_then_hard = ([0.01, 0.02, 5.0], [1.0, 1.0, 0.0])
    best, lr = rate(*soft_then_hard, phase_monitor="phase")
    self.assertEqual(best, 5.0)
    self.assertAllClose(lr, 1e-3 * 5.0 / 100.0)
    best, lr = rate(*soft_then_hard)  # without it: the whole run's lowest
    self.assertEqual(best, 0.01)
    self.assertAllClose(lr, 1e-3 * 0.01 / 100.0)
    # Resumed: the phase of the resumed `best` counts as the one before.
    best, _ = rate(*soft_then_hard, phase_monitor="phase", phase=1.0,
                   best=0.005)
    self.assertEqual(best, 5.0)
    best, _ = rate([7.0, 6.0, 5.0], [0.0, 0.0, 0.0], phase_monitor="phase",
                   phase=0.0, best=4.0)
    self.assertEqual(best, 4.0)  # the same phase: no restart

  def test_bad_arguments(self):
    for kwargs, message in (({"below": -1}, "below must be > 0, got -1"),
                            ({"floor": 1.5}, r"floor must be in \(0, 1\]"),
                            ({"power": 0}, "power must be > 0, got 0")):
      with self.assertRaisesRegex(ValueError, message):
        training.ErrorScaledRate(**kwargs)


class ScaleStepsTest(tf.test.TestCase):
  """compile(scale_steps=True): the optimizer's step shrinks with the lowest
  running mean of the training error (memtk.sequence_model)."""

  def _one_step(self, scale_steps, state=None):
    """(weights before, after) of one fit step from the same start."""
    keras.utils.set_random_seed(0)
    model = tiny_model()
    # Without XLA only to keep the test quick: the step is the same.
    model.compile(scale_steps=scale_steps, jit_compile=False,
                  run_eagerly=True)
    x, y, m = copy_batch(size=16)
    model.build(x.shape)
    if state is not None:
      model._step_error.assign(state)  # pylint: disable=protected-access
    before = [v.numpy().copy() for v in model.trainable_variables]
    logs = model.fit(x, y, sample_weight=m, batch_size=16, verbose=0).history
    after = [v.numpy() for v in model.trainable_variables]
    return before, after, logs, model

  def test_steps_shrink_with_the_lowest_error(self):
    before, full, _, _ = self._one_step(False)
    # Lowest running mean 0.01 bit errors (below any new mean 0.98 * 0.04
    # + 0.02 e): steps at sqrt(0.01) = 0.1 of the optimizer's.
    _, scaled, logs, model = self._one_step(True, [0.04, 0.01, 0.0, 1e9])
    self.assertAllClose(logs["step_scale"], [0.1])
    for b, f, s in zip(before, full, scaled):
      self.assertAllClose(s - b, 0.1 * (f - b), atol=1e-6)
    mean, best, _, _ = model._step_error.numpy()  # pylint: disable=protected-access
    self.assertEqual(best, np.float32(0.01))
    self.assertGreater(mean, 0.039)

  def test_full_steps_above_one_bit_and_when_off(self):
    before, full, _, _ = self._one_step(False)
    # A fresh model makes many bit errors: its first step is the optimizer's.
    _, scaled, logs, model = self._one_step(True)
    self.assertAllClose(logs["step_scale"], [1.0])
    for f, s in zip(full, scaled):
      self.assertAllClose(s, f)
    mean, best, _, _ = model._step_error.numpy()  # pylint: disable=protected-access
    self.assertGreater(mean, 1.0)
    self.assertEqual(mean, best)
    self.assertNotAllClose(before[-1], full[-1])

  def test_a_new_phase_starts_the_lowest_error_again(self):
    # A hard model whose soft hold ends at step 0: phase 1 from the start,
    # so a lowest error recorded in phase 0 is forgotten.
    keras.utils.set_random_seed(0)
    model = tiny_model(addressing="hard", soft_curriculum_hold=5,
                       soft_curriculum_steps=5)
    model.compile(scale_steps=True, jit_compile=False,
                  run_eagerly=True)
    x, y, m = copy_batch(size=16)
    model.build(x.shape)
    model.end_soft_hold(0)
    model._step_error.assign([0.04, 0.01, 0.0, 1e9])  # pylint: disable=protected-access
    logs = model.fit(x, y, sample_weight=m, batch_size=16, verbose=0).history
    self.assertAllClose(logs["step_scale"], [1.0])
    self.assertEqual(model._step_error.numpy()[2], 1.0)  # pylint: disable=protected-access

  def test_a_saved_model_compiles_as_it_was(self):
    for scale_steps in (False, True):
      model = tiny_model()
      model.compile(scale_steps=scale_steps, jit_compile=False,
                    run_eagerly=True)
      x, y, m = copy_batch(size=4)
      model.fit(x, y, sample_weight=m, verbose=0)
      path = os.path.join(self.get_temp_dir(), f"scaled{scale_steps}.keras")
      model.save(path)
      self.assertEqual(keras.models.load_model(path).scale_steps, scale_steps)
    plain = tiny_model()
    plain.compile()
    self.assertTrue(plain.scale_steps)  # on by default
    self.assertIsNotNone(plain._step_error)  # pylint: disable=protected-access

  def test_bad_setting(self):
    with self.assertRaisesRegex(ValueError, "scale_steps must be True or "
                                "False, got 'yes'"):
      tiny_model().compile(scale_steps="yes")


class RestoreBestTest(tf.test.TestCase):
  """compile(restore_best=True): once the training error's running mean has
  been below RESTORE_BELOW, a step that takes it above RESTORE_ABOVE sets
  the weights and the optimizer's moments back to where it was lowest
  (memtk.sequence_model)."""

  def _two_steps(self, restore_best, state):
    """(weights after step 1, after step 2, logs of step 2, model): step 1
    from a fresh state (its mean is a new lowest, so restore_best keeps its
    weights), then `state` set and step 2 on a new batch."""
    keras.utils.set_random_seed(0)
    model = tiny_model()
    model.compile(restore_best=restore_best, jit_compile=False,
                  run_eagerly=True)
    x, y, m = copy_batch(size=32)
    model.fit(x[:16], y[:16], sample_weight=m[:16], batch_size=16, verbose=0)
    first = [v.numpy().copy() for v in model.trainable_variables]
    first_moments = [v.numpy().copy() for v in model.optimizer.variables
                     if v is not model.optimizer.iterations]
    model._step_error.assign(state)  # pylint: disable=protected-access
    logs = model.fit(x[16:], y[16:], sample_weight=m[16:], batch_size=16,
                     verbose=0).history
    second = [v.numpy() for v in model.trainable_variables]
    moments = [v.numpy() for v in model.optimizer.variables
               if v is not model.optimizer.iterations]
    return first, second, logs, model, first_moments, moments

  def test_a_fall_back_restores_the_best_weights(self):
    # Lowest mean 0.01, now 0.9: a fresh model's step (13 bit errors) takes
    # the mean to 0.98 * 0.9 + 0.02 * 13 > 1.
    first, second, logs, model, first_moments, moments = self._two_steps(
        True, [0.9, 0.01, 0.0, 1e9])
    self.assertEqual(logs["restored_steps"], [1.0])
    for a, b in zip(first, second):
      self.assertAllEqual(a, b)
    for a, b in zip(first_moments, moments):
      self.assertAllEqual(a, b)
    self.assertEqual(int(model.optimizer.iterations.numpy()), 2)
    mean, best, _, since = model._step_error.numpy()  # pylint: disable=protected-access
    self.assertEqual(mean, best)  # the restored weights' mean
    self.assertAllClose(best, 0.01)
    self.assertEqual(since, 0.0)

  def test_a_second_fall_soon_after_starts_the_lowest_error_again(self):
    # The same fall 10 steps after a restore: kept, and the lowest error
    # becomes the new mean (a harder curriculum is not undone forever).
    first, second, logs, model, _, _ = self._two_steps(
        True, [0.9, 0.01, 0.0, 10.0])
    self.assertEqual(logs["restored_steps"], [0.0])
    self.assertNotAllClose(first[-1], second[-1])
    mean, best, _, since = model._step_error.numpy()  # pylint: disable=protected-access
    self.assertGreater(mean, sequence_model.RESTORE_ABOVE)
    self.assertEqual(best, mean)
    self.assertEqual(since, 11.0)

  def test_no_restore_before_solved_below_the_line_or_when_off(self):
    for restore_best, state in (
        (True, [0.9, 0.6, 0.0, 1e9]),   # never below RESTORE_BELOW
        (True, [0.2, 0.01, 0.0, 1e9]),  # the mean stays under RESTORE_ABOVE
        (False, [0.9, 0.01, 0.0, 1e9])):  # off
      first, second, logs, _, _, _ = self._two_steps(restore_best, state)
      self.assertNotAllClose(first[-1], second[-1])
      self.assertEqual(logs.get("restored_steps", [0.0]), [0.0])

  def test_a_saved_model_compiles_as_it_was(self):
    model = tiny_model()
    model.compile(restore_best=True, jit_compile=False, run_eagerly=True)
    x, y, m = copy_batch(size=4)
    model.fit(x, y, sample_weight=m, verbose=0)
    path = os.path.join(self.get_temp_dir(), "restore.keras")
    model.save(path)
    self.assertTrue(keras.models.load_model(path).restore_best)

  def test_on_by_default_off_in_tasks_train(self):
    plain = tiny_model()
    plain.compile()
    self.assertTrue(plain.restore_best)
    recipe = common.make_model(
        dict(common.DEFAULT_CONFIG, memory_size=8, word_size=4,
             controller_units=8), CopyTask())
    self.assertFalse(recipe.restore_best)  # the recipe's tables stand
    self.assertFalse(recipe.scale_steps)

  def test_bad_setting(self):
    with self.assertRaisesRegex(ValueError, "restore_best must be True or "
                                "False, got 'no'"):
      tiny_model().compile(restore_best="no")


class LossMarginTest(tf.test.TestCase):
  """compile()'s loss gives no gradient to a bit right by more than the
  margin; tasks.train keeps the plain loss."""

  def _logit_gradients(self, loss, logits):
    targets = tf.constant([[[1.0, 0.0, 1.0, 0.0]]])
    logits = tf.constant([[logits]])
    with tf.GradientTape() as tape:
      tape.watch(logits)
      value = loss(targets, logits, sample_weight=tf.ones([1, 1]))
    return tape.gradient(value, logits).numpy().ravel()

  def test_compile_without_a_loss_stops_at_the_margin(self):
    margin = memtk.metrics.COMPILE_MARGIN
    right_by_more = [margin + 1, -(margin + 1)]
    right_by_less = [margin - 1, -(margin - 1)]
    model = tiny_model()
    model.compile()
    got = self._logit_gradients(model.loss, right_by_more + right_by_less)
    self.assertAllEqual(got[:2], [0.0, 0.0])
    self.assertTrue(np.all(np.abs(got[2:]) > 1e-4), got)
    # tasks.train's model: the plain cross-entropy, a gradient everywhere.
    recipe = common.make_model(
        dict(common.DEFAULT_CONFIG, memory_size=8, word_size=4,
             controller_units=8), CopyTask())
    got = self._logit_gradients(recipe.loss, right_by_more + right_by_less)
    self.assertTrue(np.all(np.abs(got) > 1e-5), got)

  def test_a_saved_model_keeps_its_margin(self):
    model = tiny_model()
    model.compile(jit_compile=False, run_eagerly=True)
    x, y, m = copy_batch(size=4)
    model.fit(x, y, sample_weight=m, verbose=0)
    path = os.path.join(self.get_temp_dir(), "margin.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    self.assertEqual(loaded.loss.margin, memtk.metrics.COMPILE_MARGIN)


class SkipNonFiniteTest(tf.test.TestCase):

  def test_a_nan_batch_between_good_ones_changes_nothing(self):
    keras.utils.set_random_seed(0)
    model = tiny_model()
    model.compile()
    x, y, m = copy_batch(size=32)
    model.fit(x, y, sample_weight=m, batch_size=32, verbose=0)
    weights = [v.numpy().copy() for v in model.variables]
    slots = [v.numpy().copy() for v in model.optimizer.variables]
    bad = x.copy()
    bad[3, 1, 2] = np.nan
    logs = model.fit(bad, y, sample_weight=m, batch_size=32, verbose=0).history
    self.assertEqual(logs["skipped_steps"], [1.0])
    for before, variable in zip(weights, model.variables):
      self.assertAllEqual(before, variable.numpy())
    for before, variable in zip(slots, model.optimizer.variables):
      self.assertAllEqual(before, variable.numpy())  # iterations included
    logs = model.fit(x, y, sample_weight=m, batch_size=32, verbose=0).history
    self.assertEqual(logs["skipped_steps"], [0.0])
    self.assertTrue(np.isfinite(logs["loss"][0]))
    self.assertEqual(int(model.optimizer.iterations.numpy()), 2)
    self.assertNotAllClose(weights[-1], model.variables[-1].numpy())
    for variable in model.variables:
      self.assertTrue(np.all(np.isfinite(variable.numpy())), variable.path)

  def test_a_hard_model_skips_too(self):
    keras.utils.set_random_seed(0)
    model = tiny_model(addressing="hard")
    model.compile()
    x, y, m = copy_batch(size=16)
    model.fit(x, y, sample_weight=m, batch_size=16, verbose=0)
    before = [v.numpy().copy() for v in model.variables]
    bad = x.copy()
    bad[0, 0, 0] = np.inf
    logs = model.fit(bad, y, sample_weight=m, batch_size=16, verbose=0).history
    self.assertEqual(logs["skipped_steps"], [1.0])
    for value, variable in zip(before, model.variables):
      if variable is model.draws:  # the retry draws new choices
        self.assertEqual(variable.numpy(), value + 1)
      else:
        self.assertAllEqual(value, variable.numpy())


if __name__ == "__main__":
  tf.test.main()
