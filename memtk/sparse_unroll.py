"""Hard models at the cost floor: a time loop with O(W) memory work per step.

`unroll(cell, inputs, noise, choice)` runs a hard NTMCell over a sequence and
gives the same values and gradients as `memtk.unroll.unroll` over
`cell.choice_step` with choice 'greedy' or 'sample' (tests/sparse_unroll_test
checks both in float64), but touches the memory only where it must.

Forward, per step: gather the H chosen rows, compute the written rows and the
read vectors from those rows alone, and put the touched rows back. The memory
lives in one of two stores:

  DenseStore (heads with content addressing, or a random initial memory):
    one [B, N, W] buffer. Content scoring reads all of it (the one O(N W)
    term, with the rows' norms kept up to date as rows change); the rows go
    back by a scatter that depends on every read of the step, so XLA updates
    the buffer in place instead of copying it.
  LogStore (heads without content, constant or learned initial memory): no
    [B, N, W] buffer at all. A row reads as its latest value in a log of the
    rows touched so far, or its initial value; nothing scales with N.

Backward: a custom gradient over the whole loop (the scheme of Sparse Access
Memory, Rae et al. 2016). Walk the steps in reverse; the dense store undoes
each step's write with the rows it overwrote, so M_{t-1} is at hand without
having been kept; recompute the step's controller and heads; carry dL/dM_t
updated in the touched rows only:

    dL/dM_{t-1} = dL/dM_t with the touched rows replaced by the sum of the
                  gradients of the heads' copies of them
                  + the content scores' dense gradient (content only).

Kept for the backward pass per step: the choices [B, H], the rows they held
before the write [B, H, W], the read vectors [B, H_r, W] and the controller
state, instead of the memory at every step ([T, B, N, W]) that autodiff
keeps.
"""

import tensorflow as tf

from memtk import addressing
from memtk import estimators
from memtk import memory as memory_lib
from memtk.cell import NTMState, StepOutput
from memtk.unroll import swap_batch_and_time

CHOICES = ("greedy", "sample")


def access_rows(indices, rows, erase, add, num_read_heads):
  """Write then read, on the chosen rows alone.

  Args:
    indices: [B, H] int choices i_t, read heads first.
    rows: [B, H, W] M_{t-1}(i_h), every head's row before the write.
    erase: [B, H_w, W]; add: [B, H_w, W].
    num_read_heads: H_r.

  Returns:
    [B, H, W] M_t(i_h), every head's row after the write: the read vectors
    r_t ([:, :H_r]; a read head on a row written this step reads its new
    value) and the written rows ([:, H_r:]). Heads sharing a row get equal
    values, so scattering them all back is the write.
  """
  read_indices = indices[:, :num_read_heads]
  write_indices = indices[:, num_read_heads:]
  new_rows = memory_lib.written_rows(rows[:, num_read_heads:], write_indices,
                                     erase, add)
  first = tf.cast(memory_lib.first_of_equal(read_indices, write_indices),
                  add.dtype)
  written = tf.einsum("brk,bkw->brw", first, new_rows)
  was_written = tf.reduce_sum(first, -1, keepdims=True) > 0
  read = tf.where(was_written, written, rows[:, :num_read_heads])
  return tf.concat([read, new_rows], axis=1)


def _shift_candidates(cell, positions):
  """[B, H, S] the cells a head without content can move to, in cell order
  (the order of the dense distribution, so a choice from the same noise
  picks the same cell), and [B, H, S] int the offsets' slots in that order."""
  num_shifts = 2 * cell.shift_range + 1
  offsets = tf.range(num_shifts, dtype=positions.dtype) - cell.shift_range
  cells = tf.math.floormod(positions[:, :, None] + offsets, cell.memory_size)
  order = tf.argsort(cells, axis=-1, stable=True)
  return tf.gather(cells, order, batch_dims=2), order


def choose(cell, memory, previous, p, choice, noise, indices=None,
           memory_norms=None):
  """Each head's choice and the statistics of its distribution.

  Args:
    cell: the hard NTMCell.
    memory: [B, N, W] M_{t-1} (read only with content addressing).
    previous: [B, H] int positions i_{t-1}, or [B, H, N] weights w_0 at the
      first step of a cell with content addressing.
    p: HeadParams of the step.
    choice: 'greedy' or 'sample'.
    noise: [B, H] U(0, 1) noise for 'sample'.
    indices: optional [B, H] int choices already made (the backward pass
      recomputes the statistics of the choices the forward pass made).
    memory_norms: optional [B, N] addressing.norms(memory), if kept.

  Returns:
    (indices [B, H] int32, log w_t(i_t) [B, H], entropy of w_t [B, H]).
  """
  if cell.content_addressing:
    if previous.dtype.is_integer:
      previous = tf.one_hot(previous, cell.memory_size, dtype=memory.dtype)
    weights = cell.distribution(memory, previous, p, memory_norms)
    candidates = None
  else:
    # w_t = sharpen(shift(one_hot(i_{t-1}))) is zero outside the S cells
    # i_{t-1} + o: its distribution over those cells is sharpen(s_t).
    candidates, order = _shift_candidates(cell, previous)
    weights = tf.gather(addressing.sharpen(p.shift, p.gamma), order,
                        batch_dims=2)
  if indices is None:
    slots = (estimators.greedy(weights) if choice == "greedy" else
             estimators.sample(tf.stop_gradient(weights), noise))
    indices = (slots if candidates is None else
               tf.gather(candidates, slots, batch_dims=2))
  elif candidates is not None:
    slots = tf.argmax(tf.cast(tf.equal(candidates, indices[:, :, None]),
                              tf.int32), axis=-1, output_type=tf.int32)
  else:
    slots = indices
  return (indices, estimators.log_prob(weights, slots),
          estimators.entropy(weights))


def unroll(cell, inputs, noise, choice):
  """Runs a hard cell over `inputs` at O(W) memory cost per step.

  Args:
    cell: a built NTMCell with addressing='hard'.
    inputs: [B, T, I] x.
    noise: [B, T, H] U(0, 1) noise for 'sample'; anything (unused) for
      'greedy'.
    choice: 'greedy' or 'sample'.

  Returns:
    StepOutput with leaves [B, T, ...] (logits, log_prob, entropy, baseline),
    equal in value and gradient to the dense unroll's.
  """
  if cell.addressing != "hard":
    raise ValueError(f"sparse_unroll needs a hard cell, got addressing="
                     f"{cell.addressing!r}")
  if choice not in CHOICES:
    raise ValueError(f"choice must be one of {CHOICES}, got {choice!r}")
  num_read = cell.num_read_heads
  content = cell.content_addressing
  dtype = cell.compute_dtype
  batch = tf.shape(inputs)[0]
  initial = cell.initial_ntm_state(batch)
  controller_structure = initial.controller
  controller_flat = tf.nest.flatten(controller_structure)
  num_controller = len(controller_flat)
  if choice == "greedy":
    noise = tf.zeros(tf.shape(inputs)[:2], dtype)[:, :, None]
  inputs_tm, noise_tm = swap_batch_and_time(inputs), swap_batch_and_time(noise)
  static_steps = inputs.shape[1]
  num_steps = static_steps if static_steps is not None else tf.shape(inputs)[1]

  def control(x, controller_flat_state, read):
    state = NTMState(tf.nest.pack_sequence_as(controller_structure,
                                              controller_flat_state),
                     None, read, None)
    output, controller_state, p = cell.control(x, state)
    return output, tf.nest.flatten(controller_state), p

  def step(x, u, controller_state, read, previous, store, state, t,
           indices=None, rows=None):
    """Step t on the memory `state` of `store`; the backward pass gives the
    `indices` the forward pass chose and the `rows` [B, H, W] they held
    before the write."""
    output, controller_state, p = control(x, controller_state, read)
    memory, norms = store.memory(state) if content else (None, None)
    indices, log_prob, entropy = choose(cell, memory, previous, p, choice, u,
                                        indices, norms)
    if rows is None:
      rows = store.rows(state, t, indices)
    touched = access_rows(indices, rows, p.erase, p.add, num_read)
    logits, baseline = cell.emit(output, touched[:, :num_read])
    return dict(out=StepOutput(logits, log_prob, entropy, baseline),
                controller=controller_state, read=touched[:, :num_read],
                indices=indices, old_rows=rows, touched=touched)

  def arrays(values, size):
    return [tf.TensorArray(v.dtype, size=size, element_shape=v.shape)
            for v in values]

  def write(tas, t, values):
    return [ta.write(t, v) for ta, v in zip(tas, values)]

  @tf.custom_gradient
  def run(inputs_tm, noise_tm, memory_source, read, first_previous,
          *controller):
    """Forward: StepOutput leaves [T, B, ...]; see the module docstring."""
    controller = list(controller)
    store = make_store(memory_source)
    state = store.initial_state()
    first = step(inputs_tm[0], noise_tm[0], controller, read, first_previous,
                 store, state, 0)
    state = store.write(state, 0, first["indices"], first["touched"])
    # Per step: outputs, and for the backward pass the step's inputs (the
    # controller state and read of t - 1) and the choices and old rows.
    out_tas = write(arrays(first["out"], num_steps), 0, first["out"])
    kept_values = controller + [read, first["indices"], first["old_rows"]]
    kept_tas = write(arrays(kept_values, num_steps), 0, kept_values)

    def body(t, controller, read, previous, state, out_tas, kept_tas):
      s = step(inputs_tm[t], noise_tm[t], controller, read, previous, store,
               state, t)
      state = store.write(state, t, s["indices"], s["touched"])
      out_tas = write(out_tas, t, s["out"])
      kept_tas = write(kept_tas, t, list(controller) + [
          read, s["indices"], s["old_rows"]])
      return (t + 1, s["controller"], s["read"], s["indices"], state,
              out_tas, kept_tas)

    loop = tf.while_loop(
        lambda t, *_: t < num_steps, body,
        (tf.constant(1), first["controller"], first["read"], first["indices"],
         state, out_tas, kept_tas),
        maximum_iterations=(num_steps - 1 if static_steps is not None
                            else None))
    final_state, out_tas, kept_tas = loop[4], loop[5], loop[6]
    outputs = tuple(ta.stack() for ta in out_tas)

    def grad(*d_outputs, variables=None):
      variables = list(variables or [])
      d_outputs = [tf.zeros_like(o) if d is None else d
                   for d, o in zip(d_outputs, outputs)]
      kept = [ta.stack() for ta in kept_tas]
      kept_controller, kept_read = kept[:num_controller], kept[num_controller]
      kept_indices, kept_rows = kept[num_controller + 1], kept[-1]

      def backward_step(t, previous, state, d_state, d_controller, d_read):
        """Adjoints at t - 1 from those at t; `state` is the memory at t."""
        indices, old_rows = kept_indices[t], kept_rows[t]
        state = store.undo(state, t, indices, old_rows)
        controller = [c[t] for c in kept_controller]
        x, read = inputs_tm[t], kept_read[t]
        dense = [store.memory(state)[0]] if content else []
        if previous.dtype.is_floating:
          dense.append(previous)
        sources = [x, read, old_rows] + controller + dense
        d_touched = store.d_touched(d_state, t, indices)
        with tf.GradientTape() as tape:
          tape.watch(sources)
          s = step(x, None, controller, read, previous, store, state, t,
                   indices, old_rows)
          adjoints = ([d[t] for d in d_outputs] + list(d_controller)
                      + [d_read, d_touched])
          values = (list(s["out"]) + s["controller"]
                    + [s["read"], s["touched"]])
          target = tf.add_n([tf.reduce_sum(a * v)
                             for a, v in zip(adjoints, values)])
        grads = tape.gradient(target, sources + variables,
                              unconnected_gradients="zero")
        grads = [tf.convert_to_tensor(g) for g in grads]
        d_x, d_read_in, d_old = grads[:3]
        d_controller_in = grads[3:3 + num_controller]
        rest = grads[3 + num_controller:]
        d_dense, d_variables = rest[:len(dense)], rest[len(dense):]
        d_state = store.d_update(d_state, state, t, indices, d_old,
                                 d_dense[0] if content else None)
        d_previous = d_dense[-1] if previous.dtype.is_floating else None
        return (state, d_state, d_controller_in, d_read_in, d_x,
                d_variables, d_previous)

      def body(t, state, d_state, d_controller, d_read, d_x_ta, d_vars):
        state, d_state, d_controller, d_read, d_x, d_step_vars, _ = (
            backward_step(t, kept_indices[t - 1], state, d_state,
                          d_controller, d_read))
        return (t - 1, state, d_state, d_controller, d_read,
                d_x_ta.write(t, d_x),
                [a + b for a, b in zip(d_vars, d_step_vars)])

      d_x_ta = tf.TensorArray(inputs_tm.dtype, size=num_steps,
                              element_shape=inputs_tm.shape[1:])
      loop = tf.while_loop(
          lambda t, *_: t > 0, body,
          (num_steps - 1, final_state, store.initial_adjoint(),
           [tf.zeros_like(c[0]) for c in kept_controller],
           tf.zeros_like(kept_read[0]), d_x_ta,
           [tf.zeros_like(v) for v in variables]))
      _, state, d_state, d_controller, d_read, d_x_ta, d_vars = loop
      (_, d_state, d_controller, d_read, d_x, d_step_vars,
       d_previous) = backward_step(0, first_previous, state, d_state,
                                   d_controller, d_read)
      d_x_ta = d_x_ta.write(0, d_x)
      d_vars = [a + b for a, b in zip(d_vars, d_step_vars)]
      d_inputs = [d_x_ta.stack(), None, store.d_source(d_state), d_read,
                  d_previous]
      return d_inputs + list(d_controller), d_vars

    return outputs, grad

  first_previous = (tf.identity(initial.weights) if content else
                    tf.zeros([batch, cell.num_heads], tf.int32))
  log_steps = static_steps if not content else None
  if log_steps is not None and cell.memory_init == "learned":
    memory_source = tf.convert_to_tensor(cell.initial_memory)  # [N, W]
  elif log_steps is not None and cell.memory_init in ("constant", "zeros"):
    memory_source = initial.memory[0, 0, 0]  # every cell holds this value
  else:
    log_steps = None
    memory_source = initial.memory  # [B, N, W]

  def make_store(source):
    if log_steps is None:
      return DenseStore(source)
    return LogStore(source, batch, log_steps, cell.num_heads, cell.word_size)

  outputs = run(inputs_tm, noise_tm, memory_source, initial.read,
                first_previous, *controller_flat)
  return StepOutput(*[swap_batch_and_time(o) for o in outputs])



class DenseStore:
  """The memory as one [B, N, W] buffer, updated in place (inside XLA).

  Content addressing reads the whole buffer, so heads with content use this
  store; it keeps the rows' norms [B, N] up to date as rows change, which
  saves the content scores one pass over the memory per step. The adjoint
  dL/dM_t is one [B, N, W] tensor.
  """

  def __init__(self, memory):
    self._initial = memory  # [B, N, W] M_0

  def initial_state(self):
    return self._initial, addressing.norms(self._initial)

  def memory(self, state):
    """(memory [B, N, W], its row norms [B, N])."""
    return state

  def rows(self, state, t, indices):
    del t
    return memory_lib.read_rows(state[0], indices)

  def _set_rows(self, state, indices, rows):
    return (memory_lib.scatter_rows(state[0], indices, rows),
            memory_lib.scatter_rows(state[1], indices, addressing.norms(rows)))

  def write(self, state, t, indices, touched):
    # Every touched row, read rows included (rewritten with the value they
    # hold): the scatter then depends on every read of this step's memory,
    # so XLA can order those reads first and update the buffer in place.
    del t
    return self._set_rows(state, indices, touched)

  def undo(self, state, t, indices, old_rows):
    """M_{t-1} from M_t: the touched rows get their old values back."""
    del t
    return self._set_rows(state, indices, old_rows)

  def initial_adjoint(self):
    return tf.zeros_like(self._initial)

  def d_touched(self, d_state, t, indices):
    """dL/dM_t at the touched rows, counted once for heads sharing a row."""
    del t
    first = memory_lib.first_of_equal(indices, indices, diagonal=True)
    return (memory_lib.read_rows(d_state, indices)
            * tf.cast(first, d_state.dtype)[:, :, None])

  def d_update(self, d_state, state, t, indices, d_old, d_memory=None):
    """dL/dM_{t-1}: a touched row reaches the loss only through the heads'
    copies of it (and the content scores, d_memory [B, N, W])."""
    del state, t
    same = tf.cast(tf.equal(indices[:, :, None], indices[:, None, :]),
                   d_old.dtype)
    d_state = memory_lib.scatter_rows(
        d_state, indices, tf.einsum("bhk,bkw->bhw", same, d_old))
    return d_state if d_memory is None else d_state + d_memory

  def d_source(self, d_state):
    return d_state


class LogStore:
  """The memory without an [B, N, W] buffer, for heads without content.

  Such heads only ever read the rows they choose, so the memory is kept as
  its initial value (a constant, or the learned [N, W] matrix) plus a log of
  the rows every step touched: L = T H entries of (index, row), time-major.
  Row i reads as its latest logged value before step t, or its initial
  value. Per step that is a comparison with the log's indices, O(T H)
  integers, and O(H W) floats: nothing scales with N, not even one fill of
  the memory per sequence. The adjoint is one [L, B, W] tensor (and [N, W]
  for a learned initial memory).
  """

  def __init__(self, source, batch, num_steps, num_heads, word_size):
    self._source = source  # a scalar (every cell's value) or [N, W]
    self._learned = len(source.shape) == 2
    self._batch, self._heads, self._width = batch, num_heads, word_size
    self._length = num_steps * num_heads

  def initial_state(self):
    return (tf.fill([self._length, self._batch], -1),
            tf.zeros([self._length, self._batch, self._width],
                     self._source.dtype))

  def memory(self, state):
    raise ValueError("heads with content addressing need the dense store")

  def _slots(self, t):
    """[H, 1] the log entries of step t."""
    return (t * self._heads + tf.range(self._heads))[:, None]

  def _latest(self, state, t, indices):
    """([B, H, 2] where in the log the latest entry before step t holding
    each head's row is, [B, H] bool whether there is one)."""
    earlier = tf.range(self._length) < t * self._heads
    match = tf.logical_and(
        tf.equal(tf.transpose(state[0])[:, None, :], indices[:, :, None]),
        earlier)
    latest = tf.argmax(tf.where(match, tf.range(self._length), -1), -1,
                       output_type=tf.int32)
    batch = tf.broadcast_to(tf.range(self._batch)[:, None], tf.shape(latest))
    return tf.stack([latest, batch], -1), tf.reduce_any(match, -1)

  def rows(self, state, t, indices):
    where, logged = self._latest(state, t, indices)
    if self._learned:
      initial = tf.gather(self._source, indices)
    else:
      initial = tf.fill([self._batch, self._heads, self._width], self._source)
    return tf.where(logged[..., None], tf.gather_nd(state[1], where), initial)

  def write(self, state, t, indices, touched):
    slots = self._slots(t)
    return (tf.tensor_scatter_nd_update(state[0], slots, tf.transpose(indices)),
            tf.tensor_scatter_nd_update(state[1], slots,
                                        tf.transpose(touched, [1, 0, 2])))

  def undo(self, state, t, indices, old_rows):
    del t, indices, old_rows  # reads before step t never see later entries
    return state

  def initial_adjoint(self):
    d_log = tf.zeros([self._length, self._batch, self._width],
                     self._source.dtype)
    return d_log, tf.zeros_like(self._source)

  def d_touched(self, d_state, t, indices):
    del indices  # a later read takes its adjoint to one entry only
    return tf.transpose(tf.gather_nd(d_state[0], self._slots(t)), [1, 0, 2])

  def d_update(self, d_state, state, t, indices, d_old, d_memory=None):
    del d_memory
    d_log, d_initial = d_state
    where, logged = self._latest(state, t, indices)
    zeros = tf.zeros_like(d_old)
    d_log = tf.tensor_scatter_nd_add(
        d_log, where, tf.where(logged[..., None], d_old, zeros))
    if self._learned:
      d_initial += tf.math.unsorted_segment_sum(
          tf.reshape(tf.where(logged[..., None], zeros, d_old),
                     [-1, self._width]),
          tf.reshape(indices, [-1]), tf.shape(self._source)[0])
    return d_log, d_initial

  def d_source(self, d_state):
    return d_state[1] if self._learned else None
