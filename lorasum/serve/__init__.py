"""Serving many LoRA adapters on one base model: library (engine, batcher) and HTTP API (app)."""
from lorasum.serve.engine import Decoding, MultiAdapterModel
from lorasum.serve.registry import AdapterEntry, Registry, discover

__all__ = ["AdapterEntry", "Decoding", "MultiAdapterModel", "Registry", "discover"]
