"""The pipeline's node ids: the names of its steps in ML Metadata, the console, the summary, the Kubeflow spec and the
tests. Kept apart from the stage builders (pipeline/dag/), which import TFX (seconds), for what needs only the
names: the run summary, and the refusal of bad input before anything heavy loads."""

EXAMPLE_GEN = "CsvExampleGen"
BASELINE_LOOKUP = "BaselineLookup"  # the model in service and the last accepted statistics (pipeline/dag/baselines.py)
SPAN_WINDOW = "span_window_resolver"
STATISTICS_GEN = "StatisticsGen"
SCHEMA_GEN = "SchemaGen"
IMPORT_SCHEMA_GEN = "ImportSchemaGen"
SCHEMA_CURATOR = "SchemaCurator"
SCHEMA_FREEZER = "SchemaFreezer"
EXAMPLE_VALIDATOR = "ExampleValidator"
DRIFT_VALIDATOR = "DriftValidator"
DATA_GATE = "DataValidationGate"
TRANSFORM = "Transform"
TEXT_STATISTICS_GEN = "TextStatisticsGen"
TEXT_GATE = "TextValidationGate"
PRETRAINER = "Pretrainer"
TRAINER = "Trainer"
DISTILLER = "Distiller"  # the student trained from the Trainer's model (--student-layers)
SERVING_CHECK = "ServingCheck"
INFRA_VALIDATOR = "InfraValidator"
EVALUATOR = "Evaluator"
MODEL_CARD = "ModelCardWriter"
RUN_REPORT = "RunReport"
PUSHER = "Pusher"
# --serving-logs (pipeline/dag/serving_logs.py): the model's request logs read as examples, and their ledger entry.
SERVING_LOGS_GEN = "ServingLogsGen"
SERVING_LOGS_COMMIT = "ServingLogsCommit"
SERVING_SKEW_CHECK = "ServingSkewCheck"  # the traffic against the training statistics of the model in service
RETRAIN_DECISION = "RetrainDecision"  # --retrain-if: whether the steps after the checks run (pipeline/dag/retrain.py)
VALIDATORS = (EXAMPLE_VALIDATOR, DRIFT_VALIDATOR, TEXT_STATISTICS_GEN)  # the nodes that record anomalies
# Steps whose output depends on something none of their inputs say (what is in service now, the request logs not yet
# read, the run history, which the RunReport step also appends to on Kubeflow): never answered from a cache, by TFX's
# locally (pipeline/dag/pipeline.py, local_ir) or by the Kubeflow backend's (the compiler).
NEVER_CACHED = (BASELINE_LOOKUP, SERVING_LOGS_GEN, SERVING_LOGS_COMMIT, RUN_REPORT)


__all__ = [
    "EXAMPLE_GEN", "BASELINE_LOOKUP", "SPAN_WINDOW", "STATISTICS_GEN", "SCHEMA_GEN", "IMPORT_SCHEMA_GEN",
    "SCHEMA_CURATOR", "SCHEMA_FREEZER", "EXAMPLE_VALIDATOR", "DRIFT_VALIDATOR", "DATA_GATE", "TRANSFORM",
    "TEXT_STATISTICS_GEN", "TEXT_GATE", "PRETRAINER", "TRAINER", "DISTILLER", "SERVING_CHECK", "INFRA_VALIDATOR",
    "EVALUATOR",    "MODEL_CARD", "RUN_REPORT", "PUSHER", "VALIDATORS", "NEVER_CACHED",
    "SERVING_LOGS_GEN", "SERVING_LOGS_COMMIT", "SERVING_SKEW_CHECK", "RETRAIN_DECISION",
]
