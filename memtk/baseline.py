"""The LSTM baseline: the NTM's controller with no external memory.

The NTM paper's central result is a comparison with an LSTM of similar size.
`LSTMBaseline` is that comparison's other side: an LSTM over the sequence and
a linear output layer, trained by the same recipe as the NTM (it is a
memtk.sequence_model.SequenceModel), and `units_for_parameters` sizes it to
a parameter count (the NTM's, in tasks.train --model=lstm).
"""

import math

import keras
import tensorflow as tf

from memtk import sequence_model


def lstm_parameters(units, input_size, output_size):
  """Weights of an LSTM of `units` on `input_size` features (4 gates, each
  with input and recurrent kernels and a bias) and its linear output layer."""
  return 4 * units * (input_size + units + 1) + output_size * (units + 1)


def units_for_parameters(parameters, input_size, output_size):
  """The LSTM width whose lstm_parameters come closest to `parameters`.

  Solves 4u^2 + u (4 I + 4 + O) + O = parameters for u and rounds to the
  closer of the two integers around the root (at least 1).
  """
  if parameters < 1:
    raise ValueError(f"parameters must be >= 1, got {parameters}")
  a, b, c = 4, 4 * input_size + 4 + output_size, output_size - parameters
  root = (-b + math.sqrt(b * b - 4 * a * c)) / (2 * a)
  candidates = {max(1, math.floor(root)), max(1, math.ceil(root))}
  return min(candidates, key=lambda u: abs(
      lstm_parameters(u, input_size, output_size) - parameters))


@keras.saving.register_keras_serializable(package="memtk")
class LSTMBaseline(sequence_model.SequenceModel):
  """inputs [B, T, I] -> logits [B, T, output_size] through one LSTM layer of
  `units` (forget-gate bias 1, as the NTM's LSTM controller)."""

  def __init__(self, output_size, units=100, **kwargs):
    super().__init__(**kwargs)
    for name, value in [("output_size", output_size), ("units", units)]:
      if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    self.output_size, self.units = output_size, units
    self.lstm = keras.layers.RNN(
        keras.layers.LSTMCell(units, unit_forget_bias=True, name="lstm_cell"),
        return_sequences=True, name="lstm")
    self.output_layer = keras.layers.Dense(output_size, name="output")

  def build(self, input_shape):
    input_shape = tuple(input_shape)
    if len(input_shape) != 3:
      raise ValueError(f"LSTMBaseline inputs must be [batch, time, features], "
                       f"got shape {input_shape}")
    self.lstm.build(input_shape)
    self.output_layer.build(input_shape[:2] + (self.units,))
    self.built = True

  def call(self, inputs, training=None, choice=None):
    """Logits [B, T, O]; `choice` exists for the NTM's interface and must be
    None (a baseline has no heads to choose with)."""
    del training
    if choice is not None:
      raise ValueError(f"choice must be None for an LSTM baseline, got "
                       f"{choice!r}")
    inputs = tf.convert_to_tensor(inputs, self.compute_dtype)
    if self.check_numerics:
      inputs = tf.debugging.check_numerics(inputs, "inputs hold NaN or Inf")
    return self.output_layer(self.lstm(inputs))

  def trace(self, inputs):
    """As NTM.trace: the logits, and no heads (weights [B, T, 0, 1])."""
    logits = self(inputs)
    empty = tf.zeros(tf.concat([tf.shape(logits)[:2], [0, 1]], 0),
                     logits.dtype)
    return {"logits": logits, "read_weights": empty, "write_weights": empty}

  def get_config(self):
    return {"name": self.name, "output_size": self.output_size,
            "units": self.units, "check_numerics": self.check_numerics}
