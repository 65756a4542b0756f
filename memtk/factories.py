"""User code by name: the callable a 'package.module:factory' path names, so
scripts can build a user's controller or task from a flag."""

import importlib


def import_factory(path, what):
  """The callable at `path` ('package.module:factory').

  `what` names the flag or argument in error messages ('controller',
  'task'). Raises ValueError when the module cannot be imported or has no
  such callable.
  """
  module_name, colon, attribute = path.partition(":")
  if not colon or not module_name or not attribute:
    raise ValueError(f"{what} {path!r}: expected 'package.module:factory'")
  try:
    module = importlib.import_module(module_name)
  except ImportError as e:
    raise ValueError(f"{what} {path!r}: cannot import module "
                     f"{module_name!r} ({e})") from None
  factory = getattr(module, attribute, None)
  if not callable(factory):
    raise ValueError(f"{what} {path!r}: module {module_name!r} has no "
                     f"callable {attribute!r}")
  return factory
