"""What the front door plans before a local run from the data it read: the sequence length, and what training at it
will cost on this machine within --time-budget (sequence_length.py, the one part of the front door that runs
TensorFlow, to tokenize and to time a few training steps).

May import components/, pipeline.data and pipeline.dag; never cli/, serving/, kubeflow/, local/ or the entry
points."""
