"""The local runner's own parts, beside pipeline/run_local.py: its console (console.py: a line per step, the libraries'
logs to a file, the summary's lines at the end), the run read back from ML Metadata (record.py) with each step's key
figure (step_figures.py), and what a run leaves besides its artifacts (reports.py: the run summary, --summary-json,
anomalies.json, report.html).

May import components/, pipeline.data and pipeline.dag; never cli/, serving/, kubeflow/ or the entry points."""
