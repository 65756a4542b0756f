"""benchmarks.throughput (benchmarks.timing): the reference it times beside memtk, and the
ratios it prints (no timing claims: a few steps of tiny batches)."""

import tensorflow as tf

from benchmarks import timing


class ThroughputTest(tf.test.TestCase):

  def test_the_reference_trains_in_the_timed_loop(self):
    rate, compile_seconds = timing.measure(
        batch_size=2, steps=20, steps_per_execution=10, repeats=1,
        method=timing.REFERENCE)
    self.assertGreater(rate, 0.0)
    self.assertGreaterEqual(compile_seconds, 0.0)

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
