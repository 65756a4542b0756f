"""Reading and writing memory, as pure tensor functions (NTM paper, 3.1-3.2).

Soft access blends every cell with a weighting; hard access touches the rows
named by integer indices. `read_rows`/`write_rows` compute exactly what
`read`/`write` compute with one-hot weights, but only on the chosen rows;
`read_sparse`/`write_sparse` compute what they compute with a weighting that
is non-zero on K rows per head (Sparse Access Memory), on those rows only.

Shapes: B batch, H heads, N memory cells, W word size, K rows per head.
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
  new_rows = written_rows(read_rows(memory, indices), indices, erase, add)
  # Heads that share a row scatter one value several times; the gradient
  # of a scatter reaches every copy, so all but the first copy are held
  # constant (the row counts once, as in the soft write).
  return scatter_rows(memory, indices, tf.where(
      first_of_equal(indices, indices, diagonal=True)[:, :, None], new_rows,
      tf.stop_gradient(new_rows)))


def written_rows(rows, indices, erase, add):
  """The values `write_rows` gives the chosen rows, from their old values.

  Args:
    rows: [B, H, W] M_{t-1}(i_h), the chosen rows before the write.
    indices: [B, H] int row indices i_h (heads with equal indices combine).
    erase: [B, H, W]; add: [B, H, W].

  Returns:
    [B, H, W] M_t(i_h) = M_{t-1}(i_h) prod_{k: i_k = i_h} (1 - e_k)
    + sum_{k: i_k = i_h} a_k; heads that share a row get the same value.
  """
  return rows_after_write(rows, indices, indices[:, :, None],
                          tf.ones(tf.shape(indices[:, :, None]), rows.dtype),
                          erase, add)


def rows_after_write(rows, indices, write_indices, write_weights, erase, add):
  """Rows after a write whose weights are non-zero only on the rows
  `write_indices` name (K distinct rows per write head).

      M_t(i) = M_{t-1}(i) prod_h (1 - c_h(i) e_h) + sum_h c_h(i) a_h,
      c_h(i) = sum_k [j_h(k) = i] w_h(k)   (head h's weight on row i)

  which is `write` restricted to the rows `indices`.

  Args:
    rows: [B, R, W] M_{t-1}(i_r), the rows before the write.
    indices: [B, R] int their row indices i_r.
    write_indices: [B, H_w, K] int each write head's rows j_h(k), distinct
      within a head (heads may share rows).
    write_weights: [B, H_w, K] the weights w_h(k) on them.
    erase: [B, H_w, W] e_h; add: [B, H_w, W] a_h.

  Returns:
    [B, R, W] M_t(i_r); entries with equal indices get equal values.
  """
  weight = tf.einsum(  # c_h(i_r) [B, R, H_w]
      "brhk,bhk->brh",
      tf.cast(tf.equal(indices[:, :, None, None], write_indices[:, None]),
              rows.dtype), write_weights)
  if write_indices.shape[1] == 1:  # one write head: skip the product
    keep = 1.0 - weight[:, :, 0, None] * erase
  else:
    keep = tf.reduce_prod(1.0 - weight[..., None] * erase[:, None], axis=2)
  return rows * keep + tf.einsum("brh,bhw->brw", weight, add)


def as_slots(indices):
  """[B, H, K] rows per head as [B, H K] slots, head-major."""
  shape = tf.shape(indices)
  return tf.reshape(indices, [shape[0], shape[1] * shape[2]])


def read_sparse(memory, indices, weights):
  """Sparse read, r_h = sum_k w_h(k) M(i_h(k)): `read` with a weighting that
  is non-zero on K rows per head.

  Args:
    memory: [B, N, W] memory M.
    indices: [B, H, K] int the rows of each head's support.
    weights: [B, H, K] the weights on them.

  Returns:
    [B, H, W] read vectors r_h.
  """
  rows = tf.gather(memory, indices, batch_dims=1)  # [B, H, K, W]
  return tf.einsum("bhk,bhkw->bhw", weights, rows)


def write_sparse(memory, indices, weights, erase, add):
  """Sparse write: `write` with weights w_h(k) on rows i_h(k) and zero
  elsewhere, touching only those rows (a head's K rows must be distinct).

  Args:
    memory: [B, N, W] memory M_{t-1}.
    indices: [B, H, K] int rows of each head's support.
    weights: [B, H, K] write weights on them.
    erase: [B, H, W] e_h; add: [B, H, W] a_h.

  Returns:
    [B, N, W] memory M_t.
  """
  slot_indices = as_slots(indices)
  new_rows = rows_after_write(read_rows(memory, slot_indices), slot_indices,
                              indices, weights, erase, add)
  return scatter_rows(memory, slot_indices, tf.where(
      first_of_equal(slot_indices, slot_indices, diagonal=True)[:, :, None],
      new_rows, tf.stop_gradient(new_rows)))


def scatter_rows(memory, indices, rows):
  """memory with row i_h of each batch element replaced by rows[:, h].

  Args:
    memory: [B, N, W] (or [B, N], then rows is [B, H]: per-row values).
    indices: [B, H] int row indices; heads sharing a row must carry the same
      value (the update order among them is unspecified).
    rows: [B, H, W] the new rows.

  Returns:
    [B, N, W]. Inside an XLA loop that owns `memory` this is an in-place
    update of H rows; outside XLA it copies the whole memory.
  """
  batch = tf.broadcast_to(
      tf.range(tf.shape(indices)[0], dtype=indices.dtype)[:, None],
      tf.shape(indices))
  return tf.tensor_scatter_nd_update(memory, tf.stack([batch, indices], -1),
                                     rows)


def first_of_equal(indices_a, indices_b, diagonal=False):
  """[B, A, K] bool: true at the first k with indices_b[k] == indices_a[a].

  With `diagonal` (indices_a is indices_b), [B, K] bool: true where head k is
  the first head to choose its row.
  """
  equal = tf.cast(tf.equal(indices_a[:, :, None], indices_b[:, None, :]),
                  tf.int32)
  first = tf.equal(tf.cumsum(equal, axis=-1) * equal, 1)
  return tf.linalg.diag_part(first) if diagonal else first
