"""The front door the runners share: the command line turned into a plan before anything heavy loads. The flags
(flags.py, runner_options.py), and the stages of a local run's plan (local_run.py): the locations resolved
(locations.py, with what --pretrained decides: model_choice.py), the inputs checked (inputs.py, labels.py), the run
planned (pipeline/planning/), the settings built (settings.py); a refusal is errors.py's InputError. Imports neither
TensorFlow nor TFX (tests/unit/test_front_door.py).

May import components/, pipeline.data, pipeline.dag and pipeline.planning; never local/, serving/, kubeflow/ or the
entry points."""
