"""The `main()` every cosmos_ros node shares: transport, init, spin, clean shutdown."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable

import rclpy
from rclpy.exceptions import ParameterException
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions

from cosmos_ros.transport import configure_transport


class _StopSignals:
    """Counts SIGINT / SIGTERM once the node is running (before that, they interrupt as usual).

    rclpy's own handler shuts the context down the moment the signal lands, so a node could no
    longer answer what it has in flight (an action goal gets no result, its feedback publish
    fails with an error line). Counting instead lets the spin loop stop, the node wind down while
    the context still works, and a second signal cut the wind-down short.
    """

    def __init__(self) -> None:
        self.count = 0
        self.armed = False
        self._previous = {}
        if threading.current_thread() is threading.main_thread():  # signal.signal's requirement
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)

    def _handle(self, signum, frame) -> None:
        if not self.armed:
            raise KeyboardInterrupt
        self.count += 1

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def run_node(make_node: Callable[[], Node], name: str, *, args=None, threads: int = 1) -> int:
    """Runs one node until Ctrl-C / SIGTERM / shutdown. A ValueError from the node (bad
    parameters, an unusable source) or rclpy's ParameterException (a parameter of the wrong type,
    e.g. `-p width:=abc`) is logged as fatal and gives exit code 2.

    On the first Ctrl-C / SIGTERM a node with `wind_down(executor, give_up)` finishes what is in
    flight while the context still works; a second one makes give_up() true. Either way the exit
    is clean (code 0, no traceback)."""
    configure_transport()
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    signals = _StopSignals()
    node = None
    try:
        node = make_node()
        executor = MultiThreadedExecutor(num_threads=threads) if threads > 1 else SingleThreadedExecutor()
        executor.add_node(node)
        signals.armed = True
        while rclpy.ok() and not signals.count:
            executor.spin_once(timeout_sec=0.1)  # returns often enough to notice a signal
        wind_down = getattr(node, "wind_down", None)
        if signals.count and wind_down is not None:
            wind_down(executor, give_up=lambda: signals.count > 1)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except (ValueError, ParameterException) as exc:
        rclpy.logging.get_logger(name).fatal(str(exc))
        return 2
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
        signals.restore()
    return 0
