"""Priority sort (Graves et al. 2014, 4.5): read vectors with priorities,
then write the highest-priority ones in order of priority.

Layout with n = num_inputs vectors, m = num_outputs answers, b = num_bits:

    step      0 .. n-1            n                n+1 .. n+m
    input     bits, p_j, 0        0.., 0, 1        zeros
    target    zeros               zeros            the m vectors of highest p,
                                                   highest first
    mask      0                   0                1

Inputs have b + 2 channels: the bits, the priority p_j ~ U(-1, 1) of vector
j, and a delimiter. Targets have b channels. Every sequence has T = n + 1 + m
steps (n and m are fixed, as in the paper: 20 in, 16 out).

The generalisation sizes are input counts; a variant keeps the share of
vectors to output (16 of 20: the highest 80%).
"""

import numpy as np


class PrioritySortTask:
  """Sort the num_outputs highest-priority of num_inputs random vectors."""

  name = "priority_sort"

  def __init__(self, num_bits=8, num_inputs=20, num_outputs=16):
    for arg, value in [("num_bits", num_bits), ("num_inputs", num_inputs),
                       ("num_outputs", num_outputs)]:
      if value < 1:
        raise ValueError(f"{arg} must be >= 1, got {value}")
    if num_outputs > num_inputs:
      raise ValueError(f"num_outputs must be <= num_inputs={num_inputs}, got "
                       f"{num_outputs}")
    self.num_bits = num_bits
    self.num_inputs, self.num_outputs = num_inputs, num_outputs
    self.input_size = num_bits + 2
    self.output_size = num_bits
    self.num_steps = num_inputs + 1 + num_outputs
    self.max_size = num_inputs  # the training size, in size_name units

  def sample(self, rng, batch_size):
    """A batch: inputs [B, T, b+2], targets [B, T, b], mask [B, T] (float32)."""
    n, m, b = self.num_inputs, self.num_outputs, self.num_bits
    bits = rng.integers(0, 2, size=(batch_size, n, b)).astype(np.float32)
    priorities = rng.uniform(-1.0, 1.0, size=(batch_size, n)).astype(np.float32)
    inputs = np.zeros((batch_size, self.num_steps, self.input_size), np.float32)
    inputs[:, :n, :b] = bits
    inputs[:, :n, b] = priorities
    inputs[:, n, b + 1] = 1.0
    # The m highest priorities, highest first (ties have probability 0).
    order = np.argsort(-priorities, axis=1, kind="stable")[:, :m]
    targets = np.zeros((batch_size, self.num_steps, self.output_size),
                       np.float32)
    targets[:, n + 1:] = np.take_along_axis(bits, order[:, :, None], axis=1)
    mask = np.zeros((batch_size, self.num_steps), np.float32)
    mask[:, n + 1:] = 1.0
    return inputs, targets, mask

  def variant(self, size):
    """`size` input vectors, the same share of them sorted into the answer."""
    outputs = max(1, round(size * self.num_outputs / self.num_inputs))
    return PrioritySortTask(self.num_bits, size, outputs)

  generalisation_sizes = (20, 30, 40)
  size_name = "inputs"
