"""The arithmetic and the report of benchmarks.cost (no flags, no TensorFlow).

Bytes soft attention must move per step, rough memory estimates used to skip
configurations that cannot fit, the machine's copy bandwidth, and the text
tables.
"""

import time

import numpy as np

_FLOAT_BYTES = 4


def soft_bytes_per_step(config):
  """Bytes soft attention must move per step (see the module docstring)."""
  read_heads = write_heads = 1
  passes = read_heads + 2 * write_heads
  if config["content"] == "on":
    passes += read_heads + write_heads
  total = passes * config["batch_size"] * config["memory_size"] * (
      config["word_size"] * _FLOAT_BYTES)
  return total * (3 if config["phase"] == "train" else 1)


def scan_bytes(config):
  """Bytes a content scan must read per step: the memory and its row norms
  (every head scores the cells in the same pass)."""
  return config["batch_size"] * config["memory_size"] * (
      config["word_size"] + 1) * _FLOAT_BYTES


INDEXES = ("written", "hash")  # content lookups through memtk.content_index


def estimated_gb(config):
  """A rough peak: the memory tensor's copies the step holds at once; with
  a content index nothing has the memory's size (memtk.stores.ListStore:
  the rows written, at most T rows per write head and slot), so a bound of
  1 GB (the peaks measured: 1.5-8 MB, benchmarks/results/cost_*index*)."""
  if config["content"] in INDEXES:
    return 1.0
  memory = config["batch_size"] * config["memory_size"] * config["word_size"] * (
      _FLOAT_BYTES)
  if config["mode"] == "soft" and config["phase"] == "train":
    # Every step's memory for the backward pass: the fused access keeps
    # ~1.5 copies per step (measured), the autodiff composition that soft
    # heads without content use ~4.
    per_step = 1.5 if config["content"] == "on" else 4
    copies = per_step * config["seq_len"] + 6
  else:
    copies = 6
  return copies * memory / 2**30


def measure_bandwidth(megabytes=512, repeats=5):
  """Bytes per second of a large copy (read + write), best of `repeats`."""
  source = np.ones(megabytes * 2**20 // 8)
  target = np.empty_like(source)
  best = float("inf")
  for _ in range(repeats):
    start = time.perf_counter()
    np.copyto(target, source)
    best = min(best, time.perf_counter() - start)
  return 2 * source.nbytes / best


def format_table(results):
  header = (f"{'mode':<6} {'content':<7} {'phase':<7} {'N':>8} "
            f"{'ms/step':>9} {'peak MB':>9} {'bandwidth':>9}")
  lines = [header, "-" * len(header)]
  for r in results:
    if r.get("skipped"):
      lines.append(f"{r['mode']:<6} {r['content']:<7} {r['phase']:<7} "
                   f"{r['memory_size']:>8} skipped: {r['skipped']}")
      continue
    fraction = r.get("bandwidth_fraction")
    index = (f"  rows written and index {r['index_mb']:.2f} MB, in place of "
             f"the memory's {r['memory_mb']:.1f} MB" if "index_mb" in r
             else "")
    lines.append(
        f"{r['mode']:<6} {r['content']:<7} {r['phase']:<7} "
        f"{r['memory_size']:>8} {r['ms_per_step']:>9.3f} {r['peak_mb']:>9.1f} "
        f"{'' if fraction is None else format(fraction, '.0%'):>9}{index}")
  return "\n".join(lines)


def format_breakdown(results):
  rows = [r for r in results if r.get("breakdown_ms")]
  if not rows:
    return ""
  names = [n for n in ("content_scores", "read", "write", "backward")
           if any(n in r["breakdown_ms"] for r in rows)]
  header = f"{'content':<7} {'N':>8} " + " ".join(f"{n:>15}" for n in names)
  lines = ["soft, ms per step of each part (timed alone):", header,
           "-" * len(header)]
  for r in rows:
    lines.append(f"{r['content']:<7} {r['memory_size']:>8} " + " ".join(
        f"{r['breakdown_ms'][n]:>15.3f}" if n in r["breakdown_ms"]
        else f"{'-':>15}" for n in names))
  return "\n".join(lines)


def format_scans(results):
  rows = [r for r in results if r.get("scan_ms")]
  if not rows:
    return ""
  header = (f"{'mode':<6} {'N':>8} {'scan ms':>9} {'step ms':>9} "
            f"{'bandwidth':>9}")
  lines = ["content scan per step (timed alone) against the forward step:",
           header, "-" * len(header)]
  for r in rows:
    fraction = r.get("scan_bandwidth_fraction")
    lines.append(f"{r['mode']:<6} {r['memory_size']:>8} {r['scan_ms']:>9.3f} "
                 f"{r['ms_per_step']:>9.3f} "
                 f"{'' if fraction is None else format(fraction, '.0%'):>9}")
  return "\n".join(lines)
