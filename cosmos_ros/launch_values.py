"""How ROS 2's launch frontend reads a value: the `$(...)` substitution grammar and the typing
rules launch_ros applies to node parameters. Pure: no processes, no files.

Both follow the behaviour of ros2/launch's frontend (grammar.lark, parse_substitution.py,
type_utils.py) and launch_ros's Node (parse_nested_parameters), so a value means the same under
`ros2 launch` and `cosmos-ros launch`.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass

import yaml

SCALARS = (bool, int, float, str)
_IDENTIFIER = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")
_ESCAPE = re.compile(r"\\(.)")


class LaunchError(ValueError):
    """A launch file or argument the launcher cannot run; the message says which and why."""


@dataclass(frozen=True)
class Substitution:
    kind: str
    arguments: tuple[tuple, ...]  # each argument is a template: a tuple of str | Substitution


Template = tuple  # of str (literal text, escapes resolved) and Substitution


def parse_template(text: str) -> Template:
    """`"$(find-pkg-share x)/a $(var b)"` → ('<Substitution find-pkg-share>', '/a ', '<var b>').

    As in launch: `\\` escapes the next character (and is dropped), `$(` starts a substitution,
    whose arguments are separated by single spaces and may be quoted with ' or "."""
    return _Parser(text).template(stops="")


def has_substitution(template: Template) -> bool:
    return any(isinstance(f, Substitution) for f in template)


class _Parser:
    def __init__(self, text: str):
        self.text, self.pos = text, 0

    def error(self, why: str) -> LaunchError:
        return LaunchError(f"cannot parse {self.text!r} at position {self.pos}: {why}")

    def peek(self, n: int = 1) -> str:
        return self.text[self.pos : self.pos + n]

    def template(self, stops: str) -> Template:
        """Fragments up to the first unescaped character of `stops` ('' = the end of the text):
        literal runs and substitutions."""
        fragments: list = []
        literal: list[str] = []
        while self.pos < len(self.text) and self.peek() not in tuple(stops):
            if self.peek() == "\\" and self.pos + 1 < len(self.text):
                literal.append(self.text[self.pos + 1])
                self.pos += 2
            elif self.peek(2) == "$(":
                if literal:
                    fragments.append("".join(literal))
                    literal = []
                fragments.append(self.substitution())
            else:
                literal.append(self.peek())
                self.pos += 1
        if literal:
            fragments.append("".join(literal))
        return tuple(fragments)

    def substitution(self) -> Substitution:
        self.pos += 2  # "$("
        match = _IDENTIFIER.match(self.text, self.pos)
        if not match:
            raise self.error("expected a substitution name after '$('")
        self.pos = match.end()
        arguments = []
        while self.peek() == " ":
            self.pos += 1
            arguments.append(self.argument())
        if self.peek() != ")":
            raise self.error(f"expected ')' to close $({match.group()}")
        self.pos += 1
        return Substitution(match.group(), tuple(arguments))

    def argument(self) -> Template:
        quote = self.peek()
        if quote in ("'", '"'):
            self.pos += 1
            fragments = self.template(stops=quote)
            if self.peek() != quote:
                raise self.error(f"unterminated {quote}-quoted argument")
            self.pos += 1
            return fragments
        fragments = self.template(stops=" ()'\"")
        if not fragments:
            raise self.error("expected an argument")
        return fragments


Resolver = Callable[[Substitution], str]


def perform(template: Template, resolve: Resolver) -> str:
    return "".join(f if isinstance(f, str) else resolve(f) for f in template)


def same_value(left: str, right: str) -> bool:
    """launch's EqualsSubstitution: two booleans (true/false, any case) or two numbers compare
    by value, anything else as text."""
    booleans = {"true": True, "false": False}
    if left.lower() in booleans and right.lower() in booleans:
        return booleans[left.lower()] == booleans[right.lower()]
    try:
        return float(left) == float(right)
    except ValueError:
        return left == right


def split_command_line(template: Template, resolve: Resolver) -> list[str]:
    """A node's `args`: the literal text is split like a shell line, but the result of a
    substitution is never split (`--name $(var n)` with n='a b' gives ['--name', 'a b']),
    as launch's ExecuteProcess does."""
    words: list[str] = []
    current: list[str] | None = None
    for fragment in template:
        if isinstance(fragment, Substitution):
            current = (current or []) + [resolve(fragment)]
            continue
        try:
            tokens = shlex.split(fragment)
        except ValueError as exc:
            raise LaunchError(f"cannot split the command line text {fragment!r}: {exc}") from exc
        if not tokens:
            if current is not None:
                words.append("".join(current))
                current = None
            continue
        if fragment[0].isspace() and current is not None:
            words.append("".join(current))
            current = None
        if current is None:
            current = []
        current.append(tokens[0])
        if len(tokens) > 1:
            words.append("".join(current))
            words += tokens[1:-1]
            current = [tokens[-1]]
        if fragment[-1].isspace():
            words.append("".join(current))
            current = None
    if current is not None:
        words.append("".join(current))
    return words


def _valid_type(value) -> bool:
    """A parameter value launch_ros accepts: a scalar, or a list whose items share one type."""
    if isinstance(value, list):
        return bool(value) and type(value[0]) in SCALARS and all(type(v) is type(value[0]) for v in value)
    return type(value) in SCALARS


def _from_yaml(text: str, name: str):
    """A substituted parameter string, typed by YAML rules as launch_ros types it."""
    if not text:
        return ""  # launch forwards an empty result as the empty string
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise LaunchError(f"parameter {name!r}: {text!r} is not valid YAML ({exc.problem})") from exc
    if not _valid_type(value):
        raise LaunchError(
            f"parameter {name!r}: {text!r} reads as {type(value).__name__} {value!r}; expected a "
            "bool, int, float, string or a non-empty list of one of those (quote it, e.g. "
            "\"'...'\", to keep it a string)"
        )
    return value


def parameter_value(raw, name: str, resolve: Resolver):
    """The typed value of `param: {name, value: raw}` as launch_ros computes it.

    A YAML scalar (15, 30.0, true) keeps its type; a string without `$(...)` stays a string,
    whatever it looks like ("15", "true", "[a, b]"); a string with a substitution is
    substituted and then read as YAML ("$(var n)" with n=15 is the integer 15). A list applies the
    same rules to each item, and its items must all have the same type."""
    if isinstance(raw, list):
        if not raw:
            raise LaunchError(f"parameter {name!r}: an empty list has no type a node could declare")
        literal_types = set()
        items = []
        for item in raw:
            if isinstance(item, str):
                template = parse_template(item)
                if has_substitution(template):
                    items.append(_from_yaml(perform(template, resolve), name))
                    continue
                item = perform(template, resolve)
            if type(item) not in SCALARS:
                raise LaunchError(f"parameter {name!r}: list item {item!r} is not a scalar")
            literal_types.add(type(item))
            items.append(item)
        if len(literal_types) > 1 or not _valid_type(items):
            raise LaunchError(f"parameter {name!r}: the items of {raw!r} must all have one type")
        return items
    if isinstance(raw, str):
        template = parse_template(raw)
        text = perform(template, resolve)
        return _from_yaml(text, name) if has_substitution(template) else text
    if type(raw) in SCALARS:
        return raw
    raise LaunchError(
        f"parameter {name!r}: {raw!r} is a {type(raw).__name__}; expected a scalar or a list "
        "(nested parameters go in a 'param:' list)"
    )
