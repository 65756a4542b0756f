"""TensorFlow's start-up notices stay out of the CLIs' output; other lines
written to standard error do not."""

import os
import subprocess
import sys

import tensorflow as tf

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_WRITES = ("import os, sys\n"
           "from tasks import startup\n"
           "def noisy(fail):\n"
           "  os.write(2, b'I0000 port.cc:153] oneDNN custom operations are "
           "on. You may see...\\n')\n"
           "  os.write(2, b'a warning of our own\\n')\n"
           "  os.write(2, b'E0000 cuda_platform.cc:52] failed call to cuInit: "
           "UNKNOWN ERROR (303)\\n')\n"
           "  if fail:\n"
           "    raise RuntimeError('broken')\n"
           "startup.quietly(lambda: noisy(False))\n"
           "sys.stderr.write('--\\n'); sys.stderr.flush()\n"
           "startup.quietly(lambda: noisy(True))\n")


class StartupTest(tf.test.TestCase):

  def test_notices_go_and_other_lines_pass_also_when_the_function_raises(self):
    # One process (TensorFlow starts once): importing tasks imports
    # TensorFlow and lists its devices, which on this CPU-only machine
    # printed the CUDA and oneDNN notices before; then two captured calls,
    # the second raising.
    env = dict(os.environ, PYTHONPATH=_ROOT)
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # as a user's shell has it
    result = subprocess.run([sys.executable, "-c", _WRITES], cwd=_ROOT,
                            env=env, capture_output=True, text=True,
                            timeout=300)
    self.assertNotEqual(result.returncode, 0)
    self.assertEqual(result.stdout, "")
    quiet, raised = result.stderr.split("--\n", 1)
    self.assertEqual(quiet, "a warning of our own\n")
    self.assertTrue(raised.startswith("a warning of our own\n"), raised)
    self.assertIn("RuntimeError: broken", raised)
    self.assertNotIn("cuInit", raised)
    self.assertNotIn("oneDNN", raised)


if __name__ == "__main__":
  tf.test.main()
