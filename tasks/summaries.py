"""TensorBoard events of a training run, written at every evaluation.

  tensorboard --logdir=runs        # every run under runs/

Scalars: train/loss, train/bit_errors, train/learning_rate,
train/sequences_per_second, eval/bits_per_sequence, and for hard runs
train/soft_batch with train/advantage_std (REINFORCE) or train/temperature
(Gumbel); images: attention, the heat map of one fresh sequence of the
longest training size (when matplotlib is installed).

Events are written with TensorFlow's own `tf.summary.write` and the metadata
TensorBoard's scalar and image plugins read, so training needs no TensorBoard
install; viewing them does (`pip install tensorboard`).
"""

import io
import os

import tensorflow as tf

from tasks import contract
from tasks import evaluation

# Train-step logs written as they are, when the model reports them.
_TRAIN_LOGS = ("bit_errors", "soft_batch", "advantage_std", "temperature")


def _metadata(plugin):
  metadata = tf.compat.v1.SummaryMetadata()
  metadata.plugin_data.plugin_name = plugin
  return metadata.SerializeToString()


_SCALAR = _metadata("scalars")
_IMAGE = _metadata("images")


def _scalar(tag, value):
  tf.summary.write(tag, tf.constant(float(value), tf.float32), metadata=_SCALAR)


def _image(tag, png, width, height):
  """One PNG image, in the [width, height, png] string form TensorBoard reads."""
  tf.summary.write(tag, tf.constant([str(width), str(height), png]),
                   metadata=_IMAGE)


class Summaries:
  """Writes one evaluation's scalars and heat map to <logdir>/tensorboard."""

  def __init__(self, logdir, task, seed, batch_size, log=print):
    self.directory = os.path.join(logdir, "tensorboard")
    self.writer = tf.summary.create_file_writer(self.directory)
    # The heat map shows a sequence of the largest training size.
    self.task = (task.variant(task.max_size)
                 if contract.generalises(task) and hasattr(task, "max_size")
                 else task)
    self.seed = seed
    self.batch_size = batch_size
    self.log = log
    self._last = None  # (step, seconds) of the previous evaluation
    self._images = True

  def write(self, model, record, logs):
    """Writes the evaluation `record` (a history entry) and train `logs`."""
    step = record["step"]
    with self.writer.as_default(step=step):
      _scalar("eval/bits_per_sequence", record["bits_per_sequence"])
      _scalar("train/loss", record["loss"])
      _scalar("train/learning_rate", record["learning_rate"])
      for key in _TRAIN_LOGS:
        if key in logs:
          _scalar(f"train/{key}", logs[key])
      if self._last is not None and record["seconds"] > self._last[1]:
        sequences = (step - self._last[0]) * self.batch_size
        _scalar("train/sequences_per_second",
                sequences / (record["seconds"] - self._last[1]))
      if self._images:
        png = self._heatmap(model, step)
        if png is not None:
          height, width = tf.image.decode_png(png).shape[:2]
          _image("attention", png, width, height)
    self.writer.flush()
    self._last = (step, record["seconds"])

  def _heatmap(self, model, step):
    """The heat map as PNG bytes, or None without matplotlib."""
    buffer = io.BytesIO()
    try:
      evaluation.write_heatmap(model, self.task, self.seed, buffer,
                               f"{self.task.name}, step {step}")
    except ImportError as e:
      self.log(f"no attention images in TensorBoard: {e}")
      self._images = False
      return None
    return buffer.getvalue()
