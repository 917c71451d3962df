"""The TFX module files, loaded by module path inside the steps: `preprocessing_fn` (preprocessing.py, run by
Transform), `run_fn` of the classifier (trainer.py), of the masked-LM stage (pretraining.py) and of the distillation
stage (distillation.py), with what they share (training_loop.py: batching, counting and progress lines), TF Serving
warm-up requests (warmup.py), unlabeled text (unlabeled.py) and the multi-worker Trainer executor
(trainer_executor.py).

May import model/, settings/, runtime/ and features; never validation/, release/ or pipeline/."""
