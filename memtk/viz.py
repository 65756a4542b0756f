"""Plots: attention heat maps over time, and learning curves.

matplotlib is an optional dependency (`pip install "memtk[viz]"`); it is only
imported when a plot is drawn.
"""

import numpy as np


def _pyplot():
  try:
    import matplotlib  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise ImportError(
        'plotting needs matplotlib: pip install "memtk[viz]"') from e
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  return plt


def plot_attention(path, inputs, targets, outputs, read_weights, write_weights,
                   mask=None, title=None):
  """Writes a PNG heat map of one sequence: what went in, came out, and where
  the heads looked.

  Args:
    path: where to write the PNG.
    inputs: [T, I] input vectors.
    targets: [T, O] target bits.
    outputs: [T, O] output probabilities (sigmoid of the logits).
    read_weights: [T, H_r, N] read weightings (H_r = 0: no panels, as for
      a model without memory).
    write_weights: [T, H_w, N] write weightings.
    mask: optional [T]; steps where an answer is expected are marked.
    title: optional figure title.
  """
  plt = _pyplot()
  panels = [("inputs", inputs.T, "features"), ("targets", targets.T, "bits"),
            ("outputs", outputs.T, "bits")]
  for h in range(write_weights.shape[1]):
    panels.append((f"write weights, head {h}", write_weights[:, h].T,
                   "memory cell"))
  for h in range(read_weights.shape[1]):
    panels.append((f"read weights, head {h}", read_weights[:, h].T,
                   "memory cell"))
  # Show only the memory cells the heads actually visit, plus a margin.
  used = np.concatenate([read_weights, write_weights], axis=1).max(
      axis=(0, 1), initial=0.0)
  visited = np.nonzero(used > 0.05)[0]
  lo, hi = (0, len(used)) if visited.size == 0 else (
      max(0, visited.min() - 2), min(len(used), visited.max() + 3))
  heights = [1.2 if "weights" not in p[0] else 2.5 for p in panels]
  fig, axes = plt.subplots(len(panels), 1, figsize=(10, sum(heights) + 1.5),
                           gridspec_kw={"height_ratios": heights},
                           sharex=True, squeeze=False)
  for ax, (name, data, ylabel) in zip(axes[:, 0], panels):
    extent, vmin, vmax = None, 0.0, 1.0
    if "weights" in name:
      data = data[lo:hi]
      extent = (-0.5, data.shape[1] - 0.5, hi - 0.5, lo - 0.5)
    elif name == "inputs":  # inputs such as priorities reach outside [0, 1]
      vmin, vmax = min(0.0, data.min()), max(1.0, data.max())
    ax.imshow(data, aspect="auto", interpolation="nearest", cmap="viridis",
              vmin=vmin, vmax=vmax, extent=extent)
    ax.set_title(name, fontsize=9, loc="left")
    ax.set_ylabel(ylabel, fontsize=8)
    if mask is not None and name == "outputs":
      answer = np.nonzero(mask > 0)[0]
      if answer.size:
        ax.axvspan(answer.min() - 0.5, answer.max() + 0.5, color="white",
                   fill=False, lw=1.0, ls="--")
  axes[-1, 0].set_xlabel("time step")
  if title:
    fig.suptitle(title, fontsize=10)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def plot_learning_curves(path, curves, title=None, ylabel="bit errors per sequence"):
  """Writes a PNG of learning curves on a log y axis.

  Args:
    path: where to write the PNG.
    curves: list of (label, xs, ys) with xs training sequences seen, or
      (label, xs, ys, group): curves of one group share a colour and the
      legend names the group once (seeds of one method, say).
    title: optional title.
    ylabel: the y axis label.
  """
  plt = _pyplot()
  fig, ax = plt.subplots(figsize=(8, 5))
  colours = {}
  for curve in curves:
    label, xs, ys = curve[:3]
    ys = np.maximum(np.asarray(ys, dtype=float), 1e-3)  # log scale shows 0 as 1e-3
    if len(curve) < 4:
      ax.plot(xs, ys, label=label, lw=1.2)
      continue
    group = curve[3]
    first = group not in colours
    colours.setdefault(group, f"C{len(colours)}")
    ax.plot(xs, ys, color=colours[group], lw=1.0, alpha=0.8,
            label=group if first else None)
  ax.set_yscale("log")
  ax.set_xlabel("training sequences")
  ax.set_ylabel(ylabel)
  ax.grid(True, which="both", alpha=0.3)
  ax.legend(fontsize=8)
  if title:
    ax.set_title(title)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


# Panels of plot_diagnostics: (title, [(head-statistics key, line style)]).
_DIAGNOSIS_PANELS = (
    ("bit errors per sequence (solid: model; dotted: read vectors zeroed)",
     [("bits", "-"), ("bits_no_memory", ":")]),
    ("entropy of w_t / log N (solid: write head; dashed: read head)",
     [("entropy_write", "-"), ("entropy_read", "--")]),
    ("gate g_t, 1 = content (solid: write; dashed: read)",
     [("gate_write", "-"), ("gate_read", "--")]),
    ("mean shift offset (solid: write; dashed: read)",
     [("shift_write", "-"), ("shift_read", "--")]),
    ("sharpening gamma_t (solid: write; dashed: read)",
     [("gamma_write", "-"), ("gamma_read", "--")]),
    ("gradient norm: controller (solid), interface (dashed)",
     [("grad_norm_controller", "-"), ("grad_norm_interface", "--")]),
)


def plot_diagnostics(path, runs, title=None):
  """Writes a PNG of what the heads did over training, one colour per run.

  Args:
    path: where to write the PNG.
    runs: list of (label, history) with history the records of a
      tasks.train run whose 'heads' field holds memtk.diagnostics values.
    title: optional figure title.
  """
  plt = _pyplot()
  fig, axes = plt.subplots(len(_DIAGNOSIS_PANELS) // 2, 2, figsize=(12, 10),
                           sharex=True, squeeze=False)
  for ax, (panel, keys) in zip(axes.flat, _DIAGNOSIS_PANELS):
    log_scale = panel.startswith(("bit errors", "gradient"))
    for i, (label, history) in enumerate(runs):
      records = [r for r in history if "heads" in r]
      xs = [r["sequences"] for r in records]
      for j, (key, style) in enumerate(keys):
        ys = np.array([r["heads"].get(key, np.nan) for r in records], float)
        if log_scale:
          ys = np.maximum(ys, 1e-3)  # a log axis shows 0 as 1e-3
        ax.plot(xs, ys, style, color=f"C{i}", lw=1.2,
                label=label if j == 0 else None)
    if log_scale:
      ax.set_yscale("log")
    ax.set_title(panel, fontsize=9)
    ax.grid(True, alpha=0.3)
  for ax in axes[-1]:
    ax.set_xlabel("training sequences")
  axes[0, 0].legend(fontsize=8)
  if title:
    fig.suptitle(title)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def plot_cost(results, path):
  """Writes a log-log PNG of time and memory per step against memory size.

  Args:
    results: benchmarks.cost rows (dicts with mode, content, phase,
      memory_size, ms_per_step, peak_mb; skipped rows have None).
    path: where to write the PNG.

  One column per phase, rows time and peak memory; soft in blue, hard in
  orange, sparse in green, solid with content addressing, dashed without,
  dash-dotted and dotted with the 'written' and 'hash' content indexes
  (memtk.content_index). The grey lines are
  O(N) and O(1) references through each panel's first point.
  """
  plt = _pyplot()
  phases = [p for p in ("forward", "train")
            if any(r["phase"] == p for r in results)]
  fig, axes = plt.subplots(2, len(phases), figsize=(6 * len(phases), 8),
                           squeeze=False)
  colours = {"soft": "C0", "hard": "C1", "sparse": "C2"}
  # The scan of every row, none, and lookups through a content index.
  styles = {"on": "o-", "off": "s--", "written": "^-.", "hash": "v:"}
  for column, phase in enumerate(phases):
    for row, (key, label) in enumerate([("ms_per_step", "ms per time step"),
                                        ("peak_mb", "peak MB above resting")]):
      ax = axes[row][column]
      anchor = None
      for mode in colours:
        for content, style in styles.items():
          points = sorted((r["memory_size"], r[key]) for r in results
                          if r["phase"] == phase and r["mode"] == mode
                          and r["content"] == content and r.get(key))
          if not points:
            continue
          xs, ys = zip(*points)
          ax.plot(xs, ys, style, color=colours[mode], ms=4,
                  label=(f"{mode}, content {content}" if content in ("on", "off")
                         else f"{mode}, content index '{content}'"))
          if anchor is None or xs[0] < anchor[0]:
            anchor = (xs[0], ys[0], xs[-1])
      if anchor is not None:
        x0, y0, x1 = anchor
        big = max(x1, x0 * 2)
        ax.plot([x0, big], [y0, y0 * big / x0], ":", color="grey", lw=1,
                label="O(N)")
        ax.plot([x0, big], [y0, y0], "-.", color="grey", lw=1, label="O(1)")
      ax.set_xscale("log", base=2)
      ax.set_yscale("log")
      ax.set_xlabel("memory size N (cells)")
      ax.set_ylabel(label)
      ax.set_title(f"{phase}: {label}")
      ax.grid(True, which="both", alpha=0.3)
      ax.legend(fontsize=7)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)
