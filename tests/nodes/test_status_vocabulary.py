"""One status vocabulary: OutcomeStatus is what every cosmos_ros interface's STATUS_* constants say."""

from __future__ import annotations

import pytest

from cosmos_ros.action import Reason as ReasonAction
from cosmos_ros.core.types import OutcomeStatus
from cosmos_ros.msg import FailureDetection, SubtaskPrediction
from cosmos_ros.srv import Reason as ReasonService

INTERFACES = {
    "msg/SubtaskPrediction": SubtaskPrediction,
    "msg/FailureDetection": FailureDetection,
    "srv/Reason response": ReasonService.Response,
    "action/Reason result": ReasonAction.Result,
}


def constants(cls) -> dict[str, int]:
    return {name[len("STATUS_"):]: getattr(cls, name) for name in dir(cls) if name.startswith("STATUS_")}


@pytest.mark.parametrize("interface", sorted(INTERFACES))
def test_each_status_constant_is_the_enum_member_of_its_name(interface):
    found = constants(INTERFACES[interface])
    assert found, f"{interface} defines no STATUS_* constants"
    assert found == {name: OutcomeStatus[name].value for name in found}


def test_the_enum_holds_every_status_an_interface_can_carry_and_no_other():
    every = set().union(*(constants(cls) for cls in INTERFACES.values()))
    assert every == set(OutcomeStatus.__members__)


def test_an_unknown_status_value_is_named_by_its_number():
    assert OutcomeStatus.name_of(2) == "UNCERTAIN"
    assert OutcomeStatus.name_of(42) == "42"
