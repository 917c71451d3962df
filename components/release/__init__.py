"""Between a trained model and the model in service: the serving check against the stock TF Serving image's ops
(serving_check.py, serving_ops.py, serving_probe.py), the Evaluator's EvalConfig and class-aware executor
(eval_config.py, evaluator.py), the model card (model_card.py, model_metrics.py), the atomic Pusher (pusher.py) and the
run report (report_page.py, run_facts.py, and run_report.py, its Kubeflow step), and the run history the report plots
(run_history.py, history_page.py).

The top of components/: may import every package below it, never pipeline/."""
