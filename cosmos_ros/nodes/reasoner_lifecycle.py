"""reasoner_lifecycle: the reasoner as a managed (lifecycle) node.

    unconfigured --configure--> inactive: parameters checked, model loaded, publishers up
    inactive --activate--> active: cameras subscribed, periodic answers, ~/reason served
    active --deactivate--> inactive: cameras unsubscribed, no inference, model kept in memory
    inactive --cleanup--> unconfigured: model released

Drive it with a lifecycle manager (e.g. nav2's) or `ros2 lifecycle set /reasoner configure`.
Configure fails, and the node stays unconfigured, when the parameters are unusable or the model
cannot be loaded; the reason is logged.
"""

from __future__ import annotations

import sys

from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn

from cosmos_ros.nodes.reasoner import ReasonerLogic
from cosmos_ros.nodes.runner import run_node

LOAD_TIMEOUT_S = 600.0


class LifecycleReasoner(ReasonerLogic, LifecycleNode):
    def __init__(self, **kwargs):
        super().__init__("reasoner", **kwargs)
        self._declare_parameters()

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            self._configure()
        except ValueError as exc:
            self.get_logger().error(str(exc))
            return TransitionCallbackReturn.FAILURE
        if not self.worker.wait_ready(LOAD_TIMEOUT_S) or self.worker.engine_error:
            self.get_logger().error(self.worker.engine_error or "the model did not load in time")
            self._cleanup()
            return TransitionCallbackReturn.FAILURE
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._activate()
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._deactivate()
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._cleanup()
        del self.worker
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        if hasattr(self, "worker"):
            if self._active:
                self._deactivate()
            self._cleanup()
            del self.worker
        return TransitionCallbackReturn.SUCCESS

    def destroy_node(self) -> None:
        if hasattr(self, "worker"):
            self.worker.stop()
        super().destroy_node()


def main(args=None) -> int:
    return run_node(LifecycleReasoner, "reasoner_lifecycle", args=args)


if __name__ == "__main__":
    sys.exit(main())
