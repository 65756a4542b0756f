"""What a hard model's train step adds to the task loss: one object per
gradient estimator, asked by memtk.model.NTM for its choices and loss terms.

Per batch, with task loss L (the compiled loss) and optimizer step n:

  * Reinforce (estimator="reinforce"): the choices i_t ~ w_t are sampled.
    With per-step rewards r_t = -(cross-entropy of step t, summed over bits,
    masked), the return R_t = sum_{t' >= t} r_t' (a choice can only affect
    later outputs) is centred and scaled by running statistics,
    R^_t = (R_t - mu) / sigma, and the learned baseline b_t (a linear
    function of the controller output, held constant) regresses on it. The
    loss is

        L - mean_B (1/T) sum_{t,h} log w_t(i_t,h) stop(R^_t - b_t)
          + mean_{B,T} (R^_t - b_t)^2 - beta_n mean_{B,T} sum_h H(w_t,h)

    (NVIL's centring, scaling and input-dependent baseline; H is entropy).
    With `reinforce_samples` = k > 1 every sequence of the batch runs k
    times with independent choices, and each run's return is first centred
    on the mean return of the other k - 1 runs of its sequence (VIMCO's
    leave-one-out baseline: it removes what the sequence itself makes easy
    or hard); a step then costs k times the runs. With `read_discount`
    gamma < 1 the read heads take their own signal instead: the discounted
    return R^g_t = sum_{t' >= t} gamma^(t' - t) r_t' (a read's choice acts
    on the output of its own step first), minus the mean of the other
    sequences' R^g_t at the same step, divided by its root mean square;
    the write heads, whose choices act many steps later, keep R^_t - b_t.
    With `read_reward` c > 0 a read head's signal at step t gains
    c (h_t - mean of the other sequences' h_t) (shaping for hard training
    from scratch, estimators.read_credit). With `read_reward_cells`='answer'
    (the default) h_t counts the answer steps from t on whose read chose
    the cell holding the answer: the cell written when the target vector
    was the input (estimators.reads_of_answer_cells; the moves that bring a
    head there share the credit). With 'written', h_t is 1 at an answer
    step that read any cell written before the answers, whatever the order
    (estimators.reads_of_written_cells). With `read_reward_heads`='all'
    (the default) the write heads' signal at step t gains the same terms
    summed over the read heads: where a head writes decides whether a
    later read can return the answer ('read': the read heads' only).
  * StraightThroughGumbel (estimator="gumbel"): one-hot forward and the
    softmax((log w + g) / tau_n) gradient backward; the loss is
    L - beta_n * entropy as above. With `gumbel_writes`='chosen' (the
    default) a write head's gradient reaches its relaxed sample only at the
    cell it wrote; 'relaxed' lets it reach every cell, which at a one-hot
    forward means rows left nearly empty, whose cosine content scores make
    the gradient grow by orders of magnitude per step
    (benchmarks/gumbel_gradients.py measures both). With
    `gumbel_forward`='sample' (the default, Jang et al.'s estimator) the
    forward pass uses the Gumbel-max sample argmax(log w + g); 'greedy'
    uses each head's most likely cell, as a greedy evaluation does (no
    sampling noise in the forward pass; it did not stop solved copy models
    from collapsing once purely hard: docs/soft_vs_hard.md, "Gumbel after
    the fade fix").

beta_n falls linearly from `entropy_bonus` to 0 over `entropy_steps`; tau_n
falls geometrically from `temperature` to `temperature_final` over
`temperature_steps`. A batch the soft-to-hard curriculum runs soft (the
model's `soft_batch` flag) gets none of these terms: no entropy bonus (it is
exploration for sampled choices, and on soft weightings it blurs the
addressing the soft phase has to sharpen), no REINFORCE term and no update of
the return statistics (the baseline's gradient would share the global norm
that the optimizer clips, and shrink the task's gradient with it).

The maths are the pure functions of memtk.estimators; the objects hold the
settings and the order in which a train step applies them. The return
statistics are the model's weights (saved and checkpointed with it); a
Reinforce gets them from the model that builds it.
"""

import tensorflow as tf

from memtk import estimators
from memtk import sequence_model

# Estimator settings of a hard model, with their defaults.
HARD_DEFAULTS = {
    "estimator": "reinforce",
    "entropy_bonus": 1e-3,
    "entropy_steps": 2000,
    "temperature": 1.0,
    "temperature_final": 0.2,
    "temperature_steps": 3000,
    "soft_curriculum_hold": 0,
    "soft_curriculum_steps": 0,
    "stats_decay": 0.99,
    "reinforce_samples": 1,
    "gumbel_writes": "chosen",
    "gumbel_forward": "sample",
    "read_discount": 1.0,
    "read_reward": 0.0,
    "read_reward_cells": "answer",
    "read_reward_heads": "all",
}


def unless_soft(soft_batch, value, soft_value):
  """`value`, or `soft_value` where the curriculum's flag `soft_batch` (a
  scalar bool tensor, or None: no curriculum) says the batch ran soft."""
  if soft_batch is None:
    return value
  return tf.where(soft_batch, tf.cast(soft_value, value.dtype), value)


def checked_hard_settings(estimator, entropy_bonus, entropy_steps,
                          temperature, temperature_final, temperature_steps,
                          soft_curriculum_hold, soft_curriculum_steps,
                          stats_decay, reinforce_samples, gumbel_writes,
                          gumbel_forward, read_discount, read_reward,
                          read_reward_cells, read_reward_heads):
  """A hard model's estimator settings (HARD_DEFAULTS' keys), checked; a
  ValueError names the first bad one."""
  if estimator not in estimators.ESTIMATORS:
    raise ValueError(f"estimator must be one of {estimators.ESTIMATORS}, "
                     f"got {estimator!r}")
  if not entropy_bonus >= 0:
    raise ValueError(f"entropy_bonus must be >= 0, got {entropy_bonus!r}")
  for name, value in [("temperature", temperature),
                      ("temperature_final", temperature_final)]:
    if not value > 0:
      raise ValueError(f"{name} must be > 0, got {value!r}")
  for name, value in [("entropy_steps", entropy_steps),
                      ("temperature_steps", temperature_steps),
                      ("soft_curriculum_hold", soft_curriculum_hold),
                      ("soft_curriculum_steps", soft_curriculum_steps)]:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
      raise ValueError(f"{name} must be an int >= 0, got {value!r}")
  if not 0 <= stats_decay < 1:
    raise ValueError(f"stats_decay must be in [0, 1), got {stats_decay!r}")
  if (isinstance(reinforce_samples, bool)
      or not isinstance(reinforce_samples, int) or reinforce_samples < 1):
    raise ValueError(f"reinforce_samples must be an int >= 1, got "
                     f"{reinforce_samples!r}")
  estimators.gumbel_form(gumbel_writes, gumbel_forward)
  if not 0 <= read_discount <= 1:
    raise ValueError(f"read_discount must be in [0, 1], got "
                     f"{read_discount!r}")
  if not read_reward >= 0:
    raise ValueError(f"read_reward must be >= 0, got {read_reward!r}")
  if read_reward > 0 and estimator != "reinforce":
    raise ValueError(f"read_reward={read_reward} needs "
                     f"estimator='reinforce', got {estimator!r}")
  if read_reward_cells not in estimators.READ_REWARD_CELLS:
    raise ValueError(f"read_reward_cells must be one of "
                     f"{estimators.READ_REWARD_CELLS}, got "
                     f"{read_reward_cells!r}")
  if read_reward_heads not in estimators.READ_REWARD_HEADS:
    raise ValueError(f"read_reward_heads must be one of "
                     f"{estimators.READ_REWARD_HEADS}, got "
                     f"{read_reward_heads!r}")
  if reinforce_samples > 1 and estimator != "reinforce":
    raise ValueError(f"reinforce_samples={reinforce_samples} needs "
                     f"estimator='reinforce', got {estimator!r}")
  return dict(
      estimator=estimator, entropy_bonus=float(entropy_bonus),
      entropy_steps=entropy_steps, temperature=float(temperature),
      temperature_final=float(temperature_final),
      temperature_steps=temperature_steps,
      soft_curriculum_hold=soft_curriculum_hold,
      soft_curriculum_steps=soft_curriculum_steps,
      stats_decay=float(stats_decay),
      reinforce_samples=reinforce_samples, gumbel_writes=gumbel_writes,
      gumbel_forward=gumbel_forward, read_discount=float(read_discount),
      read_reward=float(read_reward), read_reward_cells=read_reward_cells,
      read_reward_heads=read_reward_heads)


class _Estimator:
  """What both estimators share: the settings, the entropy bonus, one run
  per sequence."""

  samples = 1  # runs of every sequence per batch

  def __init__(self, settings):
    self.settings = settings

  def run_options(self, step):
    """Keyword arguments of the model's run for a batch at optimizer step
    `step` (besides the choice and its noise)."""
    del step
    return {}

  def entropy_term(self, out, step, soft_batch):
    """-beta_n mean_{B,T} sum_h H(w_t,h): 0 on a soft batch."""
    bonus = estimators.linear_schedule(self.settings["entropy_bonus"], 0.0,
                                       step, self.settings["entropy_steps"])
    bonus = unless_soft(soft_batch, bonus, 0.0)  # exploration for samples
    return -bonus * tf.reduce_mean(tf.reduce_sum(out.entropy, -1))


class StraightThroughGumbel(_Estimator):
  """Straight-through Gumbel-softmax (module docstring): the gradient comes
  through the relaxed sample, so the loss gains the entropy bonus only."""

  choice = "gumbel"

  def temperature(self, step):
    """tau_n at optimizer step `step`."""
    return estimators.geometric_schedule(
        self.settings["temperature"], self.settings["temperature_final"],
        step, self.settings["temperature_steps"])

  def run_options(self, step):
    return {"temperature": self.temperature(step),
            "gumbel": estimators.GumbelForm(self.settings["gumbel_writes"],
                                            self.settings["gumbel_forward"])}

  def terms(self, out, inputs, targets, mask, step, soft_batch=None):
    """(the terms added to the task loss, logs) of a batch's run `out`."""
    del inputs, targets, mask
    return (self.entropy_term(out, step, soft_batch),
            {"temperature": self.temperature(step)})


class Reinforce(_Estimator):
  """REINFORCE with NVIL's baseline and scaling, VIMCO's leave-one-out
  centring over `reinforce_samples` runs, and the read heads' own signal
  (module docstring).

  `statistics`: the model's (running mean, running variance) weights of the
  return; `num_read_heads`, `memory_size`: the cell's.
  """

  choice = "sample"

  def __init__(self, settings, statistics, num_read_heads, memory_size):
    super().__init__(settings)
    self.return_mean, self.return_variance = statistics
    self.num_read_heads = num_read_heads
    self.memory_size = memory_size
    self.samples = settings["reinforce_samples"]

  def terms(self, out, inputs, targets, mask, step, soft_batch=None):
    """(entropy bonus + surrogate + baseline loss, logs with the standard
    deviation of the learning signal R^ - b over the batch) of a batch's
    run `out`; updates the running statistics of the return. Where
    `soft_batch` is true the REINFORCE terms are 0 and the statistics are
    kept: a soft batch trains as a soft model's does (a soft return is not
    a hard one)."""
    logits = tf.stop_gradient(out.logits)
    if mask is None:
      mask = tf.ones(tf.shape(logits)[:2], logits.dtype)
    mask = tf.cast(mask, logits.dtype)
    rewards = -estimators.step_losses(logits, targets)
    advantage = self._advantage(rewards, mask, soft_batch) - out.baseline
    num_steps = tf.cast(tf.shape(logits)[1], logits.dtype)
    log_prob = out.log_prob
    bonus = self._read_bonus(out, inputs, targets, mask)
    read_advantage = self._read_advantage(rewards, mask, advantage, bonus)
    if read_advantage is not None:  # read heads: a signal of their own
      read_term = estimators.surrogate(log_prob[..., :self.num_read_heads],
                                       read_advantage)
      log_prob = log_prob[..., self.num_read_heads:]
    else:
      read_term = 0.0
    write_advantage = advantage
    if bonus is not None and self.settings["read_reward_heads"] == "all":
      write_advantage = advantage + tf.reduce_sum(bonus, axis=-1)
    terms = ((estimators.surrogate(log_prob, write_advantage) + read_term)
             / num_steps + tf.reduce_mean(tf.square(advantage)))
    terms = unless_soft(soft_batch, terms, 0.0)
    return (self.entropy_term(out, step, soft_batch) + terms,
            {"advantage_std": tf.math.reduce_std(advantage)})

  def _advantage(self, rewards, mask, soft_batch):
    """R^_t: the return centred (on the sibling runs, then on the running
    mean) and scaled by the running deviation, which it updates."""
    returns = estimators.rewards_to_go(rewards, mask)
    if self.samples > 1:
      returns -= estimators.leave_one_out(returns, self.samples)
    mean, variance = estimators.update_moments(
        self.return_mean, self.return_variance, returns,
        self.settings["stats_decay"], average=sequence_model.global_mean)
    mean = unless_soft(soft_batch, mean, self.return_mean)
    variance = unless_soft(soft_batch, variance, self.return_variance)
    self.return_mean.assign(mean)
    self.return_variance.assign(variance)
    return (returns - mean) / tf.sqrt(variance + 1e-6)

  @staticmethod
  def _rows(values):
    """(rows over all replicas, a mean over them along axis 0) for
    per-sequence `values` [B, ...]."""
    _, replicas = sequence_model.replica()
    rows = tf.cast(tf.shape(values)[0] * replicas, values.dtype)
    return rows, lambda x: sequence_model.global_mean(x, axis=0)

  def _read_bonus(self, out, inputs, targets, mask):
    """read_reward times each read choice's credit (estimators.read_credit),
    centred on the other sequences' credit at the same step and head:
    [B, T, H_r], or None with read_reward 0."""
    reward = self.settings["read_reward"]
    if reward == 0:
      return None
    choices = tf.cast(out.choices, tf.int32)
    credit = estimators.read_credit(
        self.settings["read_reward_cells"],
        choices[..., :self.num_read_heads], choices[..., self.num_read_heads:],
        inputs, targets, mask, self.memory_size)
    credit = tf.cast(credit, out.logits.dtype)
    rows, row_mean = self._rows(credit)
    others = (rows * row_mean(credit)[None] - credit) / tf.maximum(rows - 1.0,
                                                                   1.0)
    return reward * (credit - others)

  def _read_advantage(self, rewards, mask, advantage, bonus):
    """The read heads' REINFORCE signal where it differs from the write
    heads' `advantage` [B, T] (module docstring): [B, T] with read_discount
    < 1, [B, T, H_r] with a read `bonus` (_read_bonus); None where it does
    not."""
    discount = self.settings["read_discount"]
    if discount == 1 and bonus is None:
      return None
    if discount < 1:
      rows, row_mean = self._rows(rewards)
      read_advantage = estimators.batch_centred(
          estimators.discounted_returns(rewards, mask, discount),
          row_mean=row_mean, rows=rows)
    else:
      read_advantage = advantage
    if bonus is not None:
      read_advantage = read_advantage[..., None] + bonus
    return read_advantage


def make_estimator(settings, statistics, num_read_heads, memory_size):
  """The estimator object `settings["estimator"]` names (checked settings,
  checked_hard_settings); `statistics` etc. as Reinforce takes them."""
  if settings["estimator"] == "reinforce":
    return Reinforce(settings, statistics, num_read_heads, memory_size)
  return StraightThroughGumbel(settings)
