"""TensorFlow's start-up lines, kept out of the CLIs' output.

Importing TensorFlow and finding its devices prints, on a machine without a
GPU, lines that its C++ side writes before its logging is set up, so
TF_CPP_MIN_LOG_LEVEL does not reach them: a CUDA driver probe, "failed call
to cuInit", the oneDNN and CPU-instruction notices. `import_tensorflow`
runs both with the process's standard error (file descriptor 2) captured,
then writes back every line that is not one of those notices: any other
warning, the project's own included, still shows.
"""

import os
import re
import sys
import tempfile

# The start-up notices of a CPU-only TensorFlow, one pattern per notice.
_NOISE = re.compile("|".join([
    r"All log messages before absl::InitializeLog\(\) is called",
    r"oneDNN custom operations are on",
    r"Could not find cuda drivers on your machine",
    r"failed call to cuInit",
    r"Unable to register cu\w+ factory",
    r"This TensorFlow binary is optimized to use available CPU instructions",
    r"^To enable the following instructions: .* rebuild TensorFlow",
    r"TF-TRT Warning: Could not find TensorRT",
]))


def is_startup_notice(line):
  """Whether `line` is one of TensorFlow's start-up notices."""
  return bool(_NOISE.search(line))


def quietly(fn):
  """Runs fn() with file descriptor 2 captured; writes the captured lines
  that are not start-up notices to sys.stderr (also when fn raises) and
  returns fn's result."""
  sys.stderr.flush()
  try:
    saved = os.dup(2)
  except OSError:  # no standard error to capture (closed): nothing to hide
    return fn()
  with tempfile.TemporaryFile() as capture:
    os.dup2(capture.fileno(), 2)
    try:
      return fn()
    finally:
      os.dup2(saved, 2)
      os.close(saved)
      capture.seek(0)
      text = capture.read().decode(errors="replace")
      sys.stderr.write("".join(
          line for line in text.splitlines(keepends=True)
          if not is_startup_notice(line)))
      sys.stderr.flush()


def import_tensorflow():
  """Imports TensorFlow and lists its devices without the start-up notices
  (once per process; nothing to do when TensorFlow is already imported)."""
  if "tensorflow" in sys.modules:
    return

  def load():
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    tf.config.list_physical_devices()

  quietly(load)
