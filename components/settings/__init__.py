"""Every component's settings: one frozen dataclass each (transform.py, trainer.py, pretraining.py, distillation.py,
evaluator.py), the data's that Transform and the Trainers read beside their own (data.py: columns, classes,
vocabulary), each declaring each setting once, with its default, help text and flag, and base.py, the contract that
turns them into a strict `custom_config` and into both runners' flags.

No TensorFlow: the runners import these to build their command lines. May import components.features,
components.runtime and the TF-free constants of components.model."""
