"""benchmarks/kernel_profile.py (what benchmarks.profile_step prints): the
kernel summary of a profiler trace, and one real profile of a tiny run."""

import tensorflow as tf
from tensorflow.tsl.profiler.protobuf import xplane_pb2

from benchmarks import kernel_profile

_MS = 10**9  # picoseconds


def _space(lines):
  """An XSpace of one plane whose lines hold (name, start ms, ms) events."""
  space = xplane_pb2.XSpace()
  plane = space.planes.add(name="/host:CPU")
  ids = {}
  for line_name, events in lines.items():
    line = plane.lines.add(name=line_name)
    for name, start, ms in events:
      if name not in ids:
        ids[name] = len(ids) + 1
        plane.event_metadata[ids[name]].name = name
      line.events.add(metadata_id=ids[name], offset_ps=start * _MS,
                      duration_ps=ms * _MS)
  return space


class SummariseTest(tf.test.TestCase):

  def test_counts_kernels_inside_the_executor_spans_only(self):
    space = _space({
        "eigen": [("ThunkExecutor::Execute", 0, 100),
                  ("MatMul.1", 10, 20), ("MatMul.2", 40, 10),
                  ("multiply_add_fusion.3", 60, 10),
                  ("ThunkExecutor::Execute", 200, 50),
                  ("MatMul.1", 210, 30),
                  ("BlockUntilReady", 300, 40)],  # after the spans
        "python": [("MatMul.9", 0, 500)]})  # no executor on this thread
    s = kernel_profile.summarise(space, steps=2, time_steps=2)
    self.assertEqual(s["kernel_runs"], 4)
    self.assertAllClose(s["executor_ms"], 150.0)
    self.assertAllClose(s["kernel_ms"], 70.0)
    self.assertAllClose(s["kernel_share"], 70.0 / 150.0)
    self.assertAllClose(s["runs_per_time_step"], 1.0)
    self.assertEqual([k["kind"] for k in s["kinds"]],
                     ["MatMul", "multiply_add_fusion"])
    self.assertAllClose(s["kinds"][0]["ms"], 60.0)
    self.assertAllClose(s["kinds"][0]["runs_per_time_step"], 0.75)

  def test_kernel_kind_drops_the_instance_number(self):
    self.assertEqual(kernel_profile.kernel_kind("MatMul_1.57"), "MatMul_1")
    self.assertEqual(kernel_profile.kernel_kind("copy"), "copy")
    self.assertEqual(kernel_profile.kernel_kind(
        "bitcast_dynamic-update-slice_fusion.12"),
                     "bitcast_dynamic-update-slice_fusion")


class ProfileTest(tf.test.TestCase):

  def test_a_real_step_has_kernels_and_matmuls(self):
    s = kernel_profile.profile("soft", batch_size=2, steps=2, top=50)
    self.assertEqual(s["time_steps"], 41)
    self.assertGreater(s["runs_per_time_step"], 10)
    self.assertGreater(s["kernel_ms"], 0.0)
    self.assertLessEqual(s["kernel_ms"], s["executor_ms"] * 1.01)
    self.assertIn("MatMul", [k["kind"] for k in s["kinds"]])


if __name__ == "__main__":
  tf.test.main()
