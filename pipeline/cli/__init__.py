"""The front door the runners share: flags (options.py, runner_options.py), the checks of user input before
anything heavy loads (inputs.py, sequence_length.py), the console (console.py) and what a local run reports after
it ends (summary.py, report.py).

May import components/, pipeline.data and pipeline.dag; never serving/, kubeflow/ or the entry points."""
