"""The model and how it learns, as plain Keras 2 and TensorFlow: the BERT encoder (bert.py), strict loading of
Hugging Face checkpoints (hf_checkpoint.py), the masked-LM head and masking (mlm.py, masking.py), a distilled student
of a classifier (student.py), the optimizer and schedule, mixed precision and the tf.distribute strategy.

Knows nothing of TFX or of settings classes: imports only components.features and components.runtime."""
