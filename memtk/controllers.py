"""Controllers: the contract, and the built-in LSTM, GRU and feed-forward ones.

A controller is any Keras layer that behaves like a Keras RNN cell:

  * `call(inputs, states) -> (output, new_states)`, inputs [B, I];
  * `state_size`: an int or a (nested) list of ints, one per state tensor;
  * optionally `get_initial_state(batch_size)` (zeros are used otherwise) and
    `output_size` (found by one call on zeros otherwise).

keras.layers.LSTMCell and GRUCell satisfy it as they are. `make_controller`
also takes 'package.module:factory', a function of `units` that returns such
a layer, so scripts can train a user's controller by name.
"""

import keras
import tensorflow as tf

from memtk import factories

DEFAULT_UNITS = 100


@keras.saving.register_keras_serializable(package="memtk")
class FeedForwardController(keras.layers.Layer):
  """A stateless controller: a stack of dense layers, output_t = f(x_t).

  With no recurrent state, everything the model carries from step to step goes
  through memory and the read vectors, which makes it a clean probe of what
  the memory itself can do.
  """

  def __init__(self, units=DEFAULT_UNITS, num_layers=1, activation="tanh",
               **kwargs):
    super().__init__(**kwargs)
    if units < 1:
      raise ValueError(f"units must be >= 1, got {units}")
    if num_layers < 1:
      raise ValueError(f"num_layers must be >= 1, got {num_layers}")
    self.units = units
    self.num_layers = num_layers
    self.activation = activation
    self.state_size = []
    self.output_size = units
    self.dense_layers = [
        keras.layers.Dense(units, activation=activation, name=f"dense_{i}")
        for i in range(num_layers)]

  def build(self, input_shape):
    shape = input_shape
    for layer in self.dense_layers:
      layer.build(shape)
      shape = (shape[0], self.units)

  def get_initial_state(self, batch_size=None):
    del batch_size
    return []

  def call(self, inputs, states):
    out = inputs
    for layer in self.dense_layers:
      out = layer(out)
    return out, states

  def get_config(self):
    config = super().get_config()
    config.update(units=self.units, num_layers=self.num_layers,
                  activation=self.activation)
    return config


CONTROLLER_NAMES = ("lstm", "gru", "feedforward")


def make_controller(name, units=DEFAULT_UNITS):
  """Builds a named controller.

  Args:
    name: 'lstm' (forget bias 1), 'gru', 'feedforward', or
      'package.module:factory' where `factory(units)` returns a controller.
    units: the controller's width.

  Returns:
    The controller layer.
  """
  if units < 1:
    raise ValueError(f"controller units must be >= 1, got {units}")
  if ":" in name:
    return _from_factory(name, units)
  if name == "lstm":
    return keras.layers.LSTMCell(units, unit_forget_bias=True, name="controller")
  if name == "gru":
    return keras.layers.GRUCell(units, name="controller")
  if name == "feedforward":
    return FeedForwardController(units, name="controller")
  raise ValueError(
      f"controller must be one of {CONTROLLER_NAMES}, a "
      f"'package.module:factory' path or a Keras RNN cell, got {name!r}")


def _from_factory(path, units):
  """The controller that the factory at 'package.module:factory' returns."""
  controller = factories.import_factory(path, "controller")(units)
  check_controller(controller)
  return controller


def check_controller(controller):
  """Raises TypeError naming the part of the controller contract that is missing."""
  if not isinstance(controller, keras.layers.Layer):
    raise TypeError(
        f"controller must be a keras.layers.Layer (an RNN cell), got "
        f"{type(controller).__name__}")
  if not hasattr(controller, "state_size"):
    raise TypeError(
        f"controller {type(controller).__name__} has no state_size: an RNN "
        "cell declares the size of each state tensor (use [] for none)")
  for size in tf.nest.flatten(controller.state_size):
    if not isinstance(size, int) or size < 1:
      raise TypeError(
          f"controller {type(controller).__name__}.state_size must hold "
          f"positive ints, got {controller.state_size!r}")


def check_call(controller, inputs, states):
  """Calls the controller once and checks what it returns.

  Returns:
    The output [B, units].

  Raises:
    TypeError naming the broken part of the contract.
  """
  name = type(controller).__name__
  result = controller(inputs, states)
  if not isinstance(result, (tuple, list)) or len(result) != 2:
    raise TypeError(
        f"controller {name} must return (output, new_states) from "
        f"call(inputs, states), got {type(result).__name__}")
  output, new_states = result
  if len(getattr(output, "shape", ())) != 2:
    raise TypeError(f"controller {name} must return an output of shape "
                    f"[batch, units], got {getattr(output, 'shape', output)!r}")
  want = len(tf.nest.flatten(controller.state_size))
  got = len(tf.nest.flatten(new_states))
  if got != want:
    raise TypeError(
        f"controller {name} returned {got} state tensors but its state_size "
        f"{controller.state_size!r} declares {want}")
  return output


def initial_state(controller, batch_size, dtype="float32"):
  """The controller's initial state, as the nested structure it expects."""
  if hasattr(controller, "get_initial_state"):
    return controller.get_initial_state(batch_size=batch_size)
  sizes = controller.state_size
  return tf.nest.map_structure(lambda n: tf.zeros([batch_size, n], dtype),
                               sizes)
