"""How the data comes in: the CSV files of a data root as CsvExampleGen reads them (csv_files.py: the layouts of a
data root, splits and spans, and each file's records), the checks of those files before a run (csv_checks.py) and
the ExampleGen executor that reads the text and label columns as text (csv_example_gen.py).

May import components.features, components.tasks and components.runtime; nothing else of components/, never
pipeline/."""
