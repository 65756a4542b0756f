"""NTMCell: controller -> heads -> addressing -> memory -> read vectors.

The cell owns the variables (controller, head interface, output layer and the
learned initial state) and calls the pure step of `access` (which composes
`addressing` and `memory`); it never reaches into their internals. It is a
Keras RNN cell, so `keras.layers.RNN(NTMCell(...))` works, and it also exposes
`step` on a structured `NTMState` for `memtk.unroll`.

One step, for H_r read heads and H_w write heads (H = H_r + H_w):

    h_t, c_t = controller([x_t, r_{t-1}], c_{t-1})
    params   = heads(h_t)                                  (HeadParams)
    w_t      = address(M_{t-1}, w_{t-1}, params)           [B, H, N]
    M_t      = write(M_{t-1}, w_t[write heads], e_t, a_t)
    r_t      = read(M_t, w_t[read heads])                  [B, H_r, W]
    y_t      = clip(V [h_t, r_t] + b, +-clip_value)        logits

All heads address M_{t-1} in one pass (one cosine over memory per step); the
read sees the memory after this step's write, so a value can be read back the
step it is written.

Hard addressing (`addressing="hard"`) computes the same distribution w_t, with
w_{t-1} the one-hot of the cells chosen at t - 1, then each head takes one
cell i_t ~ w_t (or argmax w_t) and reads and writes that row alone:

    M_t = write_rows(M_{t-1}, i_t[write heads], e_t, a_t)
    r_t = read_rows(M_t, i_t[read heads])

How the cell is chosen is the step's `choice`: 'greedy' (argmax, the default
for a hard cell), 'sample' (i ~ w from uniform noise; the REINFORCE path),
'gumbel' (straight-through Gumbel-softmax from Gumbel noise at a temperature)
or 'soft' (a hard cell run softly, for the soft-to-hard curriculum).

Sparse addressing (`addressing="sparse"`, Sparse Access Memory) runs the same
chain on supports of at most `sparse_k` cells per head (memtk.addressing's
sparse functions): w_t is non-zero on K cells, with ordinary gradients on
their weights; reads and writes touch those K rows. With sparse_k >= N it is
soft addressing.

Without content addressing (`content_addressing=False`) a head never looks at
the memory to find a cell: it starts at cell 0 and only moves by shifts,
w_t = sharpen(shift(w_{t-1})). A hard or sparse head then does O(S + W) (or
O(K S + K W)) float work per step, not O(N W); `memtk.sparse_unroll` runs
hard and sparse models at that cost.

What differs between the modes lives in one object per mode (memtk.modes),
`cell.mode`; the cell asks it rather than branching on the mode.
"""

import math
from typing import Any, NamedTuple

import keras
import tensorflow as tf

from memtk import access
from memtk import addressing as addressing_lib
from memtk import content_index as content_index_lib
from memtk import controllers as controllers_lib
from memtk import estimators
from memtk import heads as heads_lib
from memtk import modes

ADDRESSING_MODES = ("soft", "hard", "sparse")
CHOICES = ("soft", "greedy", "sample", "gumbel", "sparse")
DEFAULT_SPARSE_K = 8  # Rae et al. 2016: K = 4 or 8 made no difference
MEMORY_INITS = ("constant", "learned", "random", "zeros")
_CONSTANT_MEMORY = 1e-6  # Collier & Beel 2018: trained ~2x faster than others
_RANDOM_MEMORY_STDDEV = 0.5
_INITIAL_FOCUS = 0.99  # learned initial weighting starts 99% on cell 0
# w_0 (soft, hard) covers at most this many cells, so that nothing learned
# depends on N and a model trained at N = 128 runs with a larger memory.
DEFAULT_INITIAL_WINDOW = 128


class NTMState(NamedTuple):
  """The recurrent state of an NTMCell."""
  controller: Any  # the controller's own (nested) state
  memory: tf.Tensor  # [B, N, W] M_t
  read: tf.Tensor  # [B, H_r, W] r_t
  weights: tf.Tensor  # [B, H, N] w_t (hard: one-hot of i_t), read heads first


class StepOutput(NamedTuple):
  """What one step reports besides its state (all but logits for training)."""
  logits: tf.Tensor  # [B, O] y_t
  log_prob: tf.Tensor  # [B, H] log w_t(i_t) of the choices (0 when soft)
  entropy: tf.Tensor  # [B, H] entropy of each head's distribution w_t
  baseline: tf.Tensor  # [B] learned baseline b_t (0 for a soft cell)
  # [B, H] the index of the cell each hard head chose (else 0), in the
  # step's float dtype: every output of a step is a float tensor (an int32
  # output would make TensorFlow's oneDNN graph pass complain on CPUs
  # without AVX-512 outside XLA).
  choices: tf.Tensor


def _check_positive_int(name, value):
  if isinstance(value, bool) or not isinstance(value, int) or value < 1:
    raise ValueError(f"{name} must be a positive int, got {value!r}")


def _check_empty_rows_as(value):
  if value is None:
    return
  if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
      0 <= value < float("inf")):
    raise ValueError(f"empty_rows_as must be None or a number >= 0, got "
                     f"{value!r}")


def _check_content_index(cell):
  """A ValueError for a content_index the cell's other settings rule out."""
  if cell.content_index is None:
    return
  for name, value, allowed in [
      ("addressing", cell.addressing, ("sparse", "hard")),
      ("content_addressing", cell.content_addressing, (True,)),
      ("memory_init", cell.memory_init, ("constant", "zeros")),
      ("empty_rows_as", cell.empty_rows_as, (None,))]:
    if value not in allowed:
      raise ValueError(f"content_index needs {name} in {allowed}, got "
                       f"{name}={value!r}")
  if cell.addressing == "hard" and cell.content_index.kind != "written":
    raise ValueError(f"hard heads take content_index 'written' only (their "
                     f"distribution needs every written row), got "
                     f"{cell.content_index.kind!r}")


@keras.saving.register_keras_serializable(package="memtk")
class NTMCell(keras.layers.Layer):
  """A Neural Turing Machine step as a Keras RNN cell.

  Args:
    controller: a Keras RNN cell (keras.layers.LSTMCell, GRUCell, a memtk
      controller or your own layer; see memtk.controllers for the contract),
      or one of the names 'lstm', 'gru', 'feedforward'.
    output_size: O, the size of the logits y_t.
    memory_size: N in the NTM paper, the number of memory cells.
    word_size: W (M in the NTM paper), the width of a memory cell.
    num_read_heads: H_r.
    num_write_heads: H_w.
    addressing: 'soft' (every head attends to every cell), 'hard' (each
      head reads and writes one chosen cell) or 'sparse' (each head attends
      to at most `sparse_k` cells); see the module docstring.
    shift_range: largest shift offset; S = 2 * shift_range + 1 <= N.
    memory_init: 'constant' (every cell 1e-6), 'learned' (a trained [N, W]
      matrix), 'random' (N(0, 0.5^2) per sequence) or 'zeros' (the hostile
      case for cosine addressing; finite by the eps in the norms).
    clip_value: interface and output logits are clipped to +-clip_value.
    controller_units: units of a controller given by name.
    content_addressing: False gives heads without content addressing (the
      key, strength and gate outputs of the interface are then unused).
    gate_bias, gamma_bias, shift_bias: initial interface biases of every
      head's gate, sharpening exponent and shift logit of offset +1 (see
      memtk.heads.HeadInterface; all 0 give the plain NTM's start, g_0 = 0.5,
      gamma_0 = 1.69 and a uniform shift).
    sparse_k: K, the cells a sparse head attends to (an int >= 1; unused by
      the other modes).
    initial_window: the cells 0 .. initial_window - 1 the initial weighting
      w_0 of a soft or hard head may cover (None: min(N, 128)); every other
      cell starts at 0. With it fixed, the weights do not depend on N: a
      model trained with one memory size runs with a larger one.
    empty_rows_as: None gives the NTM paper's content weights, where each
      unused row scores a cosine of 0 and N - (rows written) of them share a
      lookup, so the lookup changes with N. A number S >= 0 weighs each row
      by how much it holds, f(i) = |M(i)|^2 / (|M(i)|^2 + 0.01), and the
      rows that hold nothing (never written, in a 'constant' or 'zeros'
      memory) together as S rows of cosine 0, at any N (memtk.addressing).
      Sparse heads take 0 only (a support does not see the other rows).
    content_index: None (a content lookup scans every row), or for sparse
      heads 'written' (score only the rows written so far: exact) or
      'hash' (hashed candidates: approximate), or a dict with 'kind' and
      the index's settings: the row-access loop looks keys up in an index
      kept in the step's state, at a cost that does not grow with N
      (memtk.content_index; needs a 'constant' or 'zeros' memory and
      empty_rows_as=None). Hard heads take 'written': their distribution
      over all N cells, computed exactly from the rows written
      (memtk.hard_index).
  """

  def __init__(self, controller, output_size, memory_size=128, word_size=20,
               num_read_heads=1, num_write_heads=1, addressing="soft",
               shift_range=1, memory_init="constant", clip_value=20.0,
               controller_units=controllers_lib.DEFAULT_UNITS,
               content_addressing=True,
               gate_bias=heads_lib.DEFAULT_GATE_BIAS,
               gamma_bias=heads_lib.DEFAULT_GAMMA_BIAS,
               shift_bias=heads_lib.DEFAULT_SHIFT_BIAS,
               sparse_k=DEFAULT_SPARSE_K, initial_window=None,
               empty_rows_as=None, content_index=None, **kwargs):
    super().__init__(**kwargs)
    if initial_window is None:
      initial_window = min(memory_size, DEFAULT_INITIAL_WINDOW)
    for name, value in [("output_size", output_size),
                        ("memory_size", memory_size),
                        ("word_size", word_size),
                        ("num_read_heads", num_read_heads),
                        ("num_write_heads", num_write_heads),
                        ("controller_units", controller_units),
                        ("sparse_k", sparse_k),
                        ("initial_window", initial_window)]:
      _check_positive_int(name, value)
    if initial_window > memory_size:
      raise ValueError(f"initial_window must be <= memory_size={memory_size}, "
                       f"got {initial_window}")
    if isinstance(shift_range, bool) or not isinstance(shift_range, int) or (
        shift_range < 0):
      raise ValueError(f"shift_range must be an int >= 0, got {shift_range!r}")
    if 2 * shift_range + 1 > memory_size:
      raise ValueError(
          f"shift_range={shift_range} gives {2 * shift_range + 1} shift "
          f"offsets, wider than memory_size={memory_size}")
    if addressing not in ADDRESSING_MODES:
      raise ValueError(
          f"addressing must be one of {ADDRESSING_MODES}, got {addressing!r}")
    if memory_init not in MEMORY_INITS:
      raise ValueError(
          f"memory_init must be one of {MEMORY_INITS}, got {memory_init!r}")
    if not clip_value > 0:
      raise ValueError(f"clip_value must be > 0, got {clip_value!r}")
    if not isinstance(content_addressing, bool):
      raise ValueError(f"content_addressing must be True or False, got "
                       f"{content_addressing!r}")
    if isinstance(controller, str):
      controller = controllers_lib.make_controller(controller, controller_units)
    controllers_lib.check_controller(controller)

    self.controller = controller
    self.output_size = output_size
    self.memory_size = memory_size
    self.word_size = word_size
    self.num_read_heads = num_read_heads
    self.num_write_heads = num_write_heads
    self.num_heads = num_read_heads + num_write_heads
    self.addressing = addressing
    self.sparse_k = sparse_k
    self.initial_window = initial_window
    _check_empty_rows_as(empty_rows_as)
    self.shift_range = shift_range
    self.memory_init = memory_init
    self.clip_value = float(clip_value)
    self.controller_units = controller_units
    self.content_addressing = content_addressing
    self.empty_rows_as = (None if empty_rows_as is None
                          else float(empty_rows_as))
    self.content_index = content_index_lib.parse(content_index)
    _check_content_index(self)
    self.mode = modes.make_mode(addressing, sparse_k, self.content_index)
    self.interface = heads_lib.HeadInterface(
        num_read_heads, num_write_heads, word_size, 2 * shift_range + 1,
        clip_value=self.clip_value, gate_bias=gate_bias,
        gamma_bias=gamma_bias, shift_bias=shift_bias, name="interface")
    self.output_layer = keras.layers.Dense(output_size, name="output")
    # Hard cells predict the return from the controller output (held
    # constant): the input-dependent baseline of the REINFORCE estimator.
    self.baseline_layer = (keras.layers.Dense(1, name="baseline")
                           if self.mode.estimated else None)
    # Seeded from Keras's global seed (keras.utils.set_random_seed).
    self._seed = keras.random.SeedGenerator() if memory_init == "random" else None
    self.input_size = None

  # --- state layout -------------------------------------------------------

  @property
  def _state_template(self):
    return NTMState(
        controller=self.controller.state_size,
        memory=(self.memory_size, self.word_size),
        read=(self.num_read_heads, self.word_size),
        weights=(self.num_heads, self.memory_size))

  @property
  def state_size(self):
    """Flat list of state shapes (without batch), as keras.layers.RNN wants."""
    template = self._state_template
    return (tf.nest.flatten(template.controller)
            + [list(template.memory), list(template.read),
               list(template.weights)])

  def pack_state(self, flat_states):
    """Turns the flat list keras.layers.RNN carries back into an NTMState."""
    flat = tf.nest.flatten(flat_states)
    num_controller = len(tf.nest.flatten(self.controller.state_size))
    controller_state = tf.nest.pack_sequence_as(
        self.controller.state_size, flat[:num_controller])
    return NTMState(controller_state, *flat[num_controller:])

  @staticmethod
  def flatten_state(state):
    return tf.nest.flatten(state.controller) + [state.memory, state.read,
                                                 state.weights]

  # --- variables -----------------------------------------------------------

  def build(self, input_shape):
    input_size = input_shape[-1]
    if input_size is None:
      raise ValueError(f"the input feature size must be known, got shape "
                       f"{tuple(input_shape)}")
    self.input_size = int(input_size)
    controller_input = (None, self.input_size
                        + self.num_read_heads * self.word_size)
    if not self.controller.built:
      self.controller.build(controller_input)
    # One call on zeros checks the controller's return structure (and gives
    # its output size when it declares none).
    probe = controllers_lib.check_call(
        self.controller, tf.zeros((1, controller_input[1])),
        controllers_lib.initial_state(self.controller, 1))
    controller_output = getattr(self.controller, "output_size", None)
    if not isinstance(controller_output, int):
      controller_output = int(probe.shape[-1])
    self.interface.build((None, controller_output))
    self.output_layer.build(
        (None, controller_output + self.num_read_heads * self.word_size))
    if self.baseline_layer is not None:
      self.baseline_layer.build((None, controller_output))
    # w_0 covers cells 0 .. n - 1 (the initial window, or K for sparse);
    # learned with content, else cell 0.
    n = self.mode.initial_cells(self)
    if self.content_addressing:  # heads without content start at cell 0
      peak = (math.log(_INITIAL_FOCUS * (n - 1) / (1 - _INITIAL_FOCUS))
              if n > 1 else 0.0)
      self.initial_weight_logits = self.add_weight(
          shape=(self.num_heads, n), name="initial_weight_logits",
          initializer=keras.initializers.Constant(
              [[peak] + [0.0] * (n - 1)] * self.num_heads))
    self.initial_read = self.add_weight(
        shape=(self.num_read_heads, self.word_size), name="initial_read",
        initializer="zeros")
    if self.memory_init == "learned":
      self.initial_memory = self.add_weight(
          shape=(self.memory_size, self.word_size), name="initial_memory",
          initializer=keras.initializers.RandomNormal(
              stddev=_RANDOM_MEMORY_STDDEV))
    self.built = True

  # --- initial state -------------------------------------------------------

  def initial_ntm_state(self, batch_size):
    """The NTMState before the first step, for a batch of `batch_size`."""
    shape = (batch_size, self.memory_size, self.word_size)
    if self.memory_init in ("constant", "zeros"):
      memory = tf.broadcast_to(self.constant_row(self.compute_dtype), shape)
    elif self.memory_init == "learned":
      memory = tf.broadcast_to(self.initial_memory[None], shape)
    else:
      memory = keras.random.normal(shape, stddev=_RANDOM_MEMORY_STDDEV,
                                   seed=self._seed, dtype=self.compute_dtype)
    return NTMState(
        controller=controllers_lib.initial_state(self.controller, batch_size,
                                                 self.compute_dtype),
        memory=memory,
        read=tf.broadcast_to(self.initial_read[None],
                             (batch_size, self.num_read_heads, self.word_size)),
        weights=tf.broadcast_to(self.initial_weights()[None],
                                (batch_size, self.num_heads, self.memory_size)))

  def constant_row(self, dtype):
    """[W] the value every row of a 'constant' or 'zeros' memory starts
    with."""
    value = _CONSTANT_MEMORY if self.memory_init == "constant" else 0.0
    return tf.fill([self.word_size], tf.constant(value, dtype))

  def initial_support_weights(self):
    """[H, n] w_0 on its support (cells 0 .. n - 1; n = initial_window, or
    K for sparse): learned with content addressing, else the one-hot of
    cell 0."""
    if self.content_addressing:
      return tf.nn.softmax(self.initial_weight_logits)
    n = self.mode.initial_cells(self)
    return tf.one_hot(tf.zeros([self.num_heads], tf.int32), n,
                      dtype=self.compute_dtype)

  def initial_weights(self):
    """[H, N] w_0 (see initial_support_weights)."""
    weights = self.initial_support_weights()
    padding = self.memory_size - weights.shape[-1]
    return tf.pad(weights, [[0, 0], [0, padding]]) if padding else weights

  def get_initial_state(self, batch_size=None):
    return self.flatten_state(self.initial_ntm_state(batch_size))

  # --- the step ------------------------------------------------------------

  @property
  def default_choice(self):
    """'soft' for a soft cell, 'greedy' for a hard one, 'sparse' for sparse."""
    return self.mode.default_choice

  def step(self, inputs, state):
    """One NTM step on structured state, with the cell's default choice.

    Args:
      inputs: [B, I] x_t.
      state: NTMState at t - 1.

    Returns:
      (logits [B, O] y_t, NTMState at t).
    """
    output, state = self.choice_step(inputs, state, self.default_choice)
    return output.logits, state

  def choice_step(self, inputs, state, choice, noise=None, temperature=1.0,
                  soft=None, gumbel=estimators.GumbelForm()):
    """One NTM step with the cell choice made explicit.

    Args:
      inputs: [B, I] x_t.
      state: NTMState at t - 1.
      choice: one of the mode's choices: 'soft' (soft cell); 'greedy',
        'sample', 'gumbel' or 'soft' (hard cell); 'sparse' (sparse cell).
      noise: 'sample': [B, H] U(0, 1) noise; 'gumbel': [B, H, N] Gumbel(0, 1)
        noise; otherwise unused.
      temperature: tau of the 'gumbel' relaxation (a scalar).
      soft: optional scalar bool tensor for 'sample' and 'gumbel': where true,
        the step runs softly instead (the soft-to-hard curriculum's soft
        batches; a tensor, so one compiled step serves both). Both cases then
        go through dense one-hot access, at soft access's cost.
      gumbel: 'gumbel' only: an estimators.GumbelForm, whose `writes` is
        'chosen' (a write head's gradient reaches its relaxed sample only at
        the cell it wrote) or 'relaxed' (at every cell), and whose `forward`
        is 'greedy' (each head uses its most likely cell) or 'sample' (the
        Gumbel-max sample; see memtk.estimators.gumbel_straight_through).

    Returns:
      (StepOutput, NTMState at t).
    """
    if choice not in CHOICES:
      raise ValueError(f"choice must be one of {CHOICES}, got {choice!r}")
    if choice not in self.mode.choices:
      raise ValueError(f"a {self.addressing} cell has no choice {choice!r}; "
                       f"its choices are {self.mode.choices}")
    if choice in ("sample", "gumbel") and noise is None:
      raise ValueError(f"choice {choice!r} needs noise")
    gumbel = estimators.gumbel_form(*gumbel)
    controller_output, controller_state, p = self.control(inputs, state)
    weights, memory, read, log_prob, entropy = self.mode.dense_step(
        self, state, p, choice, noise, temperature, soft, gumbel)
    logits, baseline = self.emit(controller_output, read)
    output = StepOutput(logits, log_prob, entropy, baseline,
                        self.choices(weights))
    return output, NTMState(controller_state, memory, read, weights)

  def choices(self, weights):
    """[B, H] (weights' dtype): a hard head's chosen cell (the one-hot
    weights' 1; on a soft batch the argmax), 0 for heads that choose no
    single cell."""
    if self.mode.estimated:
      return tf.cast(tf.argmax(weights, axis=-1), weights.dtype)
    return tf.zeros(tf.shape(weights)[:2], weights.dtype)

  def choices_of_rows(self, indices, dtype):
    """choices() in the row loop, from the rows [B, H, K] each head touched."""
    if self.mode.estimated:  # K = 1
      return tf.cast(indices[:, :, 0], dtype)
    return tf.zeros(tf.shape(indices)[:2], dtype)

  # The parts of a step, shared with memtk.sparse_unroll.

  def control(self, inputs, state):
    """Controller and head interface: ([B, C] h_t, controller state, HeadParams).

    Args:
      inputs: [B, I] x_t.
      state: the NTMState at t - 1 (its controller and read fields are used).
    """
    batch = tf.shape(inputs)[0]
    read_flat = tf.reshape(state.read,
                           [batch, self.num_read_heads * self.word_size])
    controller_output, controller_state = self.controller(
        tf.concat([inputs, read_flat], axis=-1), state.controller)
    return controller_output, controller_state, self.interface(
        controller_output)

  def distribution(self, memory, previous, p, memory_norms=None):
    """[B, H, N] w_t, the addressing distribution of every head.

    Args:
      memory: [B, N, W] M_{t-1} (unused without content addressing).
      previous: [B, H, N] w_{t-1}.
      p: HeadParams of the step.
      memory_norms: optional [B, N] addressing.norms(memory), if kept.
    """
    if self.content_addressing:  # addressing.address, with a fused gradient
      return access.address(memory, previous, p.key, p.strength, p.gate,
                            p.shift, p.gamma, memory_norms,
                            self.empty_rows_as)
    return addressing_lib.address_by_shift(previous, p.shift, p.gamma)

  def emit(self, controller_output, read):
    """(logits [B, O] y_t, baseline [B] b_t) from h_t and r_t [B, H_r, W]."""
    batch = tf.shape(controller_output)[0]
    logits = self.output_layer(tf.concat(
        [controller_output,
         tf.reshape(read, [batch, self.num_read_heads * self.word_size])],
        axis=-1))
    logits = tf.clip_by_value(logits, -self.clip_value, self.clip_value)
    if self.baseline_layer is not None:
      baseline = self.baseline_layer(
          tf.stop_gradient(controller_output))[:, 0]
    else:
      baseline = tf.zeros([batch], logits.dtype)
    return logits, baseline

  def call(self, inputs, states, training=None):
    del training
    if len(inputs.shape) != 2:
      raise ValueError(f"NTMCell inputs must be [batch, features], got shape "
                       f"{tuple(inputs.shape)}")
    logits, state = self.step(inputs, self.pack_state(states))
    return logits, self.flatten_state(state)

  def get_config(self):
    config = super().get_config()
    config.update(
        controller=keras.saving.serialize_keras_object(self.controller),
        output_size=self.output_size, memory_size=self.memory_size,
        word_size=self.word_size, num_read_heads=self.num_read_heads,
        num_write_heads=self.num_write_heads, addressing=self.addressing,
        shift_range=self.shift_range, memory_init=self.memory_init,
        clip_value=self.clip_value, controller_units=self.controller_units,
        content_addressing=self.content_addressing,
        gate_bias=self.interface.gate_bias,
        gamma_bias=self.interface.gamma_bias,
        shift_bias=self.interface.shift_bias, sparse_k=self.sparse_k,
        initial_window=self.initial_window,
        empty_rows_as=self.empty_rows_as,
        content_index=(None if self.content_index is None
                       else self.content_index.config()))
    return config

  @classmethod
  def from_config(cls, config):
    return cls(**with_controller(config))


def with_controller(config):
  """A saved config with its controller rebuilt from its serialised form."""
  config = dict(config)
  config["controller"] = keras.saving.deserialize_keras_object(
      config["controller"])
  return config
