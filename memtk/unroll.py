"""A free time loop over a step function, compiled by XLA as one while loop."""

import tensorflow as tf


def swap_batch_and_time(x):
  """[B, T, ...] <-> [T, B, ...] (swapping the first two axes)."""
  return tf.transpose(x, [1, 0] + list(range(2, len(x.shape))))


@tf.autograph.experimental.do_not_convert
def unroll(step, inputs, initial_state, collect=None):
  """Runs `step` over the time axis of `inputs`.

  Args:
    step: (x_t [B, I], state) -> (output_t [B, O], new_state); `state` is any
      tf.nest structure and keeps its structure from step to step; x_t and
      output_t may be nested structures too (each leaf with the time axis
      removed).
    inputs: [B, T, I] batch-major inputs, or a tf.nest structure of [B, T, ...]
      tensors with the same B and T.
    initial_state: the state before the first step.
    collect: optional (state) -> nested tensors, recorded after every step
      (attention weights for heat maps, say).

  Returns:
    (outputs [B, T, O] (nested like output_t), final_state, collected) where `collected` mirrors
    collect's structure with a time axis after the batch axis ([B, T, ...]),
    or None without `collect`.
  """
  inputs_tm = tf.nest.map_structure(swap_batch_and_time, inputs)
  first_input = tf.nest.flatten(inputs)[0]
  static_steps = first_input.shape[1]
  num_steps = (static_steps if static_steps is not None
               else tf.shape(first_input)[1])

  def at(t):
    return tf.nest.map_structure(lambda x: x[t], inputs_tm)

  def write(arrays, t, values):
    return tf.nest.map_structure(lambda ta, x: ta.write(t, x), arrays, values)

  def arrays_like(structure):
    return tf.nest.map_structure(
        lambda x: tf.TensorArray(x.dtype, size=num_steps,
                                 element_shape=x.shape), structure)

  # One step outside the loop gives the output structure and dtype.
  first_output, first_state = step(at(0), initial_state)
  output_array = write(arrays_like(first_output), 0, first_output)
  collect_array = None
  if collect is not None:
    first_collected = collect(first_state)
    collect_array = write(arrays_like(first_collected), 0, first_collected)

  def body(t, state, out_ta, col_ta):
    output, new_state = step(at(t), state)
    out_ta = write(out_ta, t, output)
    if col_ta is not None:
      col_ta = write(col_ta, t, collect(new_state))
    return t + 1, new_state, out_ta, col_ta

  loop_vars = (tf.constant(1), first_state, output_array, collect_array)
  if collect is None:
    loop_vars = loop_vars[:3]
    wrapped = lambda t, s, o: body(t, s, o, None)[:3]
  else:
    wrapped = body
  results = tf.while_loop(
      lambda t, *_: t < num_steps, wrapped, loop_vars,
      maximum_iterations=num_steps - 1)
  final_state, out_ta = results[1], results[2]

  def batch_major(ta):
    return swap_batch_and_time(ta.stack())

  outputs = tf.nest.map_structure(batch_major, out_ta)
  collected = None
  if collect is not None:
    collected = tf.nest.map_structure(batch_major, results[3])
  return outputs, final_state, collected
