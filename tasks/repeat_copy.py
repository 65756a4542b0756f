"""Repeat copy (Graves et al. 2014, 4.2): read a sequence and a repeat count,
write the sequence that many times, then an end marker.

Layout of one sequence of length L repeated R times, with b = num_bits:

    step      0 .. L-1     L                 L+1 .. L+RL       L+RL+1      rest
    input     bits, 0, 0   0.., 1, c(R)      zeros             zeros       zeros
    target    zeros, 0     zeros, 0          bits (R times), 0  zeros, 1   zeros
    mask      0            0                 1                 1           0

Inputs have b + 2 channels: the bits, a delimiter (1 at step L) and the
repeat count on its own channel at the delimiter step, normalised to mean 0
and variance 1 over the training counts as in the paper:
c(R) = (R - mean) / std of the uniform count distribution. Targets have b + 1
channels: the bits and the end marker, which must be 0 on every copy step and
1 on the step right after the last copy. Every batch is padded to
T = L_max + 1 + L_max R_max + 1 steps.

The generalisation sizes are sequence lengths; the repeat counts keep their
training range (the paper also tested more repeats: `variant(size, repeats)`).
"""

import math

import numpy as np


class RepeatCopyTask:
  """Repeat copy with lengths and repeat counts drawn uniformly per sequence."""

  name = "repeat_copy"

  def __init__(self, num_bits=8, min_length=1, max_length=10, min_repeats=1,
               max_repeats=10, count_range=None, cap_lengths=False):
    for arg, value in [("num_bits", num_bits), ("min_length", min_length),
                       ("min_repeats", min_repeats)]:
      if value < 1:
        raise ValueError(f"{arg} must be >= 1, got {value}")
    if max_length < min_length:
      raise ValueError(f"max_length must be >= min_length={min_length}, got "
                       f"{max_length}")
    if max_repeats < min_repeats:
      raise ValueError(f"max_repeats must be >= min_repeats={min_repeats}, "
                       f"got {max_repeats}")
    self.num_bits = num_bits
    self.min_length, self.max_length = min_length, max_length
    self.min_repeats, self.max_repeats = min_repeats, max_repeats
    # The count normalisation is that of the training range, kept by variants.
    self.count_range = count_range or (min_repeats, max_repeats)
    # Whether a difficulty caps the lengths too. By default it caps the
    # repeat counts only, so a curriculum's first level is copy at every
    # length: the NTM learns the single pass there, then the jump back.
    self.cap_lengths = cap_lengths
    self.input_size = num_bits + 2
    self.output_size = num_bits + 1
    self.num_steps = max_length + 1 + max_length * max_repeats + 1
    self.max_size = max_length  # the largest training size, in size_name units

  def normalised_count(self, repeats):
    """c(R): R scaled to mean 0, variance 1 over the uniform training counts."""
    low, high = self.count_range
    mean = (low + high) / 2
    std = math.sqrt(((high - low + 1) ** 2 - 1) / 12) or 1.0
    return (np.asarray(repeats, np.float32) - mean) / std

  def sample(self, rng, batch_size, difficulty=1.0):
    """A batch: inputs [B, T, b+2], targets [B, T, b+1], mask [B, T] (float32).

    `difficulty` in (0, 1] caps the repeat counts at round(difficulty *
    max_repeats) (at least min_repeats): with the adaptive curriculum's 10
    levels, level k trains up to k repeats and level 1 is copy. With
    cap_lengths it also caps the lengths at that fraction of the way from
    the least to the most. The padding stays.
    """
    longest = self.max_length
    if self.cap_lengths:
      longest = self.min_length + int(round(
          (self.max_length - self.min_length) * difficulty))
    lengths = rng.integers(self.min_length, longest + 1, size=batch_size)
    most = max(self.min_repeats,
               min(self.max_repeats, int(round(self.max_repeats * difficulty))))
    repeats = rng.integers(self.min_repeats, most + 1, size=batch_size)
    b = self.num_bits
    inputs = np.zeros((batch_size, self.num_steps, self.input_size), np.float32)
    targets = np.zeros((batch_size, self.num_steps, self.output_size),
                       np.float32)
    mask = np.zeros((batch_size, self.num_steps), np.float32)
    bits = rng.integers(0, 2, size=(batch_size, self.max_length,
                                    b)).astype(np.float32)
    counts = self.normalised_count(repeats)
    for i, (length, times) in enumerate(zip(lengths, repeats)):
      inputs[i, :length, :b] = bits[i, :length]
      inputs[i, length, b] = 1.0
      inputs[i, length, b + 1] = counts[i]
      end = length + 1 + length * times  # the end marker's step
      targets[i, length + 1:end, :b] = np.tile(bits[i, :length], (times, 1))
      targets[i, end, b] = 1.0
      mask[i, length + 1:end + 1] = 1.0
    return inputs, targets, mask

  def variant(self, size, repeats=None):
    """Length `size`, with the training repeat counts (or `repeats`)."""
    low, high = (repeats, repeats) if repeats else (self.min_repeats,
                                                    self.max_repeats)
    return RepeatCopyTask(self.num_bits, size, size, low, high,
                          self.count_range, self.cap_lengths)

  # Longer than training (lengths 1-10), as the paper's generalisation plots.
  generalisation_sizes = (10, 20, 40)
  size_name = "length"
