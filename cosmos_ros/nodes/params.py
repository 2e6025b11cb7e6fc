"""Node parameters declared from one table per node.

Each node module holds `PARAMETERS = {name: (default, description, read_only)}` (a literal, so
tools and tests can read it without ROS) and, where numbers must stay within bounds, `RANGES =
{name: (lowest, highest)}` and `CHOICES = {name: (allowed, ...)}`. `declare` declares every
parameter with its descriptor (the range shows in `ros2 param describe`, and rclpy refuses values
outside it at run time too), reads them back, checks them all at once and returns them as an
immutable record: one place to add a parameter, one error naming every bad value.
"""

from __future__ import annotations

import collections
import math
from collections.abc import Collection, Mapping
from types import MappingProxyType

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, ParameterType

Table = Mapping[str, tuple]  # name: (default, description, read_only)
NONE: Mapping = MappingProxyType({})


def descriptor(
    name: str, default, description: str, read_only: bool, ranges: Mapping = NONE, dynamic: Collection[str] = ()
) -> ParameterDescriptor:
    """The descriptor to declare `name` with: description, read-only flag, array type for list
    defaults, its range if it has one (floats where the default is a float, else integers), and
    dynamic typing for a number that may arrive as an integer or a float (`duration:=300`)."""
    result = ParameterDescriptor(description=description, read_only=read_only, dynamic_typing=name in dynamic)
    if isinstance(default, list):
        result.type = ParameterType.PARAMETER_STRING_ARRAY
    if name in ranges and name not in dynamic:
        low, high = ranges[name]
        if isinstance(default, float):
            result.floating_point_range = [FloatingPointRange(from_value=low, to_value=high, step=0.0)]
        else:
            result.integer_range = [IntegerRange(from_value=low, to_value=high, step=1)]
    return result


def problems(values: Mapping, ranges: Mapping = NONE, choices: Mapping = NONE) -> list[str]:
    """Why the values are unusable: numbers outside their range (or not finite, or not numbers),
    strings outside their choices. Empty when they are fine."""
    found = []
    for name, (low, high) in ranges.items():
        value = values[name]
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not (number and math.isfinite(value) and low <= value <= high):
            found.append(f"{name} must be a finite number within {low:g}..{high:g}, got {value!r}")
    for name, allowed in choices.items():
        if values[name] not in allowed:
            found.append(f"{name} must be one of {', '.join(map(repr, allowed))}, got {values[name]!r}")
    return found


def declare(node, table: Table, *, ranges: Mapping = NONE, choices: Mapping = NONE, dynamic: Collection[str] = ()):
    """Declares the table's parameters on `node` and returns their values as a namedtuple (field
    per parameter); raises ValueError naming every value outside its range or choices."""
    for name, (default, description, read_only) in table.items():
        node.declare_parameter(name, default, descriptor(name, default, description, read_only, ranges, dynamic))
    values = {name: node.get_parameter(name).value for name in table}
    found = problems(values, ranges, choices)
    if found:
        raise ValueError(f"invalid {node.get_name()} parameters: " + "; ".join(found))
    return collections.namedtuple("Parameters", list(table))(**values)


def markdown_table(table: Table, ranges: Mapping = NONE, choices: Mapping = NONE) -> str:
    """The README's table of a node's parameters, made from the node's own tables (a test keeps
    the README equal to it): name, default, description with its range or choices."""

    def shown(value) -> str:
        if isinstance(value, bool):
            return f"`{str(value).lower()}`"
        if isinstance(value, list):
            return "`[" + ", ".join(v or '""' for v in value) + "]`"
        return f"`{value}`" if value != "" else '`""`'

    rows = ["| name | default | |", "|---|---|---|"]
    for name, (default, description, read_only) in table.items():
        notes = []
        if name in ranges:
            notes.append("..".join(str(v) if isinstance(v, int) else f"{v:g}" for v in ranges[name]))
        if name in choices:
            notes.append(" or ".join(f"`{c}`" for c in choices[name]))
        if read_only:
            notes.append("read-only")
        text = description.replace("|", "\\|") + (f" ({'; '.join(notes)})" if notes else "")
        rows.append(f"| `{name}` | {shown(default)} | {text} |")
    return "\n".join(rows)
