"""NTM: a keras.Model that runs an NTMCell over whole sequences."""

import keras
import tensorflow as tf

from memtk import cell as cell_lib
from memtk import controllers as controllers_lib
from memtk import metrics as metrics_lib
from memtk.unroll import unroll


@keras.saving.register_keras_serializable(package="memtk")
class NTM(keras.Model):
  """A Neural Turing Machine over sequences: inputs [B, T, I] -> logits [B, T, O].

  Takes the arguments of `memtk.cell.NTMCell` (controller, output_size,
  memory_size=128, word_size=20, num_read_heads=1, num_write_heads=1,
  addressing='soft', shift_range=1, memory_init='constant', clip_value=20,
  controller_units=100).

  `compile(optimizer=...)` alone gives a trainable model: the loss defaults to
  sigmoid cross-entropy on the logits averaged over the steps where
  `sample_weight` (the answer mask [B, T]) is 1, the weighted metric to bit
  errors per sequence (masked by the same sample weights), and the train step is XLA-compiled (`jit_compile=True`).
  """

  def __init__(self, controller, output_size, memory_size=128, word_size=20,
               num_read_heads=1, num_write_heads=1, addressing="soft",
               shift_range=1, memory_init="constant", clip_value=20.0,
               controller_units=controllers_lib.DEFAULT_UNITS, **kwargs):
    super().__init__(**kwargs)
    self.cell = cell_lib.NTMCell(
        controller, output_size, memory_size=memory_size, word_size=word_size,
        num_read_heads=num_read_heads, num_write_heads=num_write_heads,
        addressing=addressing, shift_range=shift_range,
        memory_init=memory_init, clip_value=clip_value,
        controller_units=controller_units, name="ntm_cell")

  def build(self, input_shape):
    self._check_input_shape(input_shape)
    self.cell.build((None, input_shape[-1]))
    self.built = True

  def _check_input_shape(self, shape):
    shape = tuple(shape)
    if len(shape) != 3:
      raise ValueError(f"NTM inputs must be [batch, time, features], got "
                       f"shape {shape}")
    if shape[1] is not None and shape[1] < 1:
      raise ValueError(f"NTM inputs need at least one time step, got shape "
                       f"{shape}")
    expected = self.cell.input_size
    if expected is not None and shape[-1] != expected:
      raise ValueError(f"NTM inputs must have {expected} features (as built), "
                       f"got shape {shape}")

  def _run(self, inputs, collect=None):
    inputs = tf.convert_to_tensor(inputs, self.compute_dtype)
    self._check_input_shape(inputs.shape)
    initial = self.cell.initial_ntm_state(tf.shape(inputs)[0])
    return unroll(self.cell.step, inputs, initial, collect=collect)

  def call(self, inputs, training=None):
    del training
    logits, _, _ = self._run(inputs)
    return logits

  def trace(self, inputs):
    """Runs the model and records its attention.

    Args:
      inputs: [B, T, I].

    Returns:
      dict with 'logits' [B, T, O], 'read_weights' [B, T, H_r, N] and
      'write_weights' [B, T, H_w, N].
    """
    if not self.built:
      self.build(tf.TensorShape(inputs.shape))
    num_read = self.cell.num_read_heads
    logits, _, weights = self._run(inputs, collect=lambda s: s.weights)
    return {"logits": logits, "read_weights": weights[:, :, :num_read],
            "write_weights": weights[:, :, num_read:]}

  def compile(self, optimizer="adam", loss=None, weighted_metrics=None,
              jit_compile=True, **kwargs):
    if loss is None:
      loss = metrics_lib.masked_sigmoid_cross_entropy()
    if weighted_metrics is None:
      weighted_metrics = [metrics_lib.BitErrorsPerSequence()]
    super().compile(optimizer=optimizer, loss=loss,
                    weighted_metrics=weighted_metrics, jit_compile=jit_compile,
                    **kwargs)

  def compile_from_config(self, config):
    """Recompiles a loaded model with its saved compile arguments."""
    self.compile(**keras.saving.deserialize_keras_object(config))
    if self.built:
      self.optimizer.build(self.trainable_variables)

  def get_config(self):
    config = self.cell.get_config()
    for key in ("trainable", "dtype"):
      config.pop(key, None)
    config["name"] = self.name
    return config

  @classmethod
  def from_config(cls, config):
    return cls(**cell_lib.with_controller(config))
