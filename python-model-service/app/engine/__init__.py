"""Model engines: the only package that imports torch and transformers."""

from app.engine.base import Engine, EngineError, EngineStats, EngineStep, SamplingParams
from app.engine.loader import ModelLoadError, load_engine

__all__ = [
    "Engine",
    "EngineError",
    "EngineStats",
    "EngineStep",
    "ModelLoadError",
    "SamplingParams",
    "load_engine",
]
