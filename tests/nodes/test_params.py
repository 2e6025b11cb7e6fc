"""Node parameters from one table: declared with descriptors (ranges, read-only), read back as an
immutable record, every bad value named at once."""

from __future__ import annotations

import math

import pytest
import rclpy
from rclpy.exceptions import InvalidParameterValueException
from rclpy.node import Node
from rclpy.parameter import Parameter

from cosmos_ros.nodes import params

TABLE = {
    "rate": (4.0, "frames per second", True),
    "count": (3, "how many", False),
    "mode": ("fast", "fast or slow", True),
    "names": (["a"], "some names", True),
    "seconds": (0.0, "a duration that may arrive as an integer", True),
}
RANGES = {"rate": (0.5, 30.0), "count": (0, 10), "seconds": (0.0, 100.0)}
CHOICES = {"mode": ("fast", "slow")}


@pytest.fixture(scope="module")
def context():
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=98)
    yield context
    context.try_shutdown()


@pytest.fixture
def make(context):
    nodes = []

    def node(**overrides):
        created = Node(
            "params_test",
            context=context,
            parameter_overrides=[Parameter(name, value=value) for name, value in overrides.items()],
        )
        nodes.append(created)
        return created

    yield node
    for created in nodes:
        created.destroy_node()


def declare(node):
    return params.declare(node, TABLE, ranges=RANGES, choices=CHOICES, dynamic=("seconds",))


def test_defaults_come_back_as_an_immutable_record(make):
    values = declare(make())
    assert (values.rate, values.count, values.mode, values.names, values.seconds) == (4.0, 3, "fast", ["a"], 0.0)
    with pytest.raises(AttributeError):
        values.rate = 5.0


def test_descriptors_carry_description_read_only_and_the_range_of_the_right_type(make):
    node = make()
    declare(node)
    rate, count, seconds = node.describe_parameters(["rate", "count", "seconds"])
    assert rate.description == "frames per second" and rate.read_only
    assert (rate.floating_point_range[0].from_value, rate.floating_point_range[0].to_value) == (0.5, 30.0)
    assert not rate.integer_range and not count.read_only
    assert (count.integer_range[0].from_value, count.integer_range[0].to_value) == (0, 10)
    assert seconds.dynamic_typing and not seconds.floating_point_range  # checked after reading instead


def test_overrides_are_read(make):
    values = declare(make(rate=8.0, mode="slow", names=["x", "y"], seconds=30))
    assert (values.rate, values.mode, values.names, values.seconds) == (8.0, "slow", ["x", "y"], 30)


def test_an_override_outside_a_declared_range_is_refused_by_rclpy(make):
    with pytest.raises(InvalidParameterValueException, match="rate"):
        declare(make(rate=100.0))


def test_every_bad_value_is_named_in_one_error(make):
    with pytest.raises(ValueError) as error:
        declare(make(mode="medium", seconds=1000))
    message = str(error.value)
    assert "params_test" in message
    assert "mode must be one of 'fast', 'slow', got 'medium'" in message
    assert "seconds must be a finite number within 0..100, got 1000" in message


@pytest.mark.parametrize("value", [math.nan, math.inf, True, "3"])
def test_a_value_that_is_not_a_finite_number_is_a_problem(value):
    assert params.problems({"rate": value}, {"rate": (0.5, 30.0)})
