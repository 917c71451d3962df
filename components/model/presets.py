"""The encoder presets of a model trained from scratch (--model-size), as plain numbers: bert.py builds them, and the
runners read their depth (a --student-layers check) without importing TensorFlow."""

# Randomly initialised architectures; the vocabulary size and the longest length come from the tokenizer and the task.
PRESETS: dict[str, dict[str, int]] = {
    "tiny": dict(num_layers=2, hidden_size=128, num_heads=2, intermediate_size=512),
    "mini": dict(num_layers=4, hidden_size=256, num_heads=4, intermediate_size=1024),
    "small": dict(num_layers=4, hidden_size=512, num_heads=8, intermediate_size=2048),
    "medium": dict(num_layers=8, hidden_size=512, num_heads=8, intermediate_size=2048),
    "base": dict(num_layers=12, hidden_size=768, num_heads=12, intermediate_size=3072),
}
