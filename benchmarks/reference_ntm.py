"""The straightforward NTM: what memtk's soft model computes, written as the
plain composition of `memtk.addressing` and `memtk.memory` with autodiff.

No hand-written gradient and no fused access: each step is the controller,
the head interface, `addressing.address`, `memory.write`, `memory.read` and
the output layer, unrolled by `memtk.unroll` (one `tf.while_loop`) and
differentiated by TensorFlow. It is the reference `benchmarks.throughput`
times beside memtk, in the same process layout and with the same XLA
compilation and train step (a memtk SequenceModel), so its ratio says what
memtk's own work on the step buys on this machine.

`ReferenceNTM.like(ntm)` builds it with the settings of a soft memtk.NTM (a
fresh NTMCell of the same config, whose layers and initial state it uses), so
`reference.cell.set_weights(ntm.cell.get_weights())` makes the two compute
the same function; tests/reference_ntm_test.py checks values and gradients in
float64.
"""

import tensorflow as tf

from memtk import addressing
from memtk import cell as cell_lib
from memtk import memory
from memtk import sequence_model
from memtk.unroll import unroll


class ReferenceNTM(sequence_model.SequenceModel):
  """A soft NTM with content addressing, stepped by plain composition.

  Args:
    cell: the soft memtk.NTMCell (content addressing on) whose variables and
      settings the model uses; see `like`.
  """

  def __init__(self, cell, **kwargs):
    super().__init__(**kwargs)
    if cell.addressing != "soft" or not cell.content_addressing:
      raise ValueError(
          "ReferenceNTM needs a soft cell with content addressing, got "
          f"addressing={cell.addressing!r}, "
          f"content_addressing={cell.content_addressing}")
    self.cell = cell

  @classmethod
  def like(cls, ntm):
    """A ReferenceNTM with the settings of the memtk.NTM `ntm` (its own,
    freshly initialised variables)."""
    return cls(cell_lib.NTMCell.from_config(ntm.cell.get_config()))

  def build(self, input_shape):
    self.cell.build((None, input_shape[-1]))
    self.built = True

  def step(self, inputs, state):
    """One step: (logits [B, O], NTMState) from x_t [B, I] and the state."""
    cell = self.cell
    controller_output, controller_state, p = cell.control(inputs, state)
    weights = addressing.address(state.memory, state.weights, p.key,
                                 p.strength, p.gate, p.shift, p.gamma)
    read_weights = weights[:, :cell.num_read_heads]
    write_weights = weights[:, cell.num_read_heads:]
    new_memory = memory.write(state.memory, write_weights, p.erase, p.add)
    read = memory.read(new_memory, read_weights)
    logits, _ = cell.emit(controller_output, read)
    return logits, cell_lib.NTMState(controller_state, new_memory, read,
                                     weights)

  def call(self, inputs, training=None):
    del training
    inputs = tf.convert_to_tensor(inputs, self.compute_dtype)
    initial = self.cell.initial_ntm_state(tf.shape(inputs)[0])
    logits, _, _ = unroll(self.step, inputs, initial)
    return logits


class NoAccessNTM(ReferenceNTM):
  """The floor under a soft NTM step: the same controller, head interface and
  output layer in the same time loop, with no memory access at all.

  Each read head reads its own key (r_t = k_t, so the interface stays in the
  computation and its gradient is taken); the memory and weightings pass
  through unchanged. It learns nothing useful; `benchmarks.throughput` times
  it to show how much of a step the access takes and how fast a step could
  be if the access cost nothing.
  """

  def step(self, inputs, state):
    cell = self.cell
    controller_output, controller_state, p = cell.control(inputs, state)
    read = p.key[:, :cell.num_read_heads]
    logits, _ = cell.emit(controller_output, read)
    return logits, cell_lib.NTMState(controller_state, state.memory, read,
                                     state.weights)
