"""The reasoner's `precision` parameter: checked against the engine before anything loads."""

import pytest

from cosmos_ros.nodes.reasoner_params import PARAMETERS, validate


def values(**overrides):
    return {**{name: default for name, (default, *_) in PARAMETERS.items()}, **overrides}


def test_the_default_leaves_precision_to_the_engine():
    assert values()["precision"] == "" and validate(values()) == ""


@pytest.mark.parametrize(
    "engine,precision",
    [
        ("onnxruntime", "int8"),
        ("onnxruntime", "fp32"),
        ("torch", "bf16"),
        ("tensorrt", "fp16"),
        ("tensorrt", "int8"),
        ("tensorrt", "fp8"),
        ("pkg.mod:create", "int8"),
    ],
)
def test_a_precision_the_engine_runs_is_accepted(engine, precision):
    assert validate(values(engine=engine, precision=precision)) == ""


def test_a_precision_the_engine_cannot_run_is_refused_with_what_it_runs():
    assert validate(values(engine="torch", precision="int8")) == (
        "the torch engine runs precision fp32, bf16, fp16, not 'int8'"
    )
    assert "onnxruntime engine runs precision fp32, int8, not 'fp8'" in validate(
        values(engine="onnxruntime", precision="fp8")
    )
    assert "precision must be one of" in validate(values(precision="int4"))
