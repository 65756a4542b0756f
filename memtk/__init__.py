"""memtk: NTM-style external memory for TensorFlow 2 / Keras 3."""

from memtk import addressing
from memtk import baseline
from memtk import content_index
from memtk import controllers
from memtk import diagnostics
from memtk import estimators
from memtk import factories
from memtk import hard_training
from memtk import heads
from memtk import memory
from memtk import metrics
from memtk import sequence_model
from memtk import sparse_unroll
from memtk import training
from memtk.baseline import LSTMBaseline
from memtk.cell import NTMCell
from memtk.cell import NTMState
from memtk.model import NTM
from memtk.unroll import unroll

__all__ = ["addressing", "baseline", "content_index", "controllers", "diagnostics",
           "estimators", "factories", "hard_training", "heads", "memory", "metrics",
           "sequence_model", "sparse_unroll", "training", "LSTMBaseline",
           "NTMCell", "NTMState", "NTM", "unroll"]
__version__ = "0.1.0"
