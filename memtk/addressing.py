"""NTM addressing as pure tensor functions (Graves et al. 2014, section 3.3).

Every function takes and returns plain tensors: no variables, no state. Shapes
use B for batch, H for heads, N for memory cells (N in the NTM paper), W for the
word size (M in the NTM paper) and S for the number of shift offsets.

The full addressing chain of one head at step t is

    w_c = content_weights(M_{t-1}, k_t, beta_t)          (eq. 5)
    w_g = interpolate(w_c, w_{t-1}, g_t)                  (eq. 7)
    w~  = shift(w_g, s_t)                                 (eq. 8)
    w_t = sharpen(w~, gamma_t)                            (eq. 9)

and `address` composes the four. A head without content addressing skips the
first two steps and only moves from where it was, w_t = sharpen(shift(w_{t-1}))
(`address_by_shift`).

With `empty_rows_as=S` the content weights also weigh each row by how much
it holds, and give the rows that hold (almost) nothing the share of S rows
of cosine 0 that no row receives (a sink):

    w_c(i) = f(i) exp(beta * K[k, M(i)]) / (sum_j f(j) exp(beta * K[k, M(j)]) + S),
    f(i)   = |M(i)|^2 / (|M(i)|^2 + c)                    (`presence`)

The cosine of an empty row is 0, so with eq. 5 alone every unused cell takes
the same share of a lookup and N - (rows written) of them share its mass:
the lookup changes with N. With S = 0 empty rows take no content weight and
the written rows take all of it; with S > 0 a key that matches no written
row better than cosine 0 sends most of its mass to the sink, so w_c sums to
less than 1 and the location path (the previous weighting, renormalised by
sharpening) leads: the lookup finds nothing rather than every empty row,
at any N. S = 128 is what the empty rows weigh together in a fresh
128-cell memory under eq. 5.
"""

import tensorflow as tf

EPS = 1e-6  # keeps the cosine finite (and its gradient) for all-zero rows/keys
TINY = 1e-30  # floor before log() of a weight: exp(-69) is far below float32 use
# c in f(i) = |M(i)|^2 / (|M(i)|^2 + c): a written row holds an add vector of
# sigmoid outputs (|M(i)|^2 of order W/4 = 5), f = 0.998; a constant-memory
# row (W entries of 1e-6) has |M(i)|^2 = 2e-11, f = 2e-9, log f = -20.
FILL_HALF = 1e-2


def norms(rows):
  """[...] sqrt(|x|^2 + eps) of rows [..., W]."""
  return tf.sqrt(tf.reduce_sum(tf.square(rows), axis=-1) + EPS)


def cosine_similarity(memory, keys, memory_norms=None):
  """K[k, M(i)] = k.M(i) / (|k| |M(i)|), norms taken as sqrt(|x|^2 + eps).

  Args:
    memory: [B, N, W]; keys: [B, H, W].
    memory_norms: optional [B, N] norms(memory), when the caller keeps them.

  Returns:
    (cosine [B, H, N], key_norms [B, H], memory_norms [B, N]).
  """
  # A product and a sum over W that XLA fuses into one pass over the
  # memory: as a matmul ([H, W] x [W, N] per batch row) it ran 5x slower at
  # N = 2^20 (benchmarks.cost).
  dots = tf.reduce_sum(keys[:, :, None, :] * memory[:, None, :, :], -1)
  if memory_norms is None:
    memory_norms = norms(memory)
  key_norms = norms(keys)
  cosine = dots / (key_norms[:, :, None] * memory_norms[:, None, :])
  return cosine, key_norms, memory_norms


def presence(memory_norms):
  """(s, f) of rows whose norms(M(i)) are `memory_norms` [..., N]:
  s = |M(i)|^2 and f(i) = s / (s + c) (module docstring), [..., N] each."""
  squared = tf.maximum(tf.square(memory_norms) - EPS, 0.0)
  return squared, squared / (squared + FILL_HALF)


def log_presence(memory_norms):
  """[..., N] log f(i) (`presence`): about 0 for a row that holds a written
  vector; a constant-memory row -20; an all-zero row log(TINY) = -69,
  finite, with a zero gradient."""
  return tf.math.log(tf.maximum(presence(memory_norms)[1], TINY))


def content_scores(cosine, strengths, presence=None):
  """[B, H, N] the logits of w_c: beta * K[k, M(i)] (cosine [B, H, N],
  strengths [B, H]), plus log f(i) when `presence` (log_presence, broadcast
  to [B, H, N]) is given (empty_rows_as)."""
  scores = strengths[:, :, None] * cosine
  return scores if presence is None else scores + presence


def content_softmax(scores, empty_rows_as=None):
  """[B, H, N] w_c from its logits `scores` [B, H, N]: the softmax, or with
  S = empty_rows_as > 0 the softmax over the N logits and the sink's log S,
  the sink's share dropped (module docstring)."""
  if not empty_rows_as:
    return tf.nn.softmax(scores, axis=-1)
  sink = tf.fill(tf.shape(scores[..., :1]),
                 tf.math.log(tf.constant(empty_rows_as, scores.dtype)))
  return tf.nn.softmax(tf.concat([scores, sink], -1), axis=-1)[..., :-1]


def lookup_weights(cosine, strengths, row_norms, empty_rows_as=None):
  """[B, H, N] w_c from the cosines [B, H, N]: eq. 5, or with empty_rows_as
  the rows weighed by presence (their norms `row_norms`, broadcast to the
  cosines) beside the sink (module docstring)."""
  presence = None if empty_rows_as is None else log_presence(row_norms)
  return content_softmax(content_scores(cosine, strengths, presence),
                         empty_rows_as)


def rolls(weights, num_shifts):
  """[roll(w, o) for o = k - S // 2, k = 0 .. S-1]; roll(w, o)[i] = w[i - o]."""
  half = num_shifts // 2
  return [tf.roll(weights, shift=k - half, axis=-1) for k in range(num_shifts)]


def content_weights(memory, keys, strengths, empty_rows_as=None):
  """Content-based weights, w_c(i) = softmax_i(beta * K[k, M(i)]) (eq. 5-6).

  K is the cosine similarity k.M(i) / (|k| |M(i)|). Norms are taken as
  sqrt(|x|^2 + eps), so an all-zero row or key has similarity 0 to everything
  and yields uniform weights with finite gradients instead of NaN.

  Args:
    memory: [B, N, W] memory matrix M_{t-1}.
    keys: [B, H, W] key vectors k_t, one per head.
    strengths: [B, H] key strengths beta_t >= 0.
    empty_rows_as: None (eq. 5), or S >= 0: weigh each row by how much it
      holds, beside a sink of S rows of cosine 0 (module docstring).

  Returns:
    [B, H, N] weights; each row sums to 1, or with S > 0 to 1 less the
    sink's share.
  """
  cosine, _, memory_norms = cosine_similarity(memory, keys)
  return lookup_weights(cosine, strengths, memory_norms[:, None, :],
                        empty_rows_as)


def interpolate(content, previous, gates):
  """Interpolation gate, w_g = g * w_c + (1 - g) * w_{t-1} (eq. 7).

  Args:
    content: [B, H, N] content weights w_c.
    previous: [B, H, N] previous step's weights w_{t-1}.
    gates: [B, H] interpolation gates g_t in [0, 1].

  Returns:
    [B, H, N] gated weights.
  """
  gates = gates[:, :, None]
  return gates * content + (1.0 - gates) * previous


def shift(weights, shift_weights):
  """Circular convolution, w~(i) = sum_k s(k) w((i - o_k) mod N) (eq. 8).

  shift_weights[..., k] is the weight of offset o_k = k - S // 2, so offset +1
  moves the focus to the next cell. Costs O(N * S): one roll per offset, never
  an N x N matrix.

  Args:
    weights: [B, H, N] gated weights w_g.
    shift_weights: [B, H, S] shift distribution s_t, S odd.

  Returns:
    [B, H, N] shifted weights.
  """
  num_shifts = shift_weights.shape[-1]
  if num_shifts is None or num_shifts % 2 != 1:
    raise ValueError(
        f"shift_weights must have an odd static last dimension S, got shape "
        f"{shift_weights.shape}")
  return sum(shift_weights[:, :, k:k + 1] * rolled
             for k, rolled in enumerate(rolls(weights, num_shifts)))


def sharpen(weights, gammas):
  """Sharpening, w(i) = w~(i)^gamma / sum_j w~(j)^gamma (eq. 9), gamma >= 1.

  Computed as softmax(gamma * log(w~)), which is the same quantity without
  overflow or underflow of the power; weights below 1e-30 are floored so that
  zeros give neither NaN values nor NaN gradients.

  Args:
    weights: [B, H, N] shifted weights w~.
    gammas: [B, H] sharpening exponents gamma_t >= 1.

  Returns:
    [B, H, N] sharpened weights; each row sums to 1.
  """
  log_weights = tf.math.log(tf.maximum(weights, TINY))
  return tf.nn.softmax(gammas[:, :, None] * log_weights, axis=-1)


def address(memory, previous, keys, strengths, gates, shift_weights, gammas,
            empty_rows_as=None):
  """The whole NTM addressing chain for H heads at once (eq. 5-9).

  Args:
    memory: [B, N, W] memory M_{t-1}.
    previous: [B, H, N] weights w_{t-1}.
    keys: [B, H, W] keys k_t.
    strengths: [B, H] key strengths beta_t.
    gates: [B, H] interpolation gates g_t.
    shift_weights: [B, H, S] shift distributions s_t.
    gammas: [B, H] sharpening exponents gamma_t >= 1.
    empty_rows_as: None or S >= 0, as in content_weights.

  Returns:
    [B, H, N] weights w_t.
  """
  content = content_weights(memory, keys, strengths, empty_rows_as)
  gated = interpolate(content, previous, gates)
  return sharpen(shift(gated, shift_weights), gammas)


def address_by_shift(previous, shift_weights, gammas):
  """Addressing without content: w_t = sharpen(shift(w_{t-1}, s_t), gamma_t).

  The head moves relative to its previous focus only (eq. 8-9 with g_t = 0),
  so it never looks at the memory.

  Args:
    previous: [B, H, N] weights w_{t-1}.
    shift_weights: [B, H, S] shift distributions s_t.
    gammas: [B, H] sharpening exponents gamma_t >= 1.

  Returns:
    [B, H, N] weights w_t.
  """
  return sharpen(shift(previous, shift_weights), gammas)


# --- Sparse addressing (Sparse Access Memory, Rae et al. 2016) -------------
#
# A sparse head's weighting is non-zero on at most K cells: a support
# (indices [B, H, K]) and the weights on it ([B, H, K]). Its chain is the NTM
# chain restricted to sparse supports; the supports are chosen by ranking
# (held constant, as SAM does) and the weights on them are ordinary
# differentiable functions of the head's parameters:
#
#     c_t   = the K cells of highest K[k_t, M(i)]            (top-K of the scan)
#     w_c   = softmax_{i in c_t}(beta_t K[k_t, M(i)])          on c_t
#     w_g   = g_t w_c + (1 - g_t) w_{t-1}                      on c_t + supp w_{t-1}
#     w~(i) = sum_k s_t(k) w_g(i - o_k)                        on those cells + o_k
#     w_t   = w~^gamma / sum w~^gamma over the K cells of largest w~
#
# With K >= N every support is every cell and this is `address` exactly.


_TOP_BLOCK = 1024  # cells per block of the two-level top-K


def top_indices(scores, k):
  """[..., k] int32 the positions of the k largest `scores` [..., n], ties
  broken towards the lowest position, in increasing position order.

  tf.math.top_k leaves the choice among equal scores to the backend (XLA's
  and the eager kernel's differ), so a model whose scores tie (a fresh
  constant memory scores every cell alike) would read other cells compiled
  than eager. Here the k-th largest value v is found first; every position
  above v is kept and, of those equal to v, the lowest ones fill the rest.
  """
  n = scores.shape[-1] or tf.shape(scores)[-1]
  scores = tf.stop_gradient(scores)
  kth = tf.reduce_min(tf.math.top_k(scores, k=k, sorted=False).values, -1,
                      keepdims=True)
  above = scores > kth
  tied = tf.equal(scores, kth)
  missing = k - tf.reduce_sum(tf.cast(above, tf.int32), -1, keepdims=True)
  first_ties = tf.logical_and(
      tied, tf.cumsum(tf.cast(tied, tf.int32), axis=-1) <= missing)
  # Exactly k positions are kept; rank them by position (distinct keys).
  key = tf.where(tf.logical_or(above, first_ties), n - tf.range(n), 0)
  return tf.math.top_k(key, k=k, sorted=True).indices


def top_cells(scores, k):
  """[B, H, k] int32 the cells of the k largest scores [B, H, N], ties to
  the lowest cell (`top_indices`).

  Over many cells in two levels: the k largest scores lie in the k blocks
  of 1,024 cells with the largest maxima, so a top-k of the block maxima and
  a top-k within those k blocks (in increasing block order) find them, with
  the same tie rule at both levels giving the same cells as one top-k over
  all N. XLA's top-k over all N cells took 5x as long at N = 2^20.
  """
  num_cells = scores.shape[-1]
  if num_cells is None or num_cells < 4 * k * _TOP_BLOCK:
    return top_indices(scores, k)
  num_blocks = -(-num_cells // _TOP_BLOCK)
  padding = num_blocks * _TOP_BLOCK - num_cells
  if padding:
    scores = tf.pad(scores, [[0, 0], [0, 0], [0, padding]],
                    constant_values=scores.dtype.min)
  shape = tf.shape(scores)
  blocks = tf.reshape(scores, [shape[0], shape[1], num_blocks, _TOP_BLOCK])
  best = top_indices(tf.reduce_max(blocks, -1), k)
  candidates = tf.reshape(tf.gather(blocks, best, batch_dims=2),
                          [shape[0], shape[1], k * _TOP_BLOCK])
  within = top_indices(candidates, k)
  cells = best[..., None] * _TOP_BLOCK + tf.range(_TOP_BLOCK)
  return tf.gather(tf.reshape(cells, [shape[0], shape[1], k * _TOP_BLOCK]),
                   within, batch_dims=2)


def sparse_content_weights(rows, keys, strengths, empty_rows_as=None):
  """Content weights on a support, softmax_k(beta * K[k, M(i_k)]) (eq. 5-6).

  Args:
    rows: [B, H, K] + [W] the memory rows M(i_k) of each head's support.
    keys: [B, H, W] keys k_t; strengths: [B, H] beta_t >= 0.
    empty_rows_as: None, or S >= 0: weigh each row by how much it holds,
      beside a sink of S rows of cosine 0 (as content_weights).

  Returns:
    [B, H, K] weights; each row sums to 1 (with S > 0: 1 less the sink's
    share). Norms as in `cosine_similarity`.
  """
  dots = tf.einsum("bhw,bhkw->bhk", keys, rows)
  row_norms = norms(rows)
  cosine = dots / (norms(keys)[:, :, None] * row_norms)
  return lookup_weights(cosine, strengths, row_norms, empty_rows_as)


def sparse_address(content_indices, content, previous_indices, previous,
                   gates, shift_weights, gammas, memory_size, k, indices=None):
  """The NTM chain on sparse supports (see above): (indices, weights) of w_t.

  Args:
    content_indices: [B, H, Kc] int the content support c_t, or None for
      heads without content addressing (then w_g = w_{t-1}).
    content: [B, H, Kc] w_c on it (unused when content_indices is None).
    previous_indices: [B, H, Kp] int the support of w_{t-1} (distinct cells).
    previous: [B, H, Kp] w_{t-1} on it.
    gates: [B, H] g_t; shift_weights: [B, H, S]; gammas: [B, H] (>= 1).
    memory_size: N (shifts wrap around it).
    k: K, the size of the new support (<= the number of distinct cells the
      sources can reach, which holds when K <= Kc or K <= Kp).
    indices: optional [B, H, K] int a support chosen before from the same
      inputs (a backward pass that recomputes w_t): the weights are computed
      on it instead of ranking again, so rounding cannot change the support.

  Returns:
    (indices [B, H, K] int32, weights [B, H, K]) of w_t; the weights sum to 1.
  """
  previous_indices = tf.cast(previous_indices, tf.int32)
  if content_indices is None:
    sources, values = previous_indices, previous
  else:
    g = gates[:, :, None]
    sources = tf.concat([tf.cast(content_indices, tf.int32),
                         previous_indices], -1)
    values = tf.concat([g * content, (1.0 - g) * previous], -1)
  num_shifts = shift_weights.shape[-1]
  half = num_shifts // 2
  shape = tf.shape(sources)
  flat = [shape[0], shape[1], shape[2] * num_shifts]
  # Candidate l = (m, k) is cell y_m + o_k (o_k = k - S // 2), m-major.
  offsets = tf.range(num_shifts) - half
  cells = tf.reshape(tf.math.floormod(sources[..., None] + offsets,
                                      memory_size), flat)
  # reach[m, k, m'] = (y_m + o_k - y_m' + S // 2) mod N: candidate (m, k) is
  # source m' moved by offset slot reach[m, k, m'] when that is < S (offset
  # slots are distinct mod N as S <= N). Pairs of sources, not of
  # candidates: S times fewer than comparing every candidate with every one.
  reach = tf.math.floormod(
      sources[..., :, None, None] + offsets[:, None]
      - sources[..., None, None, :] + half, memory_size)  # [B, H, M, S, M]
  moved = tf.zeros_like(reach, dtype=values.dtype)
  for slot in range(num_shifts):  # s_t(reach), 0 where no offset reaches
    moved += tf.cast(tf.equal(reach, slot), values.dtype) * shift_weights[
        :, :, slot, None, None, None]
  shifted = tf.reshape(tf.einsum("bhmkn,bhn->bhmk", moved, values), flat)
  if indices is None:
    # Rank each distinct cell once (its first entry); w~ is >= 0.
    order = tf.range(shape[2])[:, None] * num_shifts + tf.range(num_shifts)
    earlier = tf.logical_and(
        reach < num_shifts,
        tf.range(shape[2]) * num_shifts + reach < order[:, :, None])
    repeated = tf.reshape(tf.reduce_any(earlier, -1), flat)
    ranked = tf.where(repeated, tf.constant(-1, shifted.dtype), shifted)
    positions = top_indices(ranked, k)
    indices = tf.gather(cells, positions, batch_dims=2)
  else:  # the first entry of each given cell
    indices = tf.cast(indices, tf.int32)
    positions = tf.argmax(tf.cast(tf.equal(indices[..., None],
                                           cells[..., None, :]), tf.int32),
                          axis=-1, output_type=tf.int32)
  kept = tf.gather(shifted, positions, batch_dims=2)
  log_kept = tf.math.log(tf.maximum(kept, TINY))
  return indices, tf.nn.softmax(gammas[:, :, None] * log_kept, axis=-1)
