"""The row-access loop: hard and sparse models at the cost floor.

`unroll(cell, inputs, noise, choice)` runs a hard cell (choice 'greedy' or
'sample') or a sparse cell over a sequence and gives the same values and
gradients as `memtk.unroll.unroll` over `cell.choice_step` (tests/
sparse_unroll_test checks them in float64), but touches the memory only
where it must. The cell's access mode (memtk.modes) selects, per head and
step, K rows and the weights on them (hard: K = 1, weight 1; sparse: K rows
with differentiable weights); the loop does the rest.

Forward step: gather the H K selected rows, compute the written rows and the
read vectors from those rows alone (`access_rows`), put the touched rows back
(memtk.stores: a dense [B, N, W] buffer updated in place, the rows written
so far with a content index, or a log of the touched rows when nothing needs
the whole memory).

Kept record, per step: the controller state and read vectors the step
started from, the previous weighting, the mode's fixed selection (int rows)
and the rows they held before the write, instead of the memory at every
step ([T, B, N, W]) that autodiff keeps.

Backward step (the scheme of Sparse Access Memory, Rae et al. 2016), in
reverse: undo the step's write with the rows it overwrote, so M_{t-1} is at
hand without having been kept; recompute the step with the kept selection;
carry dL/dM_t updated in the touched rows only:

    dL/dM_{t-1} = dL/dM_t with the touched rows replaced by the sum of the
                  gradients of the slots' copies of them
                  + the content's gradient: hard, a dense one (REINFORCE
                  needs all of w_t); sparse, at the K content rows only.
"""

from typing import Any, NamedTuple

import tensorflow as tf

from memtk import content_index
from memtk import memory as memory_lib
from memtk import stores
from memtk.cell import NTMState, StepOutput
from memtk.unroll import swap_batch_and_time

HARD_CHOICES = ("greedy", "sample")


def access_rows(indices, weights, rows, erase, add, num_read_heads):
  """Write then read, on the selected rows alone.

  Args:
    indices: [B, H, K] int selected rows, read heads first.
    weights: [B, H, K] the weights on them.
    rows: [B, H K, W] M_{t-1} at those rows (head-major slots).
    erase: [B, H_w, W]; add: [B, H_w, W].
    num_read_heads: H_r.

  Returns:
    ([B, H K, W] M_t at the selected rows (slots sharing a row get equal
    values, so scattering them all back is the write), [B, H_r, W] the read
    vectors r_h = sum_k w_h(k) M_t(i_h(k))).
  """
  slots = memory_lib.as_slots(indices)
  touched = memory_lib.rows_after_write(
      rows, slots, indices[:, num_read_heads:], weights[:, num_read_heads:],
      erase, add)
  k = tf.shape(indices)[2]
  read_rows = tf.reshape(touched[:, :num_read_heads * k],
                         tf.concat([tf.shape(indices[:, :num_read_heads]),
                                    tf.shape(rows)[2:]], 0))
  read = tf.einsum("bhk,bhkw->bhw", weights[:, :num_read_heads], read_rows)
  return touched, read


class Step(NamedTuple):
  """One forward step of the loop."""
  out: StepOutput  # logits, log_prob, entropy, baseline, choices of step t
  controller: list  # the controller state after step t (flat)
  read: tf.Tensor  # [B, H_r, W] r_t
  selection: Any  # memtk.modes.Selection
  slots: tf.Tensor  # [B, H K] int the touched rows
  old_rows: tf.Tensor  # [B, H K, W] those rows before the write
  touched: tf.Tensor  # [B, H K, W] those rows after the write


def _float_leaves(structure):
  return [x for x in tf.nest.flatten(structure) if x.dtype.is_floating]


def _with_float_leaves(structure, leaves):
  """`structure` with its float leaves replaced by `leaves` (in order)."""
  leaves = iter(leaves)
  return tf.nest.map_structure(
      lambda x: next(leaves) if x.dtype.is_floating else x, structure)


class _Loop:
  """The pieces of one unroll, sharing the cell, its mode and the store."""

  def __init__(self, cell, choice, controller_structure, store):
    self.cell, self.mode, self.choice = cell, cell.mode, choice
    self.controller_structure = controller_structure
    self.store = store

  def control(self, x, controller, read):
    state = NTMState(tf.nest.pack_sequence_as(self.controller_structure,
                                              controller), None, read, None)
    output, controller_state, p = self.cell.control(x, state)
    return output, tf.nest.flatten(controller_state), p

  def step(self, x, u, controller, read, previous, memory, old_rows=None,
           fixed=None, state=None, t=None):
    """Step t: forward (`memory` from mode.forward_memory, the old rows read
    from the store's `state`) or, in the backward pass, redone with the kept
    `fixed` selection, the `old_rows` and the mode's backward memory."""
    output, controller, p = self.control(x, controller, read)
    selection = self.mode.select(self.cell, p, previous, self.choice, u,
                                 memory, fixed)
    slots = memory_lib.as_slots(selection.indices)
    if old_rows is None:
      old_rows = self.store.rows(state, t, slots)
    touched, read = access_rows(selection.indices, selection.weights,
                                old_rows, p.erase, p.add,
                                self.cell.num_read_heads)
    logits, baseline = self.cell.emit(output, read)
    out = StepOutput(logits, selection.log_prob, selection.entropy, baseline,
                     self.cell.choices_of_rows(selection.indices,
                                               logits.dtype))
    return Step(out, controller, read, selection, slots, old_rows, touched)

  def forward_step(self, x, u, controller, read, previous, state, t):
    """(Step, the memory state after it)."""
    s = self.step(x, u, controller, read, previous,
                  self.mode.forward_memory(self.cell, self.store, state),
                  state=state, t=t)
    return s, self.store.write(state, t, s.slots, s.touched)

  def backward_step(self, t, x, kept, previous, state, adjoints, variables):
    """Adjoints at t - 1 from those at t; `state` is the memory at t.

    `adjoints` is (dL/dM_t, d controller state, d r_t, d w_t's float leaves,
    d outputs of step t); returns (M_{t-1}, the adjoints at t - 1 in that
    order (without outputs), dL/dx_t, dL/d variables)."""
    d_state, d_controller, d_read, d_next, d_out = adjoints
    slots = memory_lib.as_slots(kept.indices)
    state = self.store.undo(state, t, slots, kept.old_rows)
    memory = self.mode.backward_memory(self.cell, self.store, state, t,
                                       kept.fixed)
    watched = self.mode.differentiable_memory(memory)
    previous_floats = _float_leaves(previous)
    sources = ([x, kept.read, kept.old_rows] + list(kept.controller) + watched
               + previous_floats)
    d_touched = self.store.d_touched(d_state, t, slots)
    with tf.GradientTape() as tape:
      tape.watch(sources)
      s = self.step(x, None, list(kept.controller), kept.read, previous,
                    memory, kept.old_rows, kept.fixed)
      pairs = ([(d, o) for d, o in zip(d_out, s.out) if o.dtype.is_floating]
               + list(zip(d_controller, s.controller))
               + [(d_read, s.read), (d_touched, s.touched)]
               + list(zip(d_next, _float_leaves(s.selection.previous))))
      target = tf.add_n([tf.reduce_sum(a * v) for a, v in pairs])
    grads = tape.gradient(target, sources + variables,
                          unconnected_gradients="zero")
    grads = [tf.convert_to_tensor(g) for g in grads]
    n_controller, n_watched = len(kept.controller), len(watched)
    d_x, d_read_in, d_old = grads[:3]
    rest = grads[3:]
    d_controller_in, rest = rest[:n_controller], rest[n_controller:]
    d_memory, rest = rest[:n_watched], rest[n_watched:]
    d_previous, d_variables = (rest[:len(previous_floats)],
                               rest[len(previous_floats):])
    d_state = self.store.d_update(d_state, state, t, slots, d_old)
    d_state = self.mode.add_memory_gradient(self.store, d_state, kept.fixed,
                                            d_memory)
    return (state, (d_state, d_controller_in, d_read_in, d_previous), d_x,
            d_variables)


class Kept(NamedTuple):
  """The record a step keeps for the backward pass."""
  controller: list  # the controller state step t started from (flat)
  read: tf.Tensor  # [B, H_r, W] r_{t-1}
  indices: tf.Tensor  # [B, H, K] int the rows step t touched
  fixed: Any  # the mode's int record of step t's selection
  old_rows: tf.Tensor  # [B, H K, W] those rows before the write


def _arrays(values, size):
  return [tf.TensorArray(v.dtype, size=size, element_shape=v.shape)
          for v in values]


def _write(arrays, t, values):
  return [ta.write(t, v) for ta, v in zip(arrays, values)]


class _Record(NamedTuple):
  """What the forward loop leaves for the backward one, per step."""
  kept: list  # TensorArrays of the flattened Kept record of every step
  previous: list  # TensorArrays of the flattened w_t of every step
  fixed_structure: Any  # the nest of a step's `fixed` selection
  previous_structure: Any  # the nest of w_t
  num_controller: int  # flat controller state tensors

  def kept_at(self, kept_all, t):
    values = [k[t] for k in kept_all]
    n = self.num_controller
    fixed = tf.nest.pack_sequence_as(self.fixed_structure, values[n + 2:-1])
    return Kept(values[:n], values[n], values[n + 1], fixed, values[-1])

  def previous_at(self, previous_all, t):
    """w_{t-1}, as step t saw it."""
    return tf.nest.pack_sequence_as(self.previous_structure,
                                    [p[t - 1] for p in previous_all])


def _kept_values(controller, read, s):
  """The flat Kept record of step `s`, which started from (controller, read)."""
  return list(controller) + [read, s.selection.indices] + list(
      tf.nest.flatten(s.selection.fixed)) + [s.old_rows]


def _forward_loop(loop, inputs_tm, noise_tm, controller, read, first,
                  num_steps, static_steps):
  """Runs every step forward: (StepOutput leaves [T, B, ...], the final
  memory state, the _Record of every step)."""
  state = loop.store.initial_state()
  s, state = loop.forward_step(inputs_tm[0], noise_tm[0], controller, read,
                               first, state, 0)
  kept = _kept_values(controller, read, s)
  previous = s.selection.previous
  out_tas = _write(_arrays(s.out, num_steps), 0, s.out)
  kept_tas = _write(_arrays(kept, num_steps), 0, kept)
  previous_tas = _write(_arrays(tf.nest.flatten(previous), num_steps), 0,
                        tf.nest.flatten(previous))

  def body(t, controller, read, previous, state, out_tas, kept_tas,
           previous_tas):
    s, state = loop.forward_step(inputs_tm[t], noise_tm[t], controller, read,
                                 previous, state, t)
    return (t + 1, s.controller, s.read, s.selection.previous, state,
            _write(out_tas, t, s.out),
            _write(kept_tas, t, _kept_values(controller, read, s)),
            _write(previous_tas, t, tf.nest.flatten(s.selection.previous)))

  results = tf.while_loop(
      lambda t, *_: t < num_steps, body,
      (tf.constant(1), s.controller, s.read, previous, state, out_tas,
       kept_tas, previous_tas),
      maximum_iterations=(num_steps - 1 if static_steps is not None
                          else None))
  final_state, out_tas, kept_tas, previous_tas = results[4:]
  record = _Record(kept_tas, previous_tas, s.selection.fixed, previous,
                   len(controller))
  return tuple(ta.stack() for ta in out_tas), final_state, record


def _backward_loop(loop, record, inputs_tm, d_outputs, first, final_state,
                   variables, num_steps):
  """Runs every backward step in reverse: (dL/dx [T, B, I], dL/dM_0,
  d controller state, d r_0, d w_0's float leaves, dL/d variables)."""
  kept_all = [ta.stack() for ta in record.kept]
  previous_all = [ta.stack() for ta in record.previous]
  num_controller = record.num_controller

  def backward(t, previous, state, adjoints):
    return loop.backward_step(
        t, inputs_tm[t], record.kept_at(kept_all, t), previous, state,
        adjoints + ([d[t] for d in d_outputs],), variables)

  def body(t, state, d_state, d_controller, d_read, d_next, d_x_ta, d_vars):
    state, adjoints, d_x, d_step_vars = backward(
        t, record.previous_at(previous_all, t), state,
        (d_state, d_controller, d_read, d_next))
    return ((t - 1, state) + adjoints
            + (d_x_ta.write(t, d_x),
               [a + b for a, b in zip(d_vars, d_step_vars)]))

  d_x_ta = tf.TensorArray(inputs_tm.dtype, size=num_steps,
                          element_shape=inputs_tm.shape[1:])
  results = tf.while_loop(
      lambda t, *_: t > 0, body,
      (num_steps - 1, final_state, loop.store.initial_adjoint(final_state),
       [tf.zeros_like(c[0]) for c in kept_all[:num_controller]],
       tf.zeros_like(kept_all[num_controller][0]),
       [tf.zeros_like(p) for p in _float_leaves(record.previous_structure)],
       d_x_ta, [tf.zeros_like(v) for v in variables]))
  _, state, d_state, d_controller, d_read, d_next, d_x_ta, d_vars = results
  _, (d_state, d_controller, d_read, d_first), d_x, d_step_vars = backward(
      0, first, state, (d_state, d_controller, d_read, d_next))
  d_vars = [a + b for a, b in zip(d_vars, d_step_vars)]
  return (d_x_ta.write(0, d_x).stack(), d_state, d_controller, d_read,
          d_first, d_vars)


STORES = ("log", "dense")


@tf.autograph.experimental.do_not_convert
def unroll(cell, inputs, noise, choice, store=None):
  """Runs a hard or sparse cell over `inputs` touching only selected rows.

  Args:
    cell: a built NTMCell with addressing 'hard' or 'sparse'.
    inputs: [B, T, I] x.
    noise: [B, T, H] U(0, 1) noise for 'sample'; anything (unused) else.
    choice: 'greedy' or 'sample' (hard), 'sparse' (sparse).
    store: where the memory is kept (memtk.stores): 'dense' (a [B, N, W]
      buffer; with a content index, the rows written so far and the index
      instead), 'log' (the touched rows; only where log_store_allowed), or
      None, the cheaper of the two (_make_store).

  Returns:
    StepOutput with leaves [B, T, ...] (logits, log_prob, entropy, baseline,
    choices), equal in value and gradient to the dense unroll's.
  """
  if cell.addressing == "soft":
    raise ValueError("sparse_unroll needs a hard or sparse cell, got "
                     "addressing='soft'")
  allowed = HARD_CHOICES if cell.addressing == "hard" else ("sparse",)
  if choice not in allowed:
    raise ValueError(f"choice must be one of {allowed}, got {choice!r}")
  if store is not None and store not in STORES:
    raise ValueError(f"store must be one of {STORES} or None, got {store!r}")
  mode = cell.mode
  dtype = cell.compute_dtype
  batch = tf.shape(inputs)[0]
  initial = cell.initial_ntm_state(batch)
  controller_structure = initial.controller
  controller_flat = tf.nest.flatten(controller_structure)
  num_controller = len(controller_flat)
  if choice != "sample":
    noise = tf.zeros(tf.shape(inputs)[:2], dtype)[:, :, None]
  inputs_tm, noise_tm = swap_batch_and_time(inputs), swap_batch_and_time(noise)
  static_steps = inputs.shape[1]
  num_steps = static_steps if static_steps is not None else tf.shape(inputs)[1]
  first_previous = mode.first_previous(cell, initial)
  first_floats = _float_leaves(first_previous)
  store = _make_store(cell, initial, batch, static_steps,
                      mode.support_size(cell), store, num_steps)

  @tf.custom_gradient
  def run(inputs_tm, noise_tm, memory_source, read, *rest):
    """Forward: StepOutput leaves [T, B, ...]; see the module docstring."""
    controller = list(rest[:num_controller])
    first = _with_float_leaves(first_previous, rest[num_controller:])
    loop = _Loop(cell, choice, controller_structure, store(memory_source))
    outputs, final_state, record = _forward_loop(
        loop, inputs_tm, noise_tm, controller, read, first, num_steps,
        static_steps)

    def grad(*d_outputs, variables=None):
      variables = list(variables or [])
      d_outputs = [tf.zeros_like(o) if d is None else d
                   for d, o in zip(d_outputs, outputs)]
      d_x, d_state, d_controller, d_read, d_first, d_vars = _backward_loop(
          loop, record, inputs_tm, d_outputs, first, final_state, variables,
          num_steps)
      d_inputs = [d_x, None, loop.store.d_source(d_state), d_read]
      return d_inputs + list(d_controller) + list(d_first), d_vars

    return outputs, grad

  outputs = run(inputs_tm, noise_tm, store.source, initial.read,
                *controller_flat, *first_floats)
  return StepOutput(*[swap_batch_and_time(o) for o in outputs])


class _StoreFactory:
  """Which store the loop uses, and the tensor its memory comes from."""

  def __init__(self, make, source):
    self._make, self.source = make, source

  def __call__(self, source):
    return self._make(source)


def log_store_allowed(cell, static_steps):
  """Whether no step reads the whole memory, so a log of touched rows can
  stand for it: no content addressing, a constant or learned initial memory
  and a length known when the loop is built."""
  return (not cell.content_addressing and static_steps is not None
          and cell.memory_init in ("learned", "constant", "zeros"))


def _make_store(cell, initial, batch, static_steps, rows_per_head, store,
                num_steps):
  """The store `store` names ('log' or 'dense'); None: the log where it is
  allowed and smaller than the memory (T steps x rows touched per step < N
  cells: every lookup compares its rows with the log's slots, which past N
  costs more than the dense buffer's in-place updates), else the dense one,
  with the cell's content index if it has one (`num_steps`: T, an int or a
  scalar tensor)."""
  rows = cell.num_heads * rows_per_head
  allowed = log_store_allowed(cell, static_steps)
  if store is None:
    store = ("log" if allowed and static_steps * rows < cell.memory_size
             else "dense")
  if store == "dense" and cell.content_index is not None:
    return _indexed_store(cell, batch, num_steps, rows_per_head)
  if store == "dense":
    return _StoreFactory(stores.DenseStore, initial.memory)
  if not allowed:
    raise ValueError(
        f"store='log' needs a cell without content addressing, a constant or "
        f"learned initial memory and a known number of steps; got "
        f"content_addressing={cell.content_addressing}, memory_init="
        f"{cell.memory_init!r}, steps={static_steps}")
  if cell.memory_init == "learned":
    source = tf.convert_to_tensor(cell.initial_memory)  # [N, W]
  else:
    source = initial.memory[0, 0, 0]  # every cell holds this value
  return _StoreFactory(
      lambda s: stores.LogStore(s, batch, static_steps, rows, cell.word_size),
      source)


def _indexed_store(cell, batch, num_steps, rows_per_head):
  """The list of written rows with the cell's content index
  (memtk.content_index), sized for `num_steps` steps (an int, or a scalar
  tensor)."""
  capacity, window = content_index.sizes(cell.memory_size, num_steps,
                                         cell.num_write_heads, rows_per_head)
  first_write_slot = cell.num_read_heads * rows_per_head
  return _StoreFactory(
      lambda constant: stores.ListStore(
          constant, cell.content_index, first_write_slot, batch,
          cell.memory_size, capacity, window),
      cell.constant_row(cell.compute_dtype))
