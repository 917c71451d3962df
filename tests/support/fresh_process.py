"""A SavedModel read back by a new interpreter, as TF Serving or a user's script would load it."""

import json
import os
import subprocess
import sys

_CODE = ("import json, re, sys, tensorflow as tf, tensorflow_text\n"
         "m = tf.saved_model.load(sys.argv[1])\n"
         "layers = sorted({int(g) for v in m.model.variables for g in re.findall(r'layer_(\\d+)/', v.name)})\n"
         "out = m.signatures['serving_default'](text=tf.constant(json.loads(sys.argv[2])))\n"
         "print(json.dumps([layers, [x.decode() for x in out[sys.argv[3]].numpy()]]))\n")


def layers_and_labels(model_dir, texts, output="label"):
    """(encoder layer indices of the SavedModel's classifier, the labels serving_default gives `texts` under
    `output`: "rating/label" for a task of several), from a new interpreter."""
    proc = subprocess.run([sys.executable, "-c", _CODE, str(model_dir), json.dumps(list(texts)), output],
                          capture_output=True, text=True, timeout=300, env={**os.environ, "TF_USE_LEGACY_KERAS": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])
