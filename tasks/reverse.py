r"""Your own task in a few lines: reverse a sequence, with only the required
parts of the task contract (tasks/contract.py).

  python -m tasks.train --task=tasks.reverse:make --logdir=runs/reverse
  python -m tasks.evaluate --logdir=runs/reverse

The model reads L random 6-bit vectors (L from 1 to 10) and a delimiter,
then writes the vectors back last first. Every sequence is padded to
T = 2 * 10 + 1 steps:

    step      0 .. L-1     L          L+1 .. 2L               rest
    input     bits, 0      0.., 1     zeros                   zeros
    target    zeros        zeros      bits L-1, L-2, .., 0    zeros
    mask      0            0          1                       0

With no variant(size) it has no generalisation tests, with no difficulty
argument no length curriculum; the CLIs train, evaluate and plot it all the
same.
"""

import numpy as np


class ReverseTask:
  name = "reverse"
  input_size = 7  # 6 bits and the delimiter
  output_size = 6

  def sample(self, rng, batch_size):
    bits, longest = self.output_size, 10
    inputs = np.zeros((batch_size, 2 * longest + 1, bits + 1), np.float32)
    targets = np.zeros((batch_size, 2 * longest + 1, bits), np.float32)
    mask = np.zeros((batch_size, 2 * longest + 1), np.float32)
    for i, length in enumerate(rng.integers(1, longest + 1, size=batch_size)):
      vectors = rng.integers(0, 2, size=(length, bits))
      inputs[i, :length, :bits] = vectors
      inputs[i, length, bits] = 1.0
      targets[i, length + 1:2 * length + 1] = vectors[::-1]
      mask[i, length + 1:2 * length + 1] = 1.0
    return inputs, targets, mask


def make():
  """The factory `--task=tasks.reverse:make` calls."""
  return ReverseTask()
