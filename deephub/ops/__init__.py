"""deephub's native (C++) TensorFlow ops, built by setup.py with g++ (no Bazel).

- `tfrecord_ops.cc`: the op registrations and kernels (one file per op family);
- `build.py`: the compile command (the `tf.sysconfig` flags);
- `loader.py`: finds or rebuilds the library for the TensorFlow in use, or warns once;
- `tfrecord.py`: the Python functions to call (never the generated ops directly).
"""
