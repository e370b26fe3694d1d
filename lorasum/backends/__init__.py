"""Generation backends other than transformers' ``generate`` (chosen by ``generation.backend``)."""
