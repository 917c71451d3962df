"""Keras 2 for the project's TensorFlow code: import this module before TensorFlow.

- TF 2.16's `tf.keras` is Keras 3 unless TF_USE_LEGACY_KERAS=1 is set before TensorFlow is first imported;
  TFT's Keras layer and TFMA need Keras 2, i.e. the `tf_keras` package.
- AutoGraph leaves Keras' own code alone through a "do not convert" rule for the module prefix `keras`, which is
  where Keras 2 lived until TF 2.15. Its new home, `tf_keras`, has no such rule, so the first `fit`, `evaluate` or
  export of every process re-writes some fifty Keras internals (base Layer.__call__, the functional graph
  runner, ...) through AutoGraph, seconds of every process's start (benchmarks/results.md has the figures). The
  same rule for `tf_keras` restores
  TF 2.15's behaviour; AutoGraph still converts the project's own layers, as it did then. TensorFlow's public
  API has no way to add a rule, hence the module attribute (TF's own converter tests set it the same way).
"""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

from tensorflow.python.autograph.core import config as _autograph_config  # noqa: E402
from tensorflow.python.autograph.core import config_lib as _autograph_rules  # noqa: E402

_TF_KERAS = "tf_keras"

if not any(isinstance(rule, _autograph_rules.DoNotConvert) and rule.matches(_TF_KERAS)
           for rule in _autograph_config.CONVERSION_RULES):
    _autograph_config.CONVERSION_RULES = (_autograph_rules.DoNotConvert(_TF_KERAS),
                                          *_autograph_config.CONVERSION_RULES)
