"""Memory access: soft (address, write, read) with a hand-fused gradient, hard.

`soft_access` computes exactly

    w   = addressing.address(M, w_prev, k, beta, g, s, gamma)   all H heads
    M'  = memory.write(M, w[:, H_r:], e, a)
    r   = memory.read(M', w[:, :H_r])

but with a hand-written backward pass. Differentiating the composition
automatically gives several hundred small ops per time step, and inside a
compiled time loop each op has a fixed dispatch cost that dwarfs its
arithmetic at NTM sizes; the backward below is a few dozen fused element-wise
and reduction ops, and keeps only the step's inputs for backprop (the
intermediates are recomputed, which XLA fuses into the same kernels).
`address` is the addressing part alone with the same fused gradient (hard
heads with content addressing use it). `tests/access_test.py` checks values and
gradients against the composition.
"""

import tensorflow as tf

from memtk import addressing
from memtk import memory as memory_lib


def _keep_factors(write_weights, erase):
  """Per-head erase factors [B, H_w, N, W]: 1 - w_h(i) e_h."""
  return 1.0 - write_weights[:, :, :, None] * erase[:, :, None, :]


def _address_forward(memory, previous, keys, strengths, gates, shift_weights,
                     gammas, memory_norms=None, empty_rows_as=None):
  """addressing.address and every intermediate its backward pass needs."""
  num_shifts = shift_weights.shape[-1]
  cosine, key_norms, memory_norms = addressing.cosine_similarity(
      memory, keys, memory_norms)
  content = addressing.lookup_weights(
      cosine, strengths, memory_norms[:, None, :], empty_rows_as)
  gated = addressing.interpolate(content, previous, gates)
  gated_rolls = addressing.rolls(gated, num_shifts)
  shifted = sum(shift_weights[:, :, k:k + 1] * gated_rolls[k]
                for k in range(num_shifts))
  log_shifted = tf.math.log(tf.maximum(shifted, addressing.TINY))
  weights = tf.nn.softmax(gammas[:, :, None] * log_shifted, -1)
  return dict(memory_norms=memory_norms, key_norms=key_norms, cosine=cosine,
              content=content, gated_rolls=gated_rolls, shifted=shifted,
              log_shifted=log_shifted, weights=weights)


def _address_backward(v, d_w, memory, previous, keys, strengths, gates,
                      shift_weights, gammas, empty_rows_as=None):
  """Gradients of addressing.address's inputs from d_w = dL/dw [B, H, N];
  `v` holds _address_forward's intermediates."""
  num_shifts = shift_weights.shape[-1]
  tiny = addressing.TINY
  memory_norms, key_norms, cosine = (v["memory_norms"], v["key_norms"],
                                     v["cosine"])
  content, gated_rolls, shifted = v["content"], v["gated_rolls"], v["shifted"]
  log_shifted, weights = v["log_shifted"], v["weights"]
  # Sharpen: w = softmax(gamma * log s~).
  d_logits = weights * (d_w - tf.reduce_sum(weights * d_w, -1, keepdims=True))
  d_gammas = tf.reduce_sum(d_logits * log_shifted, -1)
  d_shifted = tf.where(shifted > tiny,
                       d_logits * gammas[:, :, None] / tf.maximum(shifted, tiny),
                       tf.zeros_like(shifted))
  # Shift: s~(i) = sum_k s_k w_g(i - o_k).
  d_rolls = addressing.rolls(d_shifted, num_shifts)
  d_gated = sum(shift_weights[:, :, k:k + 1] * d_rolls[num_shifts - 1 - k]
                for k in range(num_shifts))
  d_shift_weights = tf.stack(
      [tf.reduce_sum(d_shifted * gated_rolls[k], -1)
       for k in range(num_shifts)], -1)
  # Interpolation: w_g = g w_c + (1 - g) w_prev.
  g = gates[:, :, None]
  d_content = g * d_gated
  d_previous = (1.0 - g) * d_gated
  d_gates = tf.reduce_sum((content - previous) * d_gated, -1)
  # Content: w_c = softmax(beta * cos) (with a sink, the softmax's entries
  # but the sink's, whose gradient is 0: the same formula).
  d_scores = content * (d_content - tf.reduce_sum(content * d_content, -1,
                                                  keepdims=True))
  d_strengths = tf.reduce_sum(d_scores * cosine, -1)
  d_cosine = d_scores * strengths[:, :, None]
  norms = key_norms[:, :, None] * memory_norms[:, None, :]
  d_dots = d_cosine / norms
  d_cos_cos = d_cosine * cosine
  d_key_norms = -tf.reduce_sum(d_cos_cos, -1) / key_norms  # [B,H]
  d_memory_norms = -tf.reduce_sum(d_cos_cos, 1) / memory_norms  # [B,N]
  if empty_rows_as is not None:
    d_memory_norms += _presence_norm_gradient(tf.reduce_sum(d_scores, 1),
                                              memory_norms)
  d_keys = (tf.einsum("bhn,bnw->bhw", d_dots, memory)
            + (d_key_norms / key_norms)[:, :, None] * keys)
  # Summed over the few heads element-wise rather than as a matmul, so that
  # XLA computes the whole [B, N, W] gradient in one pass over the memory.
  d_memory = (tf.reduce_sum(d_dots[:, :, :, None] * keys[:, :, None, :], 1)
              + (d_memory_norms / memory_norms)[:, :, None] * memory)
  return (d_memory, d_previous, d_keys, d_strengths, d_gates, d_shift_weights,
          d_gammas)


def _presence_norm_gradient(d_presence, memory_norms):
  """dL/dn [B, N] through log f(i) (addressing.presence) of the rows' norms
  n = sqrt(s + eps), s = |M(i)|^2, from d_presence = dL/dlog f [B, N]:
  dlog f/df = 1 / f where f is above the TINY floor (else 0),
  df/ds = c / (s + c)^2, ds/dn = 2 n where s > 0."""
  squared, fill = addressing.presence(memory_norms)
  above = fill > addressing.TINY
  d_fill = tf.where(above, d_presence / tf.where(above, fill, 1.0), 0.0)
  d_squared = d_fill * addressing.FILL_HALF / tf.square(
      squared + addressing.FILL_HALF)
  return tf.where(squared > 0.0, d_squared * 2.0 * memory_norms, 0.0)


def address(memory, previous, keys, strengths, gates, shift_weights, gammas,
            memory_norms=None, empty_rows_as=None):
  """addressing.address (all arguments as there) with a hand-fused gradient.

  The same value; the backward pass recomputes the forward intermediates and
  keeps only the inputs. `memory_norms` [B, N] = addressing.norms(memory)
  may be given when the caller keeps them up to date (saving a pass over the
  memory); the gradient treats them as that function of the memory.
  """
  if memory_norms is None:
    memory_norms = addressing.norms(memory)

  @tf.custom_gradient
  def fused(memory, memory_norms, previous, keys, strengths, gates,
            shift_weights, gammas):
    inputs = (memory, previous, keys, strengths, gates, shift_weights, gammas)
    weights = _address_forward(*inputs, memory_norms,
                               empty_rows_as)["weights"]

    def grad(d_weights):
      v = _address_forward(*inputs, memory_norms, empty_rows_as)
      d = _address_backward(v, d_weights, *inputs,
                            empty_rows_as=empty_rows_as)
      return (d[0], None) + d[1:]

    return weights, grad

  return fused(memory, tf.stop_gradient(memory_norms), previous, keys,
               strengths, gates, shift_weights, gammas)


def soft_access(memory, previous, keys, strengths, gates, shift_weights, gammas,
                erase, add, num_read_heads, empty_rows_as=None):
  """Address all heads, write, then read; see the module docstring.

  Args:
    memory: [B, N, W] M_{t-1}.
    previous: [B, H, N] w_{t-1}, read heads first.
    keys: [B, H, W]; strengths: [B, H]; gates: [B, H];
    shift_weights: [B, H, S]; gammas: [B, H] (>= 1): head parameters.
    erase: [B, H_w, W] erase vectors; add: [B, H_w, W] add vectors.
    num_read_heads: H_r (a Python int); H_w = H - H_r.
    empty_rows_as: None or S >= 0: content weights weigh rows by how much
      they hold (addressing.content_weights).

  Returns:
    (weights [B, H, N] w_t, memory [B, N, W] M_t, read [B, H_r, W] r_t).
  """

  def forward(memory, previous, keys, strengths, gates, shift_weights, gammas,
              erase, add):
    """The access and every intermediate the backward pass needs."""
    v = _address_forward(memory, previous, keys, strengths, gates,
                         shift_weights, gammas, empty_rows_as=empty_rows_as)
    weights = v["weights"]
    read_weights = weights[:, :num_read_heads]
    write_weights = weights[:, num_read_heads:]
    new_memory = memory_lib.write(memory, write_weights, erase, add)
    read = memory_lib.read(new_memory, read_weights)
    v.update(read_weights=read_weights, write_weights=write_weights,
             new_memory=new_memory, read=read)
    return v

  @tf.custom_gradient
  def access(memory, previous, keys, strengths, gates, shift_weights, gammas,
             erase, add):
    inputs = (memory, previous, keys, strengths, gates, shift_weights, gammas,
              erase, add)
    out = forward(*inputs)

    def grad(d_weights, d_memory, d_read):
      # Recompute rather than keep: only the inputs are saved per time step.
      v = forward(*inputs)
      new_memory = v["new_memory"]
      read_weights, write_weights = v["read_weights"], v["write_weights"]
      # Read: r = w_r M'.
      d_memory = d_memory + tf.einsum("bhn,bhw->bnw", read_weights, d_read)
      d_read_weights = tf.einsum("bhw,bnw->bhn", d_read, new_memory)
      # Write: M' = M * prod_h K_h + sum_h w_h a_h, K_h = 1 - w_h e_h.
      factors = _keep_factors(write_weights, erase)  # [B,Hw,N,W]
      num_write = factors.shape[1]
      keep = tf.reduce_prod(factors, axis=1)
      d_keep = d_memory * memory  # [B,N,W]
      others = []
      for h in range(num_write):  # product of the other heads' factors
        rest = [factors[:, j] for j in range(num_write) if j != h]
        others.append(tf.math.reduce_prod(tf.stack(rest, 1), 1) if rest
                      else tf.ones_like(keep))
      d_factor = d_keep[:, None] * tf.stack(others, 1)  # [B,Hw,N,W]
      d_write_weights = (tf.einsum("bnw,bhw->bhn", d_memory, add)
                         - tf.reduce_sum(d_factor * erase[:, :, None, :], -1))
      d_erase = -tf.reduce_sum(d_factor * write_weights[:, :, :, None], 2)
      d_add = tf.einsum("bnw,bhn->bhw", d_memory, write_weights)
      d_w = d_weights + tf.concat([d_read_weights, d_write_weights], 1)
      d_address = _address_backward(v, d_w, *inputs[:7],
                                    empty_rows_as=empty_rows_as)
      return (d_memory * keep + d_address[0],) + d_address[1:] + (d_erase,
                                                                  d_add)

    return (out["weights"], out["new_memory"], out["read"]), grad

  return access(memory, previous, keys, strengths, gates, shift_weights,
                gammas, erase, add)


def hard_access(memory, indices, erase, add, num_read_heads):
  """Write the write heads' chosen rows, then read the read heads' rows.

  Args:
    memory: [B, N, W] M_{t-1}.
    indices: [B, H] int chosen cells, read heads first.
    erase: [B, H_w, W]; add: [B, H_w, W].
    num_read_heads: H_r.

  Returns:
    (memory [B, N, W] M_t, read [B, H_r, W] r_t = M_t(i_h)).
  """
  new_memory = memory_lib.write_rows(memory, indices[:, num_read_heads:],
                                     erase, add)
  return new_memory, memory_lib.read_rows(new_memory,
                                          indices[:, :num_read_heads])


def dense_access(memory, weights, erase, add, num_read_heads):
  """Write with the write heads' weights, then read with the read heads'.

  Args:
    memory: [B, N, W] M_{t-1}.
    weights: [B, H, N] w_t, read heads first: any weights (soft heads without
      content addressing), or one-hot ones, where the value equals
      hard_access's and the gradient reaches the weights (the straight-through
      estimator needs it), at soft access's cost.
    erase: [B, H_w, W]; add: [B, H_w, W].
    num_read_heads: H_r.

  Returns:
    (memory [B, N, W] M_t, read [B, H_r, W] r_t), differentiated by autodiff.
  """
  new_memory = memory_lib.write(memory, weights[:, num_read_heads:], erase,
                                add)
  return new_memory, memory_lib.read(new_memory, weights[:, :num_read_heads])
