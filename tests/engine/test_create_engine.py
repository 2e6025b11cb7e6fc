"""create_engine: one factory for every backend, clear errors for what cannot run here."""

import importlib.util

import pytest

from cosmos_ros.engine.base import Engine, EngineUnavailableError, create_engine


def test_torch_engine_for_a_preset_is_an_engine():
    engine = create_engine("torch", "tiny-dense")
    assert isinstance(engine, Engine)
    engine.close()


@pytest.mark.parametrize("kind,package", [("onnxruntime", "onnxruntime"), ("tensorrt", "tensorrt")])
def test_unavailable_backends_raise_engine_unavailable_naming_the_gap(kind, package):
    missing = importlib.util.find_spec(package) is None
    with pytest.raises(EngineUnavailableError, match=package if missing else "not implemented"):
        create_engine(kind, "tiny-dense")


def test_engine_unavailable_is_a_not_implemented_error():
    assert issubclass(EngineUnavailableError, NotImplementedError)


def test_unknown_kind_lists_the_known_kinds():
    with pytest.raises(ValueError, match="torch, onnxruntime, tensorrt"):
        create_engine("jax", "tiny-dense")


def test_the_7b_preset_asks_for_a_checkpoint_directory():
    with pytest.raises(ValueError, match="checkpoint"):
        create_engine("torch", "cosmos-reason1-7b")


def test_a_name_that_is_neither_preset_nor_directory_is_named(tmp_path):
    with pytest.raises(ValueError, match="neither a model preset"):
        create_engine("torch", str(tmp_path / "absent"))
