"""reasoner_lifecycle: the reasoner as a managed (lifecycle) node.

    unconfigured --configure--> inactive: parameters checked, model loaded, publishers up
    inactive --activate--> active: cameras subscribed, periodic answers, ~/reason served
    active --deactivate--> inactive: cameras unsubscribed, no inference, model kept in memory
    inactive --cleanup--> unconfigured: model released

Drive it with a lifecycle manager (e.g. nav2's) or `ros2 lifecycle set /reasoner configure`.
Configure fails, and the node stays unconfigured, when the parameters are unusable or the model
cannot be loaded; the reason is logged. The same class as the `reasoner` executable, which
makes these transitions itself at start (cosmos_ros.nodes.reasoner).
"""

from __future__ import annotations

import sys

from cosmos_ros.nodes.reasoner import Reasoner
from cosmos_ros.nodes.runner import run_node


def main(args=None) -> int:
    return run_node(Reasoner, "reasoner_lifecycle", args=args)


if __name__ == "__main__":
    sys.exit(main())
