"""What a model's heads do: the numbers that tell a stuck run from a learning one.

`head_statistics(model, inputs, targets, mask)` runs the model once more, step
by step, and reports per head kind (read, write), averaged over the steps of
each sequence up to its last answer:

    gate       g_t, the share of content addressing (1) against the previous
               weighting (0)                                  (NTM eq. 7)
    gamma      gamma_t, the sharpening exponent               (eq. 9)
    strength   beta_t, the key strength                       (eq. 5)
    shift      the expected shift offset sum_k s_t(k) (k - S//2) (eq. 8)
    entropy    the entropy of w_t in nats, as a share of log N: 1 is uniform
               attention over every cell, 0 one cell
    bits_no_memory  bit errors per sequence with every read vector replaced
               by zeros (the controller alone): close to the model's own
               errors means the controller does the work without memory

A soft head whose weighting is uniform over every cell, on a memory whose
rows are all equal (the constant initial memory), stays uniform whatever its
gate, shift and sharpening: shift and sharpening map the uniform weighting to
itself and content addressing over equal rows is uniform too, so none of
them has a gradient there. `entropy` near 1 for the write head is that trap.

`gradient_norms(model, inputs, targets, mask)` gives the global norm of the
loss gradient per part of the model (controller, interface, output, initial
state).

`weight_norms(model)` gives the global norm of the weights per part, and
`output_margins(logits, targets, mask)` how far the right bits' logits are
past 0 (median and 5th percentile of (2 y - 1) z over the answer bits): a
loss that keeps rewarding larger margins on solved bits makes both grow
(the slingshot effect of Adam late in training, Thilak et al., TMLR
2024).

`index_recall(cell, inputs, indexes)` counts how much of the exact content
scan's support each content index (memtk.content_index) finds, step by
step on the cell's own trajectory (benchmarks.index_recall).
"""

import numpy as np
import tensorflow as tf

from memtk import addressing
from memtk import content_index
from memtk import estimators
from memtk import memory as memory_lib
from memtk import metrics
from memtk.unroll import unroll


def _active_steps(inputs, mask):
  """[B, T] 1 up to each sequence's last input or answer step, else 0."""
  used = np.maximum(np.abs(inputs).max(-1), mask) > 0  # [B, T]
  last = used.shape[1] - 1 - np.argmax(used[:, ::-1], axis=1)
  return (np.arange(used.shape[1])[None] <= last[:, None]).astype(np.float32)


def _trace_parameters(model, inputs, no_memory):
  """(logits [B,T,O], {name: [B,T,H]} per-step head values) of a greedy or
  soft pass; with `no_memory` the read vectors are zeroed everywhere."""
  cell = model.cell
  offsets = tf.range(cell.interface.num_shifts, dtype=tf.float32) - (
      cell.interface.num_shifts // 2)
  log_n = np.log(cell.memory_size) if cell.memory_size > 1 else 1.0

  def step(x, state):
    if no_memory:
      state = state._replace(read=tf.zeros_like(state.read))
    h, controller_state, p = cell.control(x, state)
    weights, memory, read, _, _ = cell.mode.dense_step(
        cell, state, p, cell.default_choice)
    if no_memory:
      read = tf.zeros_like(read)
    logits, _ = cell.emit(h, read)
    values = {"gate": p.gate, "gamma": p.gamma, "strength": p.strength,
              "shift": tf.reduce_sum(p.shift * offsets, -1),
              "entropy": estimators.entropy(weights) / log_n}
    return (logits, values), state._replace(
        controller=controller_state, memory=memory, read=read,
        weights=weights)

  inputs = tf.convert_to_tensor(inputs, tf.float32)
  initial = cell.initial_ntm_state(tf.shape(inputs)[0])
  (logits, values), _, _ = unroll(step, inputs, initial)
  return logits, values


# Graph-compiled once per model (and per no_memory): step by step in eager
# mode the two passes took ~2 s on a copy batch, a third of an evaluation.
_compiled_trace = tf.function(_trace_parameters, reduce_retracing=True,
                              autograph=False)


def head_statistics(model, inputs, targets, mask):
  """Per-head-kind averages of what the heads do (module docstring).

  Args:
    model: a built memtk.NTM (soft, or hard with greedy choices).
    inputs: [B, T, I]; targets: [B, T, O]; mask: [B, T] (numpy arrays).

  Returns:
    dict of floats: '<name>_read' and '<name>_write' for gate, gamma,
    strength, shift and entropy, plus 'bits' and 'bits_no_memory'.
  """
  active = _active_steps(np.asarray(inputs), np.asarray(mask))
  inputs = tf.convert_to_tensor(inputs, tf.float32)
  logits, values = _compiled_trace(model, inputs, no_memory=False)
  no_memory_logits, _ = _compiled_trace(model, inputs, no_memory=True)
  num_read = model.cell.num_read_heads
  stats = {}
  for name, value in values.items():
    value = value.numpy()  # [B, T, H]
    for kind, part in (("read", value[:, :, :num_read]),
                       ("write", value[:, :, num_read:])):
      per_step = part.mean(-1)
      stats[f"{name}_{kind}"] = float((per_step * active).sum() / active.sum())
  for key, out in (("bits", logits), ("bits_no_memory", no_memory_logits)):
    stats[key] = float(np.mean(metrics.bit_errors(out, targets, mask)))
  return stats


def _part(path):
  """The model part a variable belongs to, from its path."""
  for part in ("controller", "interface", "output", "baseline"):
    if f"/{part}" in "/" + path:
      return part
  return "initial_state"


def _gradients(model, inputs, targets, mask):
  """d(loss)/d(every trainable variable) on one batch (None where none)."""
  with tf.GradientTape() as tape:
    logits = model(inputs)
    loss = model.loss(targets, logits, sample_weight=mask)
  return tape.gradient(loss, model.trainable_variables)


# Graph-compiled once per model (~4.7 s eagerly for a hard copy model).
_compiled_gradients = tf.function(_gradients, reduce_retracing=True,
                                  autograph=False)


def _norms_per_part(pairs):
  """{part: global norm} of (variable, tensor) pairs, grouped by the
  variable's part (None tensors skipped)."""
  squares = {}
  for variable, value in pairs:
    if value is not None:
      part = _part(variable.path)
      squares[part] = squares.get(part, 0.0) + float(
          tf.reduce_sum(tf.square(tf.cast(value, tf.float64))))
  return {part: float(np.sqrt(value)) for part, value in squares.items()}


def gradient_norms(model, inputs, targets, mask):
  """{part: global norm of d(loss)/d(part's weights)} on one batch."""
  variables = model.trainable_variables
  grads = _compiled_gradients(model, tf.convert_to_tensor(inputs, tf.float32),
                              tf.convert_to_tensor(targets, tf.float32),
                              tf.convert_to_tensor(mask, tf.float32))
  return _norms_per_part(zip(variables, grads))


def weight_norms(model):
  """{part: global norm of the part's trainable weights}."""
  return _norms_per_part((v, v) for v in model.trainable_variables)


def output_margins(logits, targets, mask):
  """{'median', 'p5'}: the median and 5th percentile of the margins
  (2 y - 1) z of logits z [B, T, O] against target bits y over the steps
  where mask [B, T] is 1 (negative: a wrong bit)."""
  logits, targets = np.asarray(logits), np.asarray(targets)
  margins = ((2.0 * (targets > 0.5) - 1.0) * logits)[np.asarray(mask) > 0]
  return {"median": float(np.median(margins)),
          "p5": float(np.percentile(margins, 5))}


def index_recall(cell, inputs, indexes):
  """How much of the exact scan's support each content index finds.

  A sparse `cell` runs over inputs [B, T, I] with the exact scan (its own
  trajectory); at every step each index of `indexes` ({label:
  content_index value}), fed the same writes, is asked for every head's K
  cells too. Returns {label: (cells found, cells looked up, lookups,
  lookups that found all K)} (benchmarks.index_recall).
  """

  k = cell.mode.support_size(cell)
  batch, steps = inputs.shape[0], inputs.shape[1]
  capacity, window = content_index.sizes(cell.memory_size, steps,
                                         cell.num_write_heads, k)
  parsed = {label: content_index.parse(value)
            for label, value in indexes.items()}
  listing = content_index.WrittenRows()  # the rows written, for every index

  @tf.function(jit_compile=True, autograph=False)
  def step(x, state, listed, index_states):
    _, _, p = cell.control(x, state)
    norms = addressing.norms(state.memory)
    cosine, _, _ = addressing.cosine_similarity(state.memory, p.key, norms)
    exact = addressing.top_cells(cosine, k)
    counts = []
    for label, index in parsed.items():
      lookup = content_index.Lookup(index, index_states[label], listed.places,
                                    window)
      found = lookup.top_cells(
          lambda ids: tf.gather(state.memory, ids, batch_dims=1), p.key, k)
      hits = tf.reduce_sum(tf.cast(tf.equal(
          exact[..., :, None], found[..., None, :]), tf.int32), [-1, -2])
      counts.append(tf.stack([tf.reduce_sum(hits),
                              tf.reduce_sum(tf.cast(hits == k, tf.int32))]))
    _, state = cell.choice_step(x, state, "sparse")
    slots = memory_lib.as_slots(addressing.top_indices(
        state.weights[:, cell.num_read_heads:], k))  # the rows written
    rows = tf.gather(state.memory, slots, batch_dims=1)
    index_states = {label: index.insert(index_states[label], slots, rows)
                    for label, index in parsed.items()}
    return (state, listing.insert(listed, slots, rows), index_states,
            tf.stack(counts))

  state = cell.initial_ntm_state(batch)
  listed = listing.initial_state(batch, cell.memory_size, capacity)
  index_states = {label: index.initial_state(batch, cell.memory_size, capacity)
                  for label, index in parsed.items()}
  totals = np.zeros((len(parsed), 2), np.int64)
  for t in range(steps):
    state, listed, index_states, counts = step(inputs[:, t], state, listed,
                                               index_states)
    totals += counts.numpy()
  lookups = batch * steps * cell.num_heads
  return {label: (int(totals[i, 0]), lookups * k, lookups, int(totals[i, 1]))
          for i, label in enumerate(parsed)}
