"""`cosmos-ros export` and `cosmos-ros build-engine`: the engine subcommands.

    cosmos-ros export tiny-dense exports/tiny-dense
    cosmos-ros export /models/Cosmos-Reason1-7B exports/cosmos-reason1-7b
    cosmos-ros export exports/cosmos-reason1-7b exports/cosmos-reason1-7b-int8 --precision int8
    cosmos-ros build-engine exports/cosmos-reason1-7b --precision bf16 --frames 1,8,32
    cosmos-ros export exports/cosmos-reason1-7b exports/7b-qdq-fp8 --precision qdq-fp8 --calibration-data data/robot
    cosmos-ros build-engine exports/7b-qdq-fp8 --precision fp8

Both show a progress bar per graph and end with a summary table (graph, size, time, ...).
`add_parsers(subparsers)` adds them to the `cosmos-ros` parser; `run(namespace)` runs one.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

COMMANDS = ("export", "build-engine")


def _triple(text: str) -> tuple[int, int, int]:
    try:
        low, opt, high = (int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected MIN,OPT,MAX integers, got {text!r}") from None
    if not 1 <= low <= opt <= high:
        raise argparse.ArgumentTypeError(f"expected 1 <= MIN <= OPT <= MAX, got {text!r}")
    return low, opt, high


def add_parsers(subparsers) -> None:
    export = subparsers.add_parser(
        "export",
        help="ONNX graphs (vision, prefill, decode) of a preset or checkpoint, verified against torch",
    )
    export.add_argument("model", help="preset name, YAML card, checkpoint or (for int8) fp32 export directory")
    export.add_argument("out", type=Path, help="output directory (manifest.json, *.onnx, tokenizer)")
    export.add_argument(
        "--precision", choices=("fp32", "int8", "qdq-int8", "qdq-fp8"), default="fp32",
        help="fp32 (verified against torch); int8 weights for onnxruntime; qdq-int8 / qdq-fp8: calibrated "
             "Q/DQ graphs for TensorRT's int8 / fp8 engines (all three from the fp32 export)",
    )  # fmt: skip
    export.add_argument(
        "--calibration-data", type=Path, action="append", default=None,
        help="qdq-*: a gen-data folder (repeatable) whose val clips and questions calibrate the "
             "activation ranges (default: a synthetic scene)",
    )  # fmt: skip
    export.add_argument("--seed", type=int, default=0, help="weights of a random-init preset (default 0)")
    export.add_argument("--opset", type=int, default=18, help="ONNX opset (default 18)")
    export.add_argument(
        "--tolerance", type=float, default=1e-4, help="max |onnxruntime - torch| (default 1e-4)"
    )

    build = subparsers.add_parser(
        "build-engine", help="TensorRT engines from an export (exporting first if given a model)"
    )
    build.add_argument("model", help="export directory, preset name or checkpoint directory")
    build.add_argument(
        "--precision", choices=("fp16", "bf16", "fp32", "int8", "fp8"), default="fp16",
        help="int8 / fp8: from a Q/DQ export (given, or made from the model with the default calibration)",
    )  # fmt: skip
    build.add_argument("--device", default="cuda", help="CUDA device (default cuda)")
    build.add_argument("--batch", type=_triple, default=(1, 1, 4), help="MIN,OPT,MAX clips per call")
    build.add_argument("--frames", type=_triple, default=(1, 8, 32), help="MIN,OPT,MAX frames per clip")
    build.add_argument("--sequence", type=_triple, default=(1, 2048, 8192), help="MIN,OPT,MAX prompt tokens")
    build.add_argument("--new-tokens", type=int, default=1024, help="decode steps beyond the longest prompt")
    build.add_argument("--workspace-gb", type=float, default=None, help="TensorRT workspace limit")
    build.add_argument("--seed", type=int, default=0, help="weights of a random-init preset (default 0)")
    build.add_argument(
        "--cache", type=Path, default=None, help="engine cache folder (default $COSMOS_ROS_CACHE)"
    )


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(), console=console,
    )  # fmt: skip


def _size(size: int) -> str:
    return f"{size / 2**20:,.1f} MiB"


def _export_quantized(ns, progress):
    """An fp32 export directory is quantized as it is; a model is exported to fp32 beside `out` first."""
    import tempfile

    from cosmos_ros.engine.manifest import MANIFEST_FILE
    from cosmos_ros.engine.onnx_export import export_model
    from cosmos_ros.engine.onnx_quantize import quantize_export
    from cosmos_ros.engine.qdq_quantize import calibration_from_data, qdq_export

    def quantize(fp32):
        if ns.precision == "int8":
            return quantize_export(fp32, ns.out, progress=progress)
        calibration = calibration_from_data(ns.calibration_data) if ns.calibration_data else None
        return qdq_export(fp32, ns.out, ns.precision, calibration=calibration, progress=progress)

    if (Path(ns.model) / MANIFEST_FILE).is_file():
        return quantize(ns.model)
    ns.out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=ns.out.name + ".fp32.", dir=ns.out.parent) as fp32:
        export_model(ns.model, fp32, seed=ns.seed, opset=ns.opset, tolerance=ns.tolerance, progress=progress)
        return quantize(fp32)


def _export(ns, console: Console) -> int:
    from cosmos_ros.engine.onnx_export import ExportError, export_model

    try:
        with _progress(console) as progress:
            if ns.precision != "fp32":
                manifest = _export_quantized(ns, progress)
            else:
                manifest = export_model(ns.model, ns.out, seed=ns.seed, opset=ns.opset, tolerance=ns.tolerance,
                                        progress=progress)  # fmt: skip
    except (ExportError, KeyError, ValueError, FileNotFoundError) as exc:  # ManifestError is a ValueError
        console.print(f"[red]cosmos-ros export: {escape(str(exc))}[/]")
        return 1
    table = Table(title=f"{manifest.model_id} → {ns.out} (opset {manifest.opset}, {manifest.precision} weights)")
    for column in ("graph", "file", "size", "export s", "max |Δ| vs torch", "status"):
        table.add_column(column, justify="left" if column in ("graph", "file") else "right")
    for name, graph in manifest.graphs.items():
        checked = f"{manifest.precision}: see accuracy" if graph.max_abs_diff is None else f"{graph.max_abs_diff:.1e}"
        table.add_row(name, graph.file, _size(graph.size_bytes), f"{graph.export_s:.1f}", checked,
                      "[green]ok[/]")  # fmt: skip
    console.print(table)
    return 0


def _build(ns, console: Console) -> int:
    from cosmos_ros.engine.base import EngineUnavailableError
    from cosmos_ros.engine.tensorrt_build import Profiles, build_engines, require_tensorrt
    from cosmos_ros.engine.tensorrt_engine import resolve_tensorrt_export

    try:
        require_tensorrt(ns.device)
    except EngineUnavailableError as exc:
        console.print(f"[red]cosmos-ros build-engine: {escape(str(exc))}[/]")
        return 2
    import json

    with _progress(console) as progress:
        export_dir = resolve_tensorrt_export(ns.model, ns.precision, ns.seed, ns.cache, progress)
        profiles = Profiles(batch=ns.batch, frames=ns.frames, sequence=ns.sequence, new_tokens=ns.new_tokens)
        directory = build_engines(export_dir, precision=ns.precision, profiles=profiles, device=ns.device,
                                  root=ns.cache, workspace_gb=ns.workspace_gb, progress=progress)  # fmt: skip
    meta = json.loads((directory / "engine.json").read_text())
    table = Table(
        title=f"{meta['model_id']} on {meta['gpu']}, TensorRT {meta['tensorrt']}, {meta['precision']}"
    )
    for column in ("graph", "size", "build s"):
        table.add_column(column, justify="left" if column == "graph" else "right")
    for name, graph in meta["graphs"].items():
        table.add_row(name, _size(graph["size_bytes"]), f"{graph['build_s']:.1f}")
    console.print(table)
    console.print(f"engines in {directory}")
    return 0


def run(ns: argparse.Namespace) -> int:
    console = Console(stderr=False, highlight=False)
    if ns.command == "export":
        return _export(ns, console)
    if ns.command == "build-engine":
        return _build(ns, console)
    raise ValueError(f"not an engine command: {ns.command!r}; expected one of {COMMANDS}")


def main(argv: list[str] | None = None) -> int:
    """Run the engine subcommands on their own: python -m cosmos_ros.engine.cli export ..."""
    parser = argparse.ArgumentParser(prog="cosmos-ros")
    add_parsers(parser.add_subparsers(dest="command", required=True))
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
