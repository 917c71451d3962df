"""The data's protections: TFDV drift checks against the last accepted statistics (drift.py), the text statistics
and their checks (text_stats.py, text_checks.py), the schema frozen on a first accepted run (frozen_schema.py,
frozen_files.py), what a schema file says of a column (schema_file.py) and the gates that stop a run with one clear
reason (gates.py).

May import the packages below it (features, runtime, model, settings, modules); never release/ or pipeline/."""
