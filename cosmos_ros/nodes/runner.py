"""The `main()` every cosmos_ros node shares: transport, init, spin, clean shutdown."""

from __future__ import annotations

from collections.abc import Callable

import rclpy
from rclpy.exceptions import ParameterException
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor, SingleThreadedExecutor
from rclpy.node import Node

from cosmos_ros.transport import configure_transport


def run_node(make_node: Callable[[], Node], name: str, *, args=None, threads: int = 1) -> int:
    """Runs one node until Ctrl-C / SIGTERM / shutdown. A ValueError from the node (bad
    parameters, an unusable source) or rclpy's ParameterException (a parameter of the wrong type,
    e.g. `-p width:=abc`) is logged as fatal and gives exit code 2."""
    configure_transport()
    rclpy.init(args=args)
    node = None
    try:
        node = make_node()
        executor = MultiThreadedExecutor(num_threads=threads) if threads > 1 else SingleThreadedExecutor()
        executor.add_node(node)
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except (ValueError, ParameterException) as exc:
        rclpy.logging.get_logger(name).fatal(str(exc))
        return 2
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    return 0
