"""Dynamic N-grams (Graves et al. 2014, 4.4): predict the next bit of a
sequence drawn from a 6-gram distribution that is new in every sequence.

Each sequence draws a table of 2^5 = 32 probabilities, p_c ~ Beta(1/2, 1/2),
one per 5-bit context c: P(x_{t+1} = 1 | x_{t-4..t} = c) = p_c. The first 5
bits are fair coins, the rest follow the table. For a sequence of L bits:

    step      0 .. 3          4 .. L-2
    input     x_t             x_t
    target    x_{t+1}         x_{t+1}
    mask      0               1        (scored once a whole context is seen)

Inputs and targets have one channel; T = L - 1. The measure is the model's
cross-entropy on the scored steps, in bits per sequence, minus that of the
Bayes-optimal predictor (under the Beta(1/2, 1/2) prior), which predicts

    P(x_{t+1} = 1) = (N1 + 1/2) / (N0 + N1 + 1)

with N0, N1 the zeros and ones that followed the current context earlier in
the sequence. The optimum is computed from the sequence itself
(`optimal_probabilities`), so the excess is measured on every evaluated batch.
"""

import numpy as np

CONTEXT = 5  # bits of history: a 6-gram is 5 context bits and the next one
_LN2 = np.log(2.0)


def _contexts(bits):
  """[B, L - CONTEXT + 1] int: the context ending at each step t >= CONTEXT-1,
  x_{t-4..t} read as a binary number (x_t the lowest bit)."""
  powers = 2 ** np.arange(CONTEXT - 1, -1, -1)
  windows = np.lib.stride_tricks.sliding_window_view(bits, CONTEXT, axis=1)
  return (windows.astype(np.int64) * powers).sum(-1)


def generate(table, uniforms):
  """[B, L] int bits: the first CONTEXT fair coins, then x_t = 1 with
  probability table[b, context of x_{t-5..t-1}]; table [B, 32], uniforms
  [B, L] U(0, 1) draws that decide each bit."""
  batch, length = uniforms.shape
  bits = np.zeros((batch, length), np.int64)
  bits[:, :CONTEXT] = uniforms[:, :CONTEXT] < 0.5
  rows = np.arange(batch)
  context = _contexts(bits[:, :CONTEXT])[:, 0]
  for t in range(CONTEXT, length):
    bits[:, t] = uniforms[:, t] < table[rows, context]
    context = (context * 2 + bits[:, t]) % 2 ** CONTEXT
  return bits


def optimal_probabilities(inputs):
  """The Bayes-optimal P(x_{t+1} = 1) at every step of a batch.

  Args:
    inputs: [B, T, 1], the bits x_0 .. x_{T-1}.

  Returns:
    [B, T] float64; steps before a whole context (t < 4) hold 1/2.
  """
  bits = np.asarray(inputs)[..., 0] > 0.5
  batch, steps = bits.shape
  probabilities = np.full((batch, steps), 0.5)
  if steps < CONTEXT:
    return probabilities
  contexts = _contexts(bits)  # contexts[:, s] ends at step s + CONTEXT - 1
  counts = np.zeros((batch, 2 ** CONTEXT, 2))
  rows = np.arange(batch)
  for s in range(contexts.shape[1]):
    t = s + CONTEXT - 1
    if s:  # the previous context's outcome is x_t, seen now
      counts[rows, contexts[:, s - 1], bits[:, t].astype(int)] += 1
    zeros, ones = counts[rows, contexts[:, s], 0], counts[rows, contexts[:, s], 1]
    probabilities[:, t] = (ones + 0.5) / (zeros + ones + 1.0)
  return probabilities


def cross_entropy_bits(probabilities, targets, mask):
  """[B] cross-entropy in bits of P(x = 1) = probabilities [B, T] against
  targets [B, T, 1], summed over the steps where mask [B, T] is 1."""
  x = np.asarray(targets)[..., 0] > 0.5
  p = np.clip(probabilities, 1e-12, 1.0 - 1e-12)
  return -(np.where(x, np.log2(p), np.log2(1.0 - p)) * mask).sum(-1)


class NGramsTask:
  """Next-bit prediction under a 6-gram table drawn per sequence."""

  name = "ngrams"
  error_name = "excess bits per sequence over the Bayes-optimal predictor"

  def __init__(self, length=200):
    if length < CONTEXT + 2:
      raise ValueError(f"length must be >= {CONTEXT + 2} (a context and two "
                       f"bits to predict), got {length}")
    self.length = length
    self.input_size = 1
    self.output_size = 1
    self.num_steps = length - 1
    self.max_size = length  # the training size, in size_name units

  def sample(self, rng, batch_size):
    """A batch: inputs [B, T, 1], targets [B, T, 1], mask [B, T] (float32)."""
    table = rng.beta(0.5, 0.5, size=(batch_size, 2 ** CONTEXT))
    bits = generate(table, rng.random((batch_size, self.length)))
    inputs = bits[:, :-1, None].astype(np.float32)
    targets = bits[:, 1:, None].astype(np.float32)
    mask = np.zeros((batch_size, self.num_steps), np.float32)
    mask[:, CONTEXT - 1:] = 1.0
    return inputs, targets, mask

  def sequence_errors(self, logits, inputs, targets, mask):
    """[B] the model's cross-entropy in bits per sequence minus the
    Bayes-optimal predictor's, on the scored steps; logits [B, T, 1]."""
    logits = np.asarray(logits, np.float64)[..., 0]
    # From the logits directly: -log2 sigmoid(+-z) = log2(1 + exp(-+z)).
    x = np.asarray(targets)[..., 0] > 0.5
    model_bits = (np.logaddexp(0.0, np.where(x, -logits, logits))
                  * mask).sum(-1) / _LN2
    optimal_bits = cross_entropy_bits(optimal_probabilities(inputs), targets,
                                      mask)
    return model_bits - optimal_bits

  def variant(self, size):
    """Sequences of `size` bits."""
    return NGramsTask(size)

  generalisation_sizes = (200, 400)
  size_name = "length"
