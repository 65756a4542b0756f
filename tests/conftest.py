"""pytest set-up shared by the suite."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def pytest_collection_modifyitems(config, items):
  # tf.test.TestCase ships a `test_session` helper that pytest would collect
  # and report as skipped; it is not a test of ours.
  kept = [item for item in items if item.name != "test_session"]
  if len(kept) != len(items):
    config.hook.pytest_deselected(
        items=[item for item in items if item.name == "test_session"])
    items[:] = kept
