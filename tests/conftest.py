"""pytest set-up shared by the suite."""

import os

from tests import background

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# The suite's XLA programs are small and run for a few steps, so compiling
# them dominates: LLVM's optimisation of their CPU code costs more time than
# it saves, and XLA's older elemental emitters compile them in about three
# quarters of the CPU time of its default fusion emitters (compiled gradients
# of the row loop and a small fit, measured on this project's machine). Set
# before TensorFlow starts, and passed on to the commands the tests run;
# training outside the suite keeps XLA's defaults.
os.environ.setdefault("XLA_FLAGS", "--xla_backend_optimization_level=0 "
                      "--xla_cpu_use_fusion_emitters=false")


def pytest_collection_modifyitems(config, items):
  # tf.test.TestCase ships a `test_session` helper that pytest would collect
  # and report as skipped; it is not a test of ours.
  kept = [item for item in items if item.name != "test_session"]
  if len(kept) != len(items):
    config.hook.pytest_deselected(
        items=[item for item in items if item.name == "test_session"])
    items[:] = kept


def pytest_collection_finish(session):
  # The commands of the tests that will run start now, each module's in the
  # order of its COMMANDS, and run beside the rest of the suite
  # (tests.background).
  selected = {(id(item.module), item.name) for item in session.items}
  for module in {id(i.module): i.module for i in session.items}.values():
    for name, fn in getattr(module, "COMMANDS", {}).items():
      if (id(module), name) in selected:
        background.start(name, fn)
