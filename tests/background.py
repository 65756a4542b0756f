"""Commands of the suite that run in other processes, beside the rest of it.

A command's time is mostly TensorFlow's start and XLA's compilation on one
core. A test module that runs commands declares them in COMMANDS
({test method name: fn(fresh directory) -> what the test checks}); conftest
starts the commands of the tests pytest will run as soon as it has
collected them, two at a time in this process's threads, and each test
waits for its own (`result`), so the commands run while the other tests do.
"""

import atexit
from concurrent import futures
import os
import shutil
import tempfile

_POOL = futures.ThreadPoolExecutor(max_workers=2)
_STARTED = {}
_ROOT = []


def start(name, fn):
  """Starts fn(a fresh directory of its own) unless `name` has started."""
  if name in _STARTED:
    return
  if not _ROOT:
    _ROOT.append(tempfile.mkdtemp(prefix="memtk_tests_"))
    atexit.register(shutil.rmtree, _ROOT[0], True)
  directory = os.path.join(_ROOT[0], name)
  os.makedirs(directory)
  _STARTED[name] = _POOL.submit(fn, directory)


def result(name, fn):
  """What fn returned for `name` (started now if it was not; waits for it,
  and raises what it raised)."""
  start(name, fn)
  return _STARTED[name].result()
