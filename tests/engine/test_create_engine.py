"""create_engine: one factory for every backend, clear errors for what cannot run here."""

import importlib.util
from pathlib import Path

import pytest

from cosmos_ros.engine.base import Engine, EngineUnavailableError, create_engine


@pytest.mark.parametrize("preset", ["tiny-dense", "tiny-hybrid", "cosmos-reason2-tiny"])
def test_torch_engine_for_a_preset_of_any_family_is_an_engine(preset):
    engine = create_engine("torch", preset)
    assert isinstance(engine, Engine) and engine.model_id.startswith(f"{preset}@")
    engine.close()


def test_torch_engine_takes_the_path_of_a_yaml_card():
    card = Path(__file__).resolve().parents[2] / "model" / "presets" / "tiny-hybrid.yaml"
    assert create_engine("torch", str(card)).family == "hybrid"


@pytest.mark.parametrize("kind,package", [("onnxruntime", "onnxruntime"), ("tensorrt", "tensorrt")])
def test_a_backend_whose_package_is_missing_raises_engine_unavailable_naming_it(kind, package):
    if importlib.util.find_spec(package) is not None:
        pytest.skip(f"{package} is installed here")
    with pytest.raises(EngineUnavailableError, match=package):
        create_engine(kind, "tiny-dense", device="cuda")


def test_engine_unavailable_is_a_not_implemented_error():
    assert issubclass(EngineUnavailableError, NotImplementedError)


def test_unknown_kind_lists_the_known_kinds():
    with pytest.raises(ValueError, match="torch, onnxruntime, tensorrt"):
        create_engine("jax", "tiny-dense")


@pytest.mark.parametrize("preset", ["cosmos-reason1-7b", "cosmos-reason1-56b"])
def test_the_full_presets_ask_for_a_checkpoint_directory(preset):
    with pytest.raises(ValueError, match="checkpoint"):
        create_engine("torch", preset)


def test_a_name_that_is_neither_preset_nor_directory_is_named(tmp_path):
    with pytest.raises(ValueError, match="neither a model preset"):
        create_engine("torch", str(tmp_path / "absent"))
