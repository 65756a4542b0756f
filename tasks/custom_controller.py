r"""A user-written controller, trained by the standard CLI.

  python -m tasks.train --controller=tasks.custom_controller:make \
      --logdir=runs/copy-stacked

`--controller` takes any 'package.module:factory' path: the factory gets
`--controller_units` and returns a layer that keeps memtk's controller
contract (memtk.controllers): `call(inputs, states) -> (output, new_states)`,
a `state_size`, and optionally `get_initial_state` and `output_size`. This
one stacks two LSTM cells, the second reading the first's output.
"""

import keras


@keras.saving.register_keras_serializable(package="tasks")
class StackedLSTM(keras.layers.Layer):
  """`num_layers` LSTM cells in a stack; the state is one [h, c] per cell."""

  def __init__(self, units, num_layers=2, **kwargs):
    super().__init__(**kwargs)
    self.units = units
    self.num_layers = num_layers
    self.cells = [keras.layers.LSTMCell(units, unit_forget_bias=True,
                                        name=f"lstm_{i}")
                  for i in range(num_layers)]
    self.state_size = [cell.state_size for cell in self.cells]
    self.output_size = units

  def build(self, input_shape):
    for cell in self.cells:
      cell.build(input_shape)
      input_shape = (input_shape[0], self.units)

  def get_initial_state(self, batch_size=None):
    return [cell.get_initial_state(batch_size) for cell in self.cells]

  def call(self, inputs, states):
    output, new_states = inputs, []
    for cell, state in zip(self.cells, states):
      output, state = cell(output, state)
      new_states.append(state)
    return output, new_states

  def get_config(self):
    config = super().get_config()
    config.update(units=self.units, num_layers=self.num_layers)
    return config


def make(units):
  """The factory `--controller=tasks.custom_controller:make` calls."""
  return StackedLSTM(units)
