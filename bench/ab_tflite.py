"""A/B of the whole TFLite model: the layers before the speed work vs. the current ones.

``python bench/ab_tflite.py {old,new} {float32,int8} SIZE REPEATS``

The probe used for the back-to-back pairs in docs/RESULTS.md: converts the
transformer with tfstyle.tflite (INT8 calibrated on 8 crops of the training
photos), resizes to SIZE x SIZE, invokes once to warm up, then REPEATS times with
2 threads and prints the median. ``old`` swaps in tf.pad(REFLECT) padding and
tf.nn.moments instance norm (the reference functions of
tests/test_transformer_speed.py); upsampling is whatever the tree has.
"""
import os, sys, time, numpy as np
os.environ["TF_CPP_MIN_LOG_LEVEL"]="2"
import tensorflow as tf, keras
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT); sys.path.insert(0, os.path.join(ROOT, "tests"))
from tfstyle import transformer as T
from tfstyle import tflite as tfl
variant, mode, size, reps = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
if variant == "old":
    from test_transformer_speed import reference_pad, reference_norm
    T.ReflectionPadding2D.call = reference_pad; T.InstanceNormalization.call = reference_norm
keras.utils.set_random_seed(0)
m = T.build_transformer()
if len(sys.argv) > 5: m.load_weights(sys.argv[5])
calib = tfl.representative_crops(os.path.join(ROOT, "..", "shared", "data", "content", "train"), 8, 256) if mode == "int8" else None
data = tfl.convert(m, mode, calib)

it = tf.lite.Interpreter(model_content=data, num_threads=2)
inp = it.get_input_details()[0]
it.resize_tensor_input(inp["index"], [1,size,size,3]); it.allocate_tensors()
it.set_tensor(inp["index"], np.random.default_rng(0).uniform(0,255,(1,size,size,3)).astype(inp["dtype"]))
it.invoke()
ts=[]
for _ in range(reps):
    t=time.perf_counter(); it.invoke(); ts.append(time.perf_counter()-t)
print(variant, mode, size, "median", round(float(np.median(ts)),3), [round(t,2) for t in ts], "load", os.getloadavg()[0], flush=True)
