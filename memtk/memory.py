"""Reading and writing memory, as pure tensor functions (NTM paper, 3.1-3.2).

Soft access blends every cell with a weighting; hard access touches the rows
named by integer indices. `read_rows`/`write_rows` compute exactly what
`read`/`write` compute with one-hot weights, but only on the chosen rows.

Shapes: B batch, H heads, N memory cells, W word size.
"""

import tensorflow as tf


def read(memory, weights):
  """Soft read, r_h = sum_i w_h(i) M(i) (eq. 2).

  Args:
    memory: [B, N, W] memory M.
    weights: [B, H, N] read weights w_h.

  Returns:
    [B, H, W] read vectors r_h.
  """
  return tf.einsum("bhn,bnw->bhw", weights, memory)


def write(memory, weights, erase, add):
  """Soft write with erase and add (eq. 3-4, all heads in one update).

      M'(i) = M(i) * prod_h (1 - w_h(i) e_h) + sum_h w_h(i) a_h

  Args:
    memory: [B, N, W] memory M_{t-1}.
    weights: [B, H, N] write weights w_h.
    erase: [B, H, W] erase vectors e_h in [0, 1].
    add: [B, H, W] add vectors a_h.

  Returns:
    [B, N, W] memory M_t.
  """
  if weights.shape[1] == 1:  # one head: skip the [B, H, N, W] product
    keep = 1.0 - weights[:, 0, :, None] * erase[:, 0, None, :]
  else:
    keep = tf.reduce_prod(
        1.0 - weights[:, :, :, None] * erase[:, :, None, :], axis=1)
  return memory * keep + tf.einsum("bhn,bhw->bnw", weights, add)


def read_rows(memory, indices):
  """Hard read of one row per head, r_h = M(i_h).

  Args:
    memory: [B, N, W] memory M.
    indices: [B, H] int row indices i_h in [0, N).

  Returns:
    [B, H, W] the chosen rows.
  """
  return tf.gather(memory, indices, batch_dims=1)


def write_rows(memory, indices, erase, add):
  """Hard write: `write(memory, one_hot(indices, N), erase, add)` on the chosen rows.

  Heads that choose the same row combine exactly as in the soft write: the row
  becomes M(i) * prod_{h: i_h = i} (1 - e_h) + sum_{h: i_h = i} a_h. Rows no
  head chose are left untouched.

  Args:
    memory: [B, N, W] memory M_{t-1}.
    indices: [B, H] int row indices i_h in [0, N).
    erase: [B, H, W] erase vectors e_h in [0, 1].
    add: [B, H, W] add vectors a_h.

  Returns:
    [B, N, W] memory M_t.
  """
  rows = read_rows(memory, indices)  # [B, H, W]
  # same[b, h, k] = 1 where heads h and k chose the same row.
  same = tf.cast(
      tf.equal(indices[:, :, None], indices[:, None, :]), memory.dtype)
  keep = tf.reduce_prod(1.0 - same[:, :, :, None] * erase[:, None, :, :],
                        axis=2)
  new_rows = rows * keep + tf.einsum("bhk,bkw->bhw", same, add)
  batch = tf.broadcast_to(
      tf.range(tf.shape(indices)[0], dtype=indices.dtype)[:, None],
      tf.shape(indices))
  scatter_at = tf.stack([batch, indices], axis=-1)  # [B, H, 2]
  # Colliding heads carry identical new rows, so the update order is moot.
  return tf.tensor_scatter_nd_update(memory, scatter_at, new_rows)
