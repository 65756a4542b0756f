"""The copy task (Graves et al. 2014, 4.1): read a sequence, then write it back.

Layout of one sequence of length L, with b = num_bits:

    step       0 .. L-1      L            L+1 .. 2L     2L+1 .. T-1
    input      bits, 0       0.., 1       zeros         zeros (padding)
    target     zeros         zeros        the bits      zeros
    mask       0             0            1             0

Inputs have b + 1 channels (the last one marks the delimiter), targets b.
Every batch is padded to T = 2 * max_length + 1 steps, so one compiled step
serves every length in the batch.

Test sequences draw every bit uniformly. Training sequences (train_sample)
start with an all-zero vector more often: such a vector looks like the
silence of the output phase, and a sequence that starts with one (1 in 256
under uniform bits) is otherwise met once every eight batches of 32, too
rarely for a model to learn where the copy starts (docs/convergence.md).
One further in makes a trained model move its waiting read head off the
first cell in 1-2% of the cases, most of its errors at length 120;
train_zero_vector puts one into that share of the training sequences, which
made fewer such errors but cost 2 of 10 seeds their learning, so it is off
by default (docs/tasks.md).
"""

import numpy as np


class CopyTask:
  """Copy of random binary vectors, lengths drawn uniformly per sequence."""

  name = "copy"

  def __init__(self, num_bits=8, min_length=1, max_length=20,
               train_zero_start=1 / 16, train_zero_vector=0.0):
    if num_bits < 1:
      raise ValueError(f"num_bits must be >= 1, got {num_bits}")
    if min_length < 1:
      raise ValueError(f"min_length must be >= 1, got {min_length}")
    if max_length < min_length:
      raise ValueError(f"max_length must be >= min_length={min_length}, got "
                       f"{max_length}")
    for name, share in [("train_zero_start", train_zero_start),
                        ("train_zero_vector", train_zero_vector)]:
      if not 0 <= share < 1:
        raise ValueError(f"{name} must be in [0, 1), got {share}")
    self.num_bits = num_bits
    self.min_length = min_length
    self.max_length = max_length
    self.input_size = num_bits + 1
    self.output_size = num_bits
    self.num_steps = 2 * max_length + 1
    self.max_size = max_length  # the largest training size, in size_name units
    self.train_zero_start = train_zero_start
    self.train_zero_vector = train_zero_vector

  def sample(self, rng, batch_size, difficulty=1.0):
    """A batch: inputs [B, T, b+1], targets [B, T, b], mask [B, T] (float32).

    `difficulty` in (0, 1] caps the lengths at that fraction of the way from
    min_length to max_length (for a curriculum); the padding stays the same.
    """
    return self._sample(rng, batch_size, difficulty, 0.0, 0.0)

  def train_sample(self, rng, batch_size, difficulty=1.0):
    """A training batch: as `sample`, but a sequence's first vector is then
    set to all zeros with probability train_zero_start, and (independently)
    one vector at a uniformly drawn step of its input with probability
    train_zero_vector."""
    return self._sample(rng, batch_size, difficulty, self.train_zero_start,
                        self.train_zero_vector)

  def _sample(self, rng, batch_size, difficulty, zero_start, zero_vector):
    longest = self.min_length + int(round(
        (self.max_length - self.min_length) * difficulty))
    lengths = rng.integers(self.min_length, longest + 1, size=batch_size)
    inputs = np.zeros((batch_size, self.num_steps, self.input_size), np.float32)
    targets = np.zeros((batch_size, self.num_steps, self.output_size),
                       np.float32)
    mask = np.zeros((batch_size, self.num_steps), np.float32)
    bits = rng.integers(0, 2, size=(batch_size, self.max_length,
                                    self.num_bits)).astype(np.float32)
    if zero_start:
      bits[rng.random(batch_size) < zero_start, 0] = 0.0
    if zero_vector:  # no draws without it: the old streams stay the same
      picked = np.flatnonzero(rng.random(batch_size) < zero_vector)
      steps = rng.integers(0, lengths[picked])
      bits[picked, steps] = 0.0
    for i, length in enumerate(lengths):
      inputs[i, :length, :self.num_bits] = bits[i, :length]
      inputs[i, length, self.num_bits] = 1.0
      targets[i, length + 1:2 * length + 1] = bits[i, :length]
      mask[i, length + 1:2 * length + 1] = 1.0
    return inputs, targets, mask

  def variant(self, size):
    """The same task at one fixed length, for generalisation tests."""
    return CopyTask(self.num_bits, size, size, self.train_zero_start,
                    self.train_zero_vector)

  # Longer than training (lengths 1-20) to test generalisation, as in the paper.
  generalisation_sizes = (20, 40, 80, 120)
  size_name = "length"
