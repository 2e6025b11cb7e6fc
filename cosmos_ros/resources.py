"""One lookup for the package's installed data: launch files, model presets and checkpoints,
scenario YAML and benchmarks.

The roots, in order: the source tree this code runs from (a checkout or an editable install),
this environment's `share/cosmos_ros` (a wheel or a non-editable pip install), then each
`AMENT_PREFIX_PATH` prefix's `share/cosmos_ros` (a colcon install). A root counts when it holds
`package.xml`, which every install ships beside the data.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

PACKAGE = "cosmos_ros"
SOURCE_ROOT = Path(__file__).resolve().parent.parent


def share_roots(package: str = PACKAGE) -> list[Path]:
    """Where `package`'s data may be, the copy that belongs to this code first; duplicates once."""
    candidates = [SOURCE_ROOT] if package == PACKAGE else []
    candidates.append(Path(sys.prefix) / "share" / package)
    candidates += [
        Path(p) / "share" / package for p in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p
    ]
    seen, roots = set(), []
    for root in candidates:
        if (root / "package.xml").is_file() and root.resolve() not in seen:
            seen.add(root.resolve())
            roots.append(root)
    return roots


def data_dirs(relative: str, package: str = PACKAGE) -> list[Path]:
    """Every root's `relative` folder that exists, in lookup order (e.g. "sim", "model/presets")."""
    return [root / relative for root in share_roots(package) if (root / relative).is_dir()]
