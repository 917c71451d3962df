"""The code that runs inside the pipeline's steps, by kind; none of it knows which runner started it.

features.py: the feature keys, artifact file names and special tokens every step agrees on; tasks.py: one
classification task per label column. runtime/: what every process shares (Keras 2, a quiet exit, progress lines,
storage). model/: the BERT encoder and what trains it, free of TFX. settings/: one frozen dataclass per component, the
only home of each setting and its default. ingestion/: the CSV files as ExampleGen reads them. tf_serving/: TF
Serving's files (the model config file, request logs). baselines/: what a run compares with (the model in service, the
last accepted statistics), read by one step. module_files/: the TFX module files that Transform and the Trainers load
by module path. validation/: the data and text checks and their gates. release/: what stands between a trained model
and the model in service (serving check, evaluation, model card, atomic push, run report). Imports run downward in
that order and never into pipeline/ (tests/unit/test_layers.py checks it).
"""
