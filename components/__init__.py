"""The code that runs inside the pipeline's steps, by kind; none of it knows which runner started it.

features.py: the feature keys and special tokens every step agrees on. runtime/: process workarounds (Keras 2, a
quiet exit, progress lines). model/: the BERT encoder and what trains it, free of TFX. settings/: one frozen dataclass
per component, the only home of each setting and its default. baselines/: what a run compares with (the model in
service, the last accepted statistics), kept in versioned folders and read by one step. module_files/: the TFX module
files that Transform and Trainer load by module path. validation/: the data and text checks and their gates.
release/: what stands between a trained model and the model in service (serving check, evaluation, model card,
atomic push, run report). Imports run downward in that order and never into pipeline/ (tests/unit/test_layers.py
checks it).
"""
