"""Controllers: the contract, and the built-in LSTM, GRU and feed-forward ones.

A controller is any Keras layer that behaves like a Keras RNN cell:

  * `call(inputs, states) -> (output, new_states)`, inputs [B, I];
  * `state_size`: an int or a (nested) list of ints, one per state tensor;
  * optionally `get_initial_state(batch_size)` (zeros are used otherwise) and
    `output_size` (found by one call on zeros otherwise).

keras.layers.LSTMCell and GRUCell satisfy it as they are.
"""

import keras
import tensorflow as tf

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
  """Builds a named controller: 'lstm' (forget bias 1), 'gru' or 'feedforward'."""
  if units < 1:
    raise ValueError(f"controller units must be >= 1, got {units}")
  if name == "lstm":
    return keras.layers.LSTMCell(units, unit_forget_bias=True, name="controller")
  if name == "gru":
    return keras.layers.GRUCell(units, name="controller")
  if name == "feedforward":
    return FeedForwardController(units, name="controller")
  raise ValueError(
      f"controller must be one of {CONTROLLER_NAMES} or a Keras RNN cell, "
      f"got {name!r}")


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


def initial_state(controller, batch_size, dtype="float32"):
  """The controller's initial state, as the nested structure it expects."""
  if hasattr(controller, "get_initial_state"):
    return controller.get_initial_state(batch_size=batch_size)
  sizes = controller.state_size
  return tf.nest.map_structure(lambda n: tf.zeros([batch_size, n], dtype),
                               sizes)
