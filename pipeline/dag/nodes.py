"""The pipeline's node ids: the names of its steps in ML Metadata, the console, the summary, the Kubeflow spec and the
tests. Kept apart from the stage builders (pipeline/dag/stages/), which import TFX (seconds), for what needs only the
names: the run summary, and the refusal of bad input before anything heavy loads."""

EXAMPLE_GEN = "CsvExampleGen"
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
MODEL_RESOLVER = "latest_blessed_model_resolver"
PRETRAINER = "Pretrainer"
TRAINER = "Trainer"
SERVING_CHECK = "ServingCheck"
INFRA_VALIDATOR = "InfraValidator"
EVALUATOR = "Evaluator"
MODEL_CARD = "ModelCardWriter"
RUN_REPORT = "RunReport"
PUSHER = "Pusher"
VALIDATORS = (EXAMPLE_VALIDATOR, DRIFT_VALIDATOR, TEXT_STATISTICS_GEN)  # the nodes that record anomalies


def baseline_resolver_id(gate_id: str) -> str:
    """The node that resolves the statistics `gate_id` last accepted (the drift checks' baseline)."""
    return f"{gate_id}_baseline_resolver"


__all__ = [
    "EXAMPLE_GEN", "SPAN_WINDOW", "STATISTICS_GEN", "SCHEMA_GEN", "IMPORT_SCHEMA_GEN", "SCHEMA_CURATOR",
    "SCHEMA_FREEZER", "EXAMPLE_VALIDATOR", "DRIFT_VALIDATOR", "DATA_GATE", "TRANSFORM", "TEXT_STATISTICS_GEN",
    "TEXT_GATE", "MODEL_RESOLVER", "PRETRAINER", "TRAINER", "SERVING_CHECK", "INFRA_VALIDATOR", "EVALUATOR",
    "MODEL_CARD", "RUN_REPORT", "PUSHER", "VALIDATORS", "baseline_resolver_id",
]
