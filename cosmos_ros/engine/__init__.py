"""Engines: `create_engine(kind, model).reason(clip, prompt)` for every backend.

Backends load lazily; importing this package imports neither torch nor onnxruntime.
"""

from cosmos_ros.engine.base import ENGINE_KINDS, Engine, EngineUnavailableError, create_engine

__all__ = ["ENGINE_KINDS", "Engine", "EngineUnavailableError", "create_engine"]
