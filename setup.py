"""Build and install cosmos_ros from a pip install.

The ROS 2 interfaces (msg/, srv/, action/) are generated at build time by CMake with the rosidl
toolchain that the ROS 2 PyPI wheels bring. The generated Python modules and typesupport
extensions go inside our package (the source tree for editable installs, where they are
gitignored) and the generated C libraries go to the environment's lib/ (as data files of the
wheel), where the ROS wheels' start-up hook puts them on the library path. The node executables
go to lib/cosmos_ros/, where `ros2 run` and launch_ros look for them, as a colcon install has them.

The build has to see the ROS wheels installed in the environment, so install with
``pip install --no-build-isolation`` (see README).
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
PACKAGE = "cosmos_ros"
INTERFACE_DIRS = ("msg", "srv", "action")


def _generated_python_dir(stage: Path) -> Path:
    matches = glob.glob(str(stage / "lib" / "python3*" / "site-packages" / PACKAGE))
    if not matches:
        raise RuntimeError(f"the rosidl build produced no Python package under {stage}/lib")
    return Path(matches[0])


def build_interfaces(build_dir: Path) -> Path:
    """Runs CMake on CMakeLists.txt; returns the staging prefix it installed into."""
    prefix = Path(sys.prefix)
    if not (prefix / "share" / "rosidl_default_generators").is_dir():
        raise RuntimeError(
            f"the rosidl toolchain is not installed in {prefix}. Install the build requirements "
            "first (pip install -r requirements.txt) and build with "
            "'pip install --no-build-isolation .' so the build sees them."
        )
    cmake = shutil.which("cmake")
    if cmake is None:
        raise RuntimeError("cmake (>= 3.16) is needed to generate the ROS 2 interfaces")
    stage = build_dir / "stage"
    # CMake refuses exported include dirs inside the source tree, and a project-local .venv
    # (numpy's headers) is inside this one: configure from a copy of just the interface sources.
    source = build_dir / "src"
    shutil.rmtree(source, ignore_errors=True)
    source.mkdir(parents=True)
    for name in ("CMakeLists.txt", "package.xml"):
        shutil.copy2(HERE / name, source / name)
    for name in INTERFACE_DIRS:
        shutil.copytree(HERE / name, source / name)
    env = dict(os.environ)
    env["AMENT_PREFIX_PATH"] = os.pathsep.join(
        p for p in (str(prefix), env.get("AMENT_PREFIX_PATH", "")) if p
    )
    # Run the generators with the environment's interpreter, which the ROS wheels bootstrap.
    python = str(prefix / "bin" / "python")
    configure = [
        cmake, "-S", str(source), "-B", str(build_dir / "cmake"),
        "-DCOSMOS_ROS_PIP_BUILD=ON",
        f"-DCMAKE_PREFIX_PATH={prefix}",
        f"-DPython3_EXECUTABLE={python}",
        "-DCMAKE_BUILD_TYPE=Release",
        "-DBUILD_TESTING=OFF",
    ]
    jobs = str(os.cpu_count() or 2)
    subprocess.run(configure, check=True, env=env)
    subprocess.run([cmake, "--build", str(build_dir / "cmake"), "-j", jobs], check=True, env=env)
    subprocess.run(
        [cmake, "--install", str(build_dir / "cmake"), "--prefix", str(stage)], check=True, env=env
    )
    return stage


def node_executables(build_dir: Path) -> list[str]:
    """scripts/<node> for lib/cosmos_ros/, with this environment's interpreter in the shebang:
    the scripts' `#!/usr/bin/env python3` suits a ROS install (CMakeLists.txt installs them as
    they are), but from a venv it would find a Python without this package."""
    target_dir = build_dir / "executables"
    target_dir.mkdir(parents=True, exist_ok=True)
    python = Path(sys.prefix) / "bin" / "python"
    executables = []
    for script in sorted((HERE / "scripts").iterdir()):
        if script.suffix:  # scripts/gpu_check.sh and the like are the developers', not nodes
            continue
        shebang, _, body = script.read_text().partition("\n")
        if not shebang.startswith("#!"):
            raise RuntimeError(f"{script} should start with a #! line, got {shebang!r}")
        target = target_dir / script.name
        target.write_text(f"#!{python}\n{body}")
        target.chmod(0o755)
        executables.append(str(target))
    return executables


class BuildWithInterfaces(build_py):
    """build_py that first generates the ROS 2 interfaces and places them."""

    def run(self) -> None:
        build_dir = HERE / "build" / f"interfaces-{sysconfig.get_platform()}"
        try:
            stage = build_interfaces(build_dir)
            executables = node_executables(build_dir)
        except (RuntimeError, subprocess.CalledProcessError) as exc:
            # SystemExit, because setuptools' editable installs turn exceptions from build_py
            # into a warning and would install a package without its interfaces.
            raise SystemExit(f"cosmos_ros: generating the ROS 2 interfaces failed: {exc}") from exc
        generated = _generated_python_dir(stage)
        # Editable installs import straight from the source tree.
        target = HERE / PACKAGE if getattr(self, "editable_mode", False) else Path(self.build_lib) / PACKAGE
        target.mkdir(parents=True, exist_ok=True)
        for name in INTERFACE_DIRS:
            if (generated / name).is_dir():
                shutil.rmtree(target / name, ignore_errors=True)
                shutil.copytree(generated / name, target / name)
        for ext in generated.glob("*.so"):
            shutil.copy2(ext, target / ext.name)

        libs = sorted(str(p) for p in (stage / "lib").glob(f"lib{PACKAGE}__*.so"))
        share = stage / "share" / PACKAGE
        generated_data = [("lib", libs), (f"lib/{PACKAGE}", executables)]
        for name in INTERFACE_DIRS:
            files = sorted(str(p) for p in (share / name).glob("*") if p.is_file())
            if files:
                generated_data.append((f"share/{PACKAGE}/{name}", files))
        if getattr(self, "editable_mode", False):
            # setuptools' editable wheels carry no data_files: place them in the environment
            # directly (pip will not remove these on uninstall).
            for dest, files in [*self.distribution.data_files, *generated_data]:
                (Path(sys.prefix) / dest).mkdir(parents=True, exist_ok=True)
                for f in files:
                    shutil.copy2(HERE / f, Path(sys.prefix) / dest / Path(f).name)
        else:
            self.distribution.data_files.extend(generated_data)
        super().run()


def _tree(src: str, dest: str) -> list[tuple[str, list[str]]]:
    """data_files entries that copy the folder src (relative to here) under dest."""
    entries = []
    for root, _dirs, files in os.walk(HERE / src):
        files = [f for f in files if not f.endswith((".pyc", "~"))]
        if files:
            rel = Path(root).relative_to(HERE)
            entries.append((str(Path(dest) / rel), [str(rel / f) for f in sorted(files)]))
    return entries


setup(
    cmdclass={"build_py": BuildWithInterfaces},
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/cosmos_ros"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        *_tree("launch", f"share/{PACKAGE}"),
        *_tree("model", f"share/{PACKAGE}"),
        *_tree("sim", f"share/{PACKAGE}"),
        *_tree("bench", f"share/{PACKAGE}"),
    ],
)
