"""From the controller's output to named head parameters (NTM paper, 3.3).

All heads share one linear projection of the controller output (one matmul per
step, whatever the number of heads). `parse` splits that interface vector and
applies the NTM activations; it is the only place that knows the layout.

Heads are ordered read heads first, then write heads. The addressing fields
(key ... gamma) cover all H = H_read + H_write heads; erase and add cover the
write heads only.
"""

from typing import NamedTuple

import keras
import tensorflow as tf


# Initial interface biases: all 0, the plain NTM's start (HeadInterface's
# docstring says what other starts did).
DEFAULT_GATE_BIAS = 0.0
DEFAULT_GAMMA_BIAS = 0.0
DEFAULT_SHIFT_BIAS = 0.0


class HeadParams(NamedTuple):
  """Per-step head parameters; B batch, H heads, H_w write heads, W word size."""
  key: tf.Tensor  # [B, H, W] k_t = tanh(.)
  strength: tf.Tensor  # [B, H] beta_t = softplus(.) >= 0
  gate: tf.Tensor  # [B, H] g_t = sigmoid(.) in (0, 1)
  shift: tf.Tensor  # [B, H, S] s_t = softmax over S = 2 * shift_range + 1
  gamma: tf.Tensor  # [B, H] gamma_t = 1 + softplus(.) >= 1
  erase: tf.Tensor  # [B, H_w, W] e_t = sigmoid(.) in (0, 1)
  add: tf.Tensor  # [B, H_w, W] a_t = tanh(.)


def interface_size(num_read_heads, num_write_heads, word_size, num_shifts):
  """Length of the interface vector that `parse` splits."""
  num_heads = num_read_heads + num_write_heads
  return num_heads * (word_size + 3 + num_shifts) + 2 * num_write_heads * word_size


def _sizes(num_read_heads, num_write_heads, word_size, num_shifts):
  """Lengths of the interface's parts: key, strength, gate, shift, gamma,
  erase, add."""
  num_heads = num_read_heads + num_write_heads
  return [num_heads * word_size, num_heads, num_heads, num_heads * num_shifts,
          num_heads, num_write_heads * word_size, num_write_heads * word_size]


def initial_bias(num_read_heads, num_write_heads, word_size, num_shifts,
                 gate_bias=0.0, gamma_bias=0.0, shift_bias=0.0):
  """[interface_size(...)] the projection's initial bias: gate_bias on every
  head's gate, gamma_bias on every head's sharpening, shift_bias on every
  head's logit of offset +1 (the next cell), 0 elsewhere."""
  sizes = _sizes(num_read_heads, num_write_heads, word_size, num_shifts)
  values = [0.0] * sizes[0] + [0.0] * sizes[1] + [float(gate_bias)] * sizes[2]
  if shift_bias and num_shifts < 3:
    raise ValueError("shift_bias needs a shift offset of +1 (shift_range "
                     f">= 1), got shift_bias={shift_bias!r} with "
                     f"{num_shifts} shift offset")
  # Offsets -S//2 .. S//2 in order (memtk.addressing.shift): +1 is S//2 + 1.
  forward = [0.0] * num_shifts
  if shift_bias:
    forward[num_shifts // 2 + 1] = float(shift_bias)
  values += forward * (num_read_heads + num_write_heads)
  values += [float(gamma_bias)] * sizes[4]
  return values + [0.0] * (sizes[5] + sizes[6])


def parse(interface, num_read_heads, num_write_heads, word_size, num_shifts):
  """Splits an interface vector into activated head parameters.

  Args:
    interface: [B, interface_size(...)] raw (pre-activation) values.
    num_read_heads: H_r.
    num_write_heads: H_w.
    word_size: W, the width of a memory row.
    num_shifts: S = 2 * shift_range + 1.

  Returns:
    HeadParams with the NTM activations applied.
  """
  num_heads = num_read_heads + num_write_heads
  sizes = _sizes(num_read_heads, num_write_heads, word_size, num_shifts)
  key, strength, gate, shift, gamma, erase, add = tf.split(
      interface, sizes, axis=-1)
  return HeadParams(
      key=tf.tanh(tf.reshape(key, [-1, num_heads, word_size])),
      strength=tf.nn.softplus(strength),
      gate=tf.sigmoid(gate),
      shift=tf.nn.softmax(tf.reshape(shift, [-1, num_heads, num_shifts])),
      gamma=1.0 + tf.nn.softplus(gamma),
      erase=tf.sigmoid(tf.reshape(erase, [-1, num_write_heads, word_size])),
      add=tf.tanh(tf.reshape(add, [-1, num_write_heads, word_size])))


@keras.saving.register_keras_serializable(package="memtk")
class HeadInterface(keras.layers.Layer):
  """Projects the controller output to HeadParams.

  The raw interface is clipped to [-clip_value, clip_value] before the
  activations (Collier & Beel 2018), which keeps softplus strengths and
  sharpening exponents bounded early in training.

  The projection's bias starts at `gate_bias` on every gate, `gamma_bias`
  on every sharpening exponent and `shift_bias` on every head's logit of
  offset +1 (0 elsewhere). All 0 is the plain NTM's start: g_0 = 0.5,
  gamma_0 = 1 + softplus(0) = 1.69 and the shift uniform over the S offsets,
  so a head's expected move is 0 and which way the heads will walk is left
  to the first gradients. With shift_bias = b > 0 a head starts by moving to
  the next cell with weight e^b / (e^b + S - 1) (b = 1 and S = 3: 0.58).
  gate_bias = -2 and gamma_bias = 2 start a head from its previous weighting
  (g_0 = 0.12) and sharpened (gamma_0 = 3.1): a head that starts from content
  over the constant initial memory (every row alike) gets a near uniform
  weighting, and a uniform weighting stays uniform with no gradient out of
  it (memtk.diagnostics). All three together (-2, 2, 1) made a plain `fit`
  of copy learn in five development seeds but did worse than all 0 on the
  report seeds (docs/convergence.md, "Heads that start as pointers").
  """

  def __init__(self, num_read_heads, num_write_heads, word_size, num_shifts,
               clip_value=20.0, gate_bias=DEFAULT_GATE_BIAS,
               gamma_bias=DEFAULT_GAMMA_BIAS, shift_bias=DEFAULT_SHIFT_BIAS,
               **kwargs):
    super().__init__(**kwargs)
    self.num_read_heads = num_read_heads
    self.num_write_heads = num_write_heads
    self.word_size = word_size
    self.num_shifts = num_shifts
    self.clip_value = clip_value
    self.gate_bias = float(gate_bias)
    self.gamma_bias = float(gamma_bias)
    self.shift_bias = float(shift_bias)
    self.projection = keras.layers.Dense(
        interface_size(num_read_heads, num_write_heads, word_size, num_shifts),
        bias_initializer=keras.initializers.Constant(initial_bias(
            num_read_heads, num_write_heads, word_size, num_shifts,
            self.gate_bias, self.gamma_bias, self.shift_bias)),
        name="projection")

  def build(self, input_shape):
    self.projection.build(input_shape)

  def call(self, controller_output):
    raw = tf.clip_by_value(self.projection(controller_output),
                           -self.clip_value, self.clip_value)
    return parse(raw, self.num_read_heads, self.num_write_heads, self.word_size,
                 self.num_shifts)

  def get_config(self):
    config = super().get_config()
    config.update(num_read_heads=self.num_read_heads,
                  num_write_heads=self.num_write_heads,
                  word_size=self.word_size, num_shifts=self.num_shifts,
                  clip_value=self.clip_value, gate_bias=self.gate_bias,
                  gamma_bias=self.gamma_bias, shift_bias=self.shift_bias)
    return config
