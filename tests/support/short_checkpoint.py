"""A pretrained checkpoint cut short: the packaged all-MiniLM-L6-v2's embeddings and first layers, for the suite's
quick run (support's QUICK_ARGS). A pretrained encoder of four layers learns Rotten Tomatoes' polarity from 1,600
texts in two epochs; a mini encoder from scratch answers the majority class on as many (benchmarks/results.md,
"The suite's quick model"). No TensorFlow here: safetensors and JSON only."""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path

from safetensors.numpy import load_file, save_file


def first_layers(source: Path, target: Path, layers: int) -> Path:
    """A copy of the checkpoint folder `source` keeping the embeddings, the pooler and its first `layers` encoder
    layers, with a config.json that says so (strict loading then takes exactly these tensors). Written once and
    published by a rename, since pytest's workers may ask for it at the same time."""
    if (target / "model.safetensors").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        kept = {name: tensor for name, tensor in load_file(str(source / "model.safetensors")).items()
                if not (m := re.match(r"encoder\.layer\.(\d+)\.", name)) or int(m.group(1)) < layers}
        save_file(kept, str(tmp / "model.safetensors"))
        config = json.loads((source / "config.json").read_text())
        (tmp / "config.json").write_text(json.dumps({**config, "num_hidden_layers": layers}, indent=2))
        for name in ("vocab.txt", "tokenizer_config.json", "special_tokens_map.json"):
            if (source / name).is_file():
                shutil.copyfile(source / name, tmp / name)
        os.chmod(tmp, 0o755)
        os.rename(tmp, target)
    except OSError:
        if not (target / "model.safetensors").is_file():  # not a lost race with another worker: a real failure
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target
