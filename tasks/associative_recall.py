"""Associative recall (Graves et al. 2014, 4.3): given a list of items and one
of them as a query, answer with the item that followed it.

An item is `item_length` random binary vectors of `num_bits` bits. Inputs have
num_bits + 2 channels: channel b marks an item delimiter, channel b + 1 a query
delimiter. For k items of length L a sequence reads

    [item delim] item_1 ... [item delim] item_k  [query delim] query [query delim]
    answer (L steps of zeros in, the item after the query as target)

so it spans k (L + 1) + 2 L + 2 steps; batches are padded to the length for
max_items, with the mask 1 only on the answer steps.
"""

import numpy as np


class AssociativeRecallTask:
  """Associative recall with a number of items drawn uniformly per sequence."""

  name = "associative_recall"

  def __init__(self, num_bits=6, item_length=3, min_items=2, max_items=6):
    if num_bits < 1:
      raise ValueError(f"num_bits must be >= 1, got {num_bits}")
    if item_length < 1:
      raise ValueError(f"item_length must be >= 1, got {item_length}")
    if min_items < 2:
      raise ValueError(f"min_items must be >= 2 (a query needs a next item), "
                       f"got {min_items}")
    if max_items < min_items:
      raise ValueError(f"max_items must be >= min_items={min_items}, got "
                       f"{max_items}")
    self.num_bits = num_bits
    self.item_length = item_length
    self.min_items = min_items
    self.max_items = max_items
    self.input_size = num_bits + 2
    self.output_size = num_bits
    self.num_steps = self._steps(max_items)
    self.max_size = max_items  # the largest training size, in size_name units

  def _steps(self, num_items):
    return num_items * (self.item_length + 1) + 2 * self.item_length + 2

  def sample(self, rng, batch_size, difficulty=1.0):
    """A batch: inputs [B, T, b+2], targets [B, T, b], mask [B, T] (float32).

    `difficulty` in (0, 1] caps the item count at that fraction of the way
    from min_items to max_items (for a curriculum); the padding stays the same.
    """
    b, length = self.num_bits, self.item_length
    most = self.min_items + int(round(
        (self.max_items - self.min_items) * difficulty))
    counts = rng.integers(self.min_items, most + 1, size=batch_size)
    inputs = np.zeros((batch_size, self.num_steps, self.input_size), np.float32)
    targets = np.zeros((batch_size, self.num_steps, self.output_size),
                       np.float32)
    mask = np.zeros((batch_size, self.num_steps), np.float32)
    items = rng.integers(0, 2, size=(batch_size, self.max_items, length,
                                     b)).astype(np.float32)
    for i, count in enumerate(counts):
      for j in range(count):
        start = j * (length + 1)
        inputs[i, start, b] = 1.0
        inputs[i, start + 1:start + 1 + length, :b] = items[i, j]
      query = rng.integers(0, count - 1)
      start = count * (length + 1)
      inputs[i, start, b + 1] = 1.0
      inputs[i, start + 1:start + 1 + length, :b] = items[i, query]
      inputs[i, start + 1 + length, b + 1] = 1.0
      answer = start + length + 2
      targets[i, answer:answer + length] = items[i, query + 1]
      mask[i, answer:answer + length] = 1.0
    return inputs, targets, mask

  def variant(self, size):
    """The same task with a fixed number of items, for generalisation tests."""
    return AssociativeRecallTask(self.num_bits, self.item_length, size, size)

  # More items than training (2-6) to test generalisation, as in the paper.
  generalisation_sizes = (6, 8, 12)
  size_name = "items"
