"""`cosmos-ros`: the front door.

cosmos-ros demo [--duration S] [--report F]   the robot loop in simulation: a simulated robot ->
                                      the reasoner's next-subtask / failure answers -> a planner, every
                                      answer scored; scenario:=arrow_of_time etc. for the physics quizzes
cosmos-ros launch NAME [arg:=value]   run launch/NAME.launch.yaml without ROS 2's launch tools
cosmos-ros model info PRESET|DIR      architecture and parameter count of a preset or checkpoint
cosmos-ros gen-data --tasks T --out D simulated clips + QA datasets (MuJoCo; USD for Isaac)
cosmos-ros train sft|grpo --config training/*.yaml   Lightning SFT / GRPO ([train] extra)
cosmos-ros eval --model DIR --data D  held-out MCQ accuracy by category (table + PNG)
cosmos-ros export PRESET|DIR OUT/     ONNX graphs (vision, prefill, decode) + manifest, verified vs torch
cosmos-ros build-engine EXPORT|MODEL  TensorRT engines in the engine cache (GPU + tensorrt)
cosmos-ros serve DIR [--dry-run]      serve a model for many robots with vLLM (robots: engine:=openai)
cosmos-ros transport-profile          path of the Fast DDS profile for your own camera drivers
cosmos-ros bag play|record|info ...    replay / record rosbag2 (MCAP, sqlite3) without a ROS install
cosmos-ros bench NAME [args]          run bench/NAME.py
"""

from __future__ import annotations

import argparse
import json
import runpy
import sys
import tempfile
from pathlib import Path

from cosmos_ros import launch as launcher
from cosmos_ros import resources
from cosmos_ros.engine import cli as engine_cli
from cosmos_ros.engine import serve as serve_cli
from cosmos_ros.sim import cli as sim_cli
from cosmos_ros.sim.evaluation import episode_report, question_report
from cosmos_ros.training import cli as training_cli

PHYSICS_SCENARIOS = ("arrow_of_time", "object_permanence", "spatial_puzzle")


def _demo(arguments: list[str], duration: float, report: str | None) -> int:
    """The robot loop (launch/demo.launch.yaml), or with scenario:=<physics task> the physics
    quizzes (launch/sim_demo.launch.yaml); the evaluator ends the graph after `duration` seconds
    with its report, which is printed as a table."""
    scenario = next((a.split(":=", 1)[1] for a in arguments if a.startswith("scenario:=")), "manipulation")
    physics = scenario in PHYSICS_SCENARIOS
    if not physics:
        if scenario != "manipulation":
            print(f"cosmos-ros demo: scenario must be manipulation or one of {', '.join(PHYSICS_SCENARIOS)}, "
                  f"got {scenario!r}", file=sys.stderr)  # fmt: skip
            return 2
        arguments = [a for a in arguments if not a.startswith("scenario:=")]
    with tempfile.TemporaryDirectory(prefix="cosmos_ros_demo_") as scratch:
        path = Path(report or Path(scratch) / "report.json").absolute()
        arguments = [*arguments, f"duration:={duration:g}", f"report:={path}"]
        # the evaluator ends the graph at `duration`; the launcher's own limit only backs it up
        code = _launch(
            "sim_demo" if physics else "demo", arguments, duration + 60 if duration else None, False
        )
        if path.is_file():
            summary = json.loads(path.read_text())
            print("\n" + (question_report(summary) if physics else episode_report(summary)))
            if report:
                print(f"report: {path}")
    return code


def _launch(name: str, arguments: list[str], duration: float | None, show_args: bool) -> int:
    try:
        file = launcher.find_launch_file(name)
        graph = launcher.load_graph(file, launcher.parse_arguments(arguments))
    except launcher.LaunchError as exc:
        print(f"cosmos-ros launch: {exc}", file=sys.stderr)
        return 2
    if show_args:
        print(f"Arguments of {file.name}:")
        for arg, (default, description) in graph.arguments.items():
            print(f"  {arg}:={default!s:<24} {description}")
        return 0
    return launcher.run_graph(graph, duration_s=duration)


def _model_info(preset: str) -> int:
    from cosmos_ros.model.checkpoint import checkpoint_info
    from cosmos_ros.model.config import PRESETS, get_preset, model_info

    try:
        info = checkpoint_info(preset) if Path(preset).is_dir() else model_info(get_preset(preset))
    except (KeyError, ValueError) as exc:  # a CheckpointError is a ValueError
        print(f"cosmos-ros model info: {exc}; presets: {', '.join(PRESETS)}, or a checkpoint directory",
              file=sys.stderr)  # fmt: skip
        return 2
    print(json.dumps(info, indent=2, default=str))
    return 0


def _bench(name: str, args: list[str]) -> int:
    roots = [*resources.data_dirs("bench"), Path.cwd() / "bench"]
    for root in roots:
        script = root / f"{name}.py"
        if script.is_file():
            sys.argv = [str(script), *args]
            runpy.run_path(str(script), run_name="__main__")
            return 0
    available = sorted({p.stem for r in roots if r.is_dir() for p in r.glob("*.py")})
    print(
        f"cosmos-ros bench: no benchmark {name!r}; available: {', '.join(available) or 'none'}",
        file=sys.stderr,
    )
    return 2


def _bag(action: str, args: list[str]) -> int:
    """rosbag2 without ROS 2's rosbag2: play (nodes/bag_play), record (nodes/bag_record), info."""
    if action == "play":
        from cosmos_ros.nodes import bag_play

        return bag_play.main(args)
    if action == "record":
        from cosmos_ros.nodes import bag_record

        return bag_record.main(bag_record.command_line(args))
    from cosmos_ros.nodes.bag_io import BagError, describe, open_bag

    if len(args) != 1:
        print("usage: cosmos-ros bag info BAG", file=sys.stderr)
        return 2
    try:
        print(describe(open_bag(args[0])))
    except BagError as exc:
        print(f"cosmos-ros bag info: {exc}", file=sys.stderr)
        return 2
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="cosmos-ros", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser(
        "demo", help="the robot loop in simulation, every answer scored (launch/demo.launch.yaml)"
    )
    demo.add_argument("--duration", type=float, default=30.0, help="seconds to run; 0 = until Ctrl-C")
    demo.add_argument("--report", help="write the JSON report here (default: print the table only)")
    demo.add_argument(
        "arguments",
        nargs="*",
        help="launch arguments name:=value (launch demo --show-args); scenario:=arrow_of_time, "
        "object_permanence or spatial_puzzle runs the physics quizzes instead (launch sim_demo)",
    )

    run = sub.add_parser("launch", help="run a launch file of this package (launch/NAME.launch.yaml)")
    run.add_argument("name", help="demo, reasoner, ... or a path to a .launch.yaml")
    run.add_argument("arguments", nargs="*", help="launch arguments name:=value")
    run.add_argument(
        "--duration", type=float, default=0.0, help="stop after this many seconds; 0 = until Ctrl-C"
    )
    run.add_argument("--show-args", action="store_true", help="list the launch file's arguments and exit")

    model = sub.add_parser("model", help="model presets and checkpoints")
    model_sub = model.add_subparsers(dest="model_command", required=True)
    info = model_sub.add_parser(
        "info",
        help="architecture and parameter count: a preset on the meta device, a checkpoint from its headers",
    )
    info.add_argument(
        "preset", help="a preset name (cosmos-reason1-7b, ...), a .yaml card or a checkpoint directory"
    )

    engine_cli.add_parsers(sub)
    serve_cli.add_parser(sub)
    sim_cli.add_parser(sub)
    training_cli.add_parsers(sub)

    sub.add_parser("transport-profile", help="print the path of the Fast DDS large-data profile")

    bag = sub.add_parser(
        "bag", help="rosbag2 recordings: play BAG [--rate R --loop --clock], record OUT [TOPIC ...], info BAG"
    )
    bag.add_argument("action", choices=("play", "record", "info"))
    bag.add_argument("args", nargs=argparse.REMAINDER, help="see cosmos-ros bag play|record --help")

    bench = sub.add_parser("bench", help="run a benchmark from bench/")
    bench.add_argument("name")
    bench.add_argument("args", nargs=argparse.REMAINDER)

    argv, vllm_args = serve_cli.split_passthrough(list(sys.argv[1:] if argv is None else argv))
    ns = parser.parse_args(argv)
    ns.vllm_args = vllm_args
    if ns.command == "demo":
        return _demo(ns.arguments, ns.duration, ns.report)
    if ns.command == "launch":
        return _launch(ns.name, ns.arguments, ns.duration or None, ns.show_args)
    if ns.command == "model":
        return _model_info(ns.preset)
    if ns.command in engine_cli.COMMANDS:
        return engine_cli.run(ns)
    if ns.command == "serve":
        return serve_cli.run(ns)
    if ns.command in ("train", "eval"):
        return training_cli.run(ns)
    if ns.command == "gen-data":
        return sim_cli.run(ns)
    if ns.command == "bag":
        return _bag(ns.action, ns.args)
    if ns.command == "transport-profile":
        from cosmos_ros.transport import PROFILE_PATH

        print(PROFILE_PATH)
        return 0
    return _bench(ns.name, ns.args)


if __name__ == "__main__":
    sys.exit(main())
