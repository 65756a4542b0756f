"""memtk: NTM-style external memory for TensorFlow 2 / Keras 3."""

from memtk import addressing
from memtk import controllers
from memtk import diagnostics
from memtk import estimators
from memtk import heads
from memtk import memory
from memtk import metrics
from memtk import sparse_unroll
from memtk import training
from memtk.cell import NTMCell
from memtk.cell import NTMState
from memtk.model import NTM
from memtk.unroll import unroll

__all__ = ["addressing", "controllers", "diagnostics", "estimators", "heads",
           "memory", "metrics", "sparse_unroll", "training", "NTMCell",
           "NTMState", "NTM", "unroll"]
__version__ = "0.1.0"
