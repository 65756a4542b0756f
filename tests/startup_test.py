"""TensorFlow's start-up notices stay out of the CLIs' output; other lines
written to standard error do not."""

import os
import subprocess
import sys

import tensorflow as tf

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_WRITES = ("import os\n"
           "from tasks import startup\n"
           "def noisy():\n"
           "  os.write(2, b'I0000 port.cc:153] oneDNN custom operations are "
           "on. You may see...\\n')\n"
           "  os.write(2, b'a warning of our own\\n')\n"
           "  os.write(2, b'E0000 cuda_platform.cc:52] failed call to cuInit: "
           "UNKNOWN ERROR (303)\\n')\n"
           "  {end}\n"
           "startup.quietly(noisy)\n")


def _python(code):
  env = dict(os.environ, PYTHONPATH=_ROOT)
  env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # as a user's shell has it
  return subprocess.run([sys.executable, "-c", code], cwd=_ROOT, env=env,
                        capture_output=True, text=True, timeout=300)


class StartupTest(tf.test.TestCase):

  def test_importing_tasks_prints_nothing_and_other_lines_pass(self):
    # Importing tasks imports TensorFlow and lists its devices: on this
    # CPU-only machine that printed the CUDA and oneDNN notices before.
    result = _python(_WRITES.format(end="pass"))
    self.assertEqual(result.returncode, 0, result.stderr)
    self.assertEqual(result.stderr, "a warning of our own\n")
    self.assertEqual(result.stdout, "")

  def test_lines_pass_when_the_function_raises(self):
    result = _python(_WRITES.format(end="raise RuntimeError('broken')"))
    self.assertNotEqual(result.returncode, 0)
    self.assertIn("a warning of our own\n", result.stderr)
    self.assertIn("RuntimeError: broken", result.stderr)
    self.assertNotIn("cuInit", result.stderr)


if __name__ == "__main__":
  tf.test.main()
