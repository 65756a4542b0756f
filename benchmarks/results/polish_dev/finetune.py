"""Development script (not part of the package): fine-tunes a converged copy
model (a tasks.train run directory's model.keras) on training batches with
all-zero vectors in a share p of the sequences, at a constant rate or one
falling linearly to 0, and prints the error on 1,000 sequences of the
training sizes and of length 120 every 500 steps (mean, median, share of
sequences wrong). The logs beside it came from

  python benchmarks/results/polish_dev/finetune.py RUN OUT P RATE STEPS SEED [linear]

run from the repository root with PYTHONPATH=., RUN a tasks.train run of
seed 100 or 101 at commit 68ce73a (the default recipe).
"""
import sys, os, json, time
import numpy as np, keras, tensorflow as tf
from tasks import common, copy

run, out, p, lr, steps, seed = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
tf.config.threading.set_inter_op_parallelism_threads(1); tf.config.threading.set_intra_op_parallelism_threads(1)
model = keras.models.load_model(os.path.join(run, "model.keras"))
model.optimizer.learning_rate.assign(lr)
task = copy.CopyTask(train_zero_vector=p)
ev = common.Evaluator(model)
def evaluate(tag):
  res = {}
  for name, t in [("train", copy.CopyTask()), ("len120", copy.CopyTask().variant(120))]:
    rng = np.random.default_rng([777, 1])
    x, y, m = t.sample(rng, 1000)
    e = ev.errors(x, y, m, task=t)
    res[name] = (float(e.mean()), float(np.median(e)), float((e > 0).mean()))
  print(tag, json.dumps(res), flush=True)
  return res
log = {"before": evaluate("before")}
def batches():
  k = 0
  while True:
    rng = np.random.default_rng([seed, 99, k]); k += 1
    yield task.train_sample(rng, 32)
sig = (tf.TensorSpec((32, task.num_steps, 9), tf.float32), tf.TensorSpec((32, task.num_steps, 8), tf.float32), tf.TensorSpec((32, task.num_steps), tf.float32))
ds = tf.data.Dataset.from_generator(batches, output_signature=sig)
chunk = 500
cb = keras.callbacks.LambdaCallback(on_epoch_end=lambda e, l: log.__setitem__(f"step{(e+1)*chunk}", evaluate(f"step {(e+1)*chunk}")))
class Linear(keras.callbacks.Callback):
  def __init__(self): super().__init__(); self.k = 0
  def on_train_batch_begin(self, batch, logs=None):
    model.optimizer.learning_rate.assign(lr * (1 - self.k / steps)); self.k += 1
cbs = [cb] + ([Linear()] if len(sys.argv) > 7 and sys.argv[7] == "linear" else [])
model.fit(ds, steps_per_epoch=chunk, epochs=steps // chunk, verbose=0, callbacks=cbs)
os.makedirs(out, exist_ok=True)
model.save(os.path.join(out, "model.keras"))
json.dump(log, open(os.path.join(out, "log.json"), "w"), indent=1)
