"""benchmarks.throughput (benchmarks.timing): the reference it times beside memtk, and the
ratios it prints (no timing claims: a few steps of tiny batches)."""

import tensorflow as tf

import memtk
from benchmarks import reference_ntm
from benchmarks import timing


class ThroughputTest(tf.test.TestCase):

  def test_the_benchmark_models_train_side_by_side_in_the_timed_loop(self):
    measured = timing.measure(
        batch_size=2, steps=4, steps_per_execution=2, repeats=2,
        methods=[timing.REFERENCE, timing.NO_ACCESS])
    self.assertEqual(list(measured), [timing.REFERENCE, timing.NO_ACCESS])
    for rate, first_call_seconds in measured.values():
      self.assertGreater(rate, 0.0)
      self.assertGreaterEqual(first_call_seconds, 0.0)

  def test_the_no_access_floor_trains_controller_and_interface(self):
    model = reference_ntm.NoAccessNTM.like(memtk.NTM(
        "lstm", output_size=2, memory_size=6, word_size=3,
        controller_units=5))
    x = tf.random.stateless_uniform((2, 5, 3), seed=(0, 1))
    model(x)
    cell = model.cell
    with tf.GradientTape() as tape:
      loss = tf.reduce_sum(tf.sin(model(x)))
    kernels = [cell.interface.trainable_weights[0],
               cell.controller.trainable_weights[0]]
    # The read vector is the read heads' keys: both layers learn.
    for kernel, grad in zip(kernels, tape.gradient(loss, kernels)):
      self.assertGreater(float(tf.reduce_sum(tf.abs(grad))), 0.0, kernel.path)

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
