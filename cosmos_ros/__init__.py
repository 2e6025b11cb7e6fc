"""cosmos_ros: Cosmos-Reason1 video reasoning for ROS 2 robots."""

__version__ = "0.1.0"
