"""Specification of configure_transport: the Fast DDS large-data profile, unless the user chose."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from cosmos_ros.transport import PROFILE_PATH, configure_transport

DDS = {"dds": "http://www.eprosima.com"}


def test_with_nothing_configured_fast_dds_gets_the_shipped_profile():
    env: dict[str, str] = {}
    note = configure_transport(env)
    assert env == {"FASTDDS_DEFAULT_PROFILES_FILE": str(PROFILE_PATH)}
    assert Path(env["FASTDDS_DEFAULT_PROFILES_FILE"]).is_file()
    assert str(PROFILE_PATH) in note


@pytest.mark.parametrize("rmw", ["rmw_fastrtps_cpp", "rmw_fastrtps_dynamic_cpp"])
def test_fast_dds_chosen_explicitly_gets_the_shipped_profile(rmw):
    env = {"RMW_IMPLEMENTATION": rmw}
    configure_transport(env)
    assert env["FASTDDS_DEFAULT_PROFILES_FILE"] == str(PROFILE_PATH)


@pytest.mark.parametrize(
    "name,value",
    [
        ("FASTDDS_DEFAULT_PROFILES_FILE", "/etc/robot/dds.xml"),
        ("FASTRTPS_DEFAULT_PROFILES_FILE", "/etc/robot/rtps.xml"),
        ("FASTDDS_BUILTIN_TRANSPORTS", "LARGE_DATA"),
    ],
)
def test_a_user_fast_dds_configuration_is_left_alone(name, value):
    env = {name: value}
    note = configure_transport(env)
    assert env == {name: value}
    assert name in note


@pytest.mark.parametrize("value", ["default", "DEFAULT"])
def test_cosmos_ros_transport_default_keeps_the_fast_dds_defaults(value):
    env = {"COSMOS_ROS_TRANSPORT": value}
    note = configure_transport(env)
    assert env == {"COSMOS_ROS_TRANSPORT": value}
    assert "COSMOS_ROS_TRANSPORT=default" in note


def test_another_middleware_is_left_alone():
    env = {"RMW_IMPLEMENTATION": "rmw_cyclonedds_cpp"}
    note = configure_transport(env)
    assert env == {"RMW_IMPLEMENTATION": "rmw_cyclonedds_cpp"}
    assert "rmw_cyclonedds_cpp" in note


def test_the_shipped_profile_uses_shared_memory_and_udp_instead_of_the_builtin_transports():
    root = ET.parse(PROFILE_PATH).getroot()
    descriptors = {
        d.findtext("dds:transport_id", namespaces=DDS): d.findtext("dds:type", namespaces=DDS)
        for d in root.iterfind(".//dds:transport_descriptor", DDS)
    }
    assert sorted(descriptors.values()) == ["SHM", "UDPv4"]
    participant = root.find(".//dds:participant", DDS)
    assert participant.get("is_default_profile") == "true"
    used = [t.text for t in participant.iterfind("dds:rtps/dds:userTransports/dds:transport_id", DDS)]
    assert sorted(used) == sorted(descriptors)
    assert participant.findtext("dds:rtps/dds:useBuiltinTransports", namespaces=DDS) == "false"


def test_the_shared_memory_segment_holds_a_whole_720p_frame():
    root = ET.parse(PROFILE_PATH).getroot()
    shm = next(d for d in root.iterfind(".//dds:transport_descriptor", DDS) if d.findtext("dds:type", namespaces=DDS) == "SHM")
    assert int(shm.findtext("dds:segment_size", namespaces=DDS)) >= 1280 * 720 * 3
