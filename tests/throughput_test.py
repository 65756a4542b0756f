"""benchmarks.throughput (benchmarks.timing): the reference it times beside memtk, and the
ratios it prints (no timing claims: a few steps of tiny batches)."""

import tensorflow as tf

from benchmarks import timing


class ThroughputTest(tf.test.TestCase):

  def test_the_benchmark_models_train_side_by_side_in_the_timed_loop(self):
    measured = timing.measure(
        batch_size=2, steps=20, steps_per_execution=10, repeats=2,
        methods=[timing.REFERENCE, timing.NO_ACCESS])
    self.assertEqual(list(measured), [timing.REFERENCE, timing.NO_ACCESS])
    for rate, first_call_seconds in measured.values():
      self.assertGreater(rate, 0.0)
      self.assertGreaterEqual(first_call_seconds, 0.0)

  def test_the_no_access_floor_trains_controller_and_interface(self):
    model, (x, y, m), _ = timing.compiled_model(
        timing.NO_ACCESS, batch_size=2, steps_per_execution=1, steps=2)
    with tf.GradientTape() as tape:
      loss = tf.reduce_sum(model(x[:2]) * y[:2] * m[:2, :, None])
    variables = model.cell.trainable_weights
    grads = dict(zip([v.path for v in variables],
                     tape.gradient(loss, variables)))
    # The read vector is the read heads' keys: both layers learn.
    self.assertGreater(float(tf.reduce_sum(tf.abs(
        grads[model.cell.interface.trainable_weights[0].path]))), 0.0)
    self.assertGreater(float(tf.reduce_sum(tf.abs(
        grads[model.cell.controller.trainable_weights[0].path]))), 0.0)

  def test_ratios_pair_each_method_with_the_reference_of_its_batch(self):
    rows = [dict(method=m, batch_size=b, threads=1, sequences_per_second=r)
            for m, b, r in [("soft", 32, 600.0), ("reference", 32, 200.0),
                            ("sparse", 32, 300.0), ("soft", 8, 100.0),
                            ("reference", 16, 50.0)]]
    ratios = timing.ratios_to_reference(rows)
    self.assertEqual([(r["method"], r["batch_size"]) for r in ratios],
                     [("soft", 32), ("sparse", 32)])  # batch 8: no reference
    self.assertAllClose([r["ratio"] for r in ratios], [3.0, 1.5])


if __name__ == "__main__":
  tf.test.main()
