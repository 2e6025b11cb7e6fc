"""ros2 launch cosmos_ros camera_demo.launch.py — the graph is defined once, in camera_demo.launch.yaml,
which `cosmos-ros launch camera_demo` runs too when ROS 2's launch tools are not installed."""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import IncludeLaunchDescription
from launch.launch_description_sources import AnyLaunchDescriptionSource


def generate_launch_description():
    graph = os.path.join(get_package_share_directory("cosmos_ros"), "launch", "camera_demo.launch.yaml")
    return LaunchDescription([IncludeLaunchDescription(AnyLaunchDescriptionSource(graph))])
