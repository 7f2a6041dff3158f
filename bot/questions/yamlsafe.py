"""A YAML loader for files we did not write: line numbers on every mapping, no aliases, no custom tags.

Team banks are data from strangers. Aliases are refused outright because a few lines of nested anchors
("billion laughs") expand to gigabytes; a bank never needs them. Unknown tags fail in SafeLoader already;
we turn that into a plain message with a line number.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode

MAX_FILE_BYTES = 2 * 1024 * 1024


class YamlProblem(Exception):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


@dataclass
class Lines:
    """Where a mapping and each of its keys start (1-based)."""

    start: int
    keys: dict[str, int]


class LineMap(dict[str, Any]):
    """A dict that remembers the lines it came from."""

    lines: Lines


# A bank is three levels deep. Far deeper nesting is refused before Python's recursion limit is reached:
# hitting that limit costs seconds for a 3 KB file of "[[[[...".
MAX_DEPTH = 50


if TYPE_CHECKING:  # the mixin's methods are typed against the pure-Python loader it mirrors
    _Base = yaml.SafeLoader
else:
    _Base = object


class _Checks(_Base):
    """Our rules on top of PyYAML's composer and constructor; mixed into the pure-Python and the libyaml loader."""

    _depth = 0

    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            raise YamlProblem(
                event.start_mark.line + 1,
                "YAML aliases (*name) are not allowed in question files; write the text out in full",
            )
        if self._depth >= MAX_DEPTH:
            event = self.peek_event()  # type: ignore[no-untyped-call]
            raise YamlProblem(event.start_mark.line + 1, f"YAML nested more than {MAX_DEPTH} levels deep")
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    # The scanner's work per "[" or "{" grows with the flow depth: stop at the limit, not after seconds.
    def fetch_flow_sequence_start(self) -> None:
        self._check_flow_depth()
        super().fetch_flow_sequence_start()

    def fetch_flow_mapping_start(self) -> None:
        self._check_flow_depth()
        super().fetch_flow_mapping_start()

    def _check_flow_depth(self) -> None:
        if self.flow_level >= MAX_DEPTH:
            line = self.get_mark().line + 1
            raise YamlProblem(line, f"YAML nested more than {MAX_DEPTH} levels deep")

    def construct_object(self, node: Node, deep: bool = False) -> Any:
        # A value SafeLoader cannot build ("!!float abc", "!!timestamp x") fails deep inside PyYAML with a
        # ValueError or worse; here it becomes a problem on the value's own line.
        try:
            return super().construct_object(node, deep=deep)
        except (ValueError, TypeError, AttributeError, OverflowError) as exc:
            raise YamlProblem(node.start_mark.line + 1, f"cannot read this value ({node.tag}): {exc}"[:300]) from None

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, ScalarNode):  # "? [a]" or "? {a: 1}": a list or mapping as a key
                raise YamlProblem(key_node.start_mark.line + 1, "a key must be plain text, not a list or mapping")
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                raise YamlProblem(
                    key_node.start_mark.line + 1,
                    f"key '{key}' appears twice in one mapping (first on line {seen[key]})",
                )
            seen[key] = key_node.start_mark.line + 1
        data = LineMap({str(k): v for k, v in super().construct_mapping(node, deep=True).items()})
        data.lines = Lines(node.start_mark.line + 1, {str(k): v for k, v in seen.items()})
        return data


class _Loader(_Checks, yaml.SafeLoader):
    """Pure Python: scanning and parsing in Python, where the flow-depth checks above apply."""


_LOADERS: list[type[Any]] = [_Loader]

if getattr(yaml, "__with_libyaml__", False):
    from yaml._yaml import CParser

    class _CLoader(
        _Checks, yaml.composer.Composer, CParser, yaml.constructor.SafeConstructor, yaml.resolver.Resolver
    ):
        """libyaml scans and parses (the built-in bank loads in a third of the time); composing, where aliases and
        depth are checked, and constructing stay in Python, so the rules are the same. libyaml keeps its own
        nesting in a heap stack, so deep "[[[[" costs it nothing."""

        def __init__(self, stream: str) -> None:
            CParser.__init__(self, stream)
            yaml.constructor.SafeConstructor.__init__(self)
            yaml.resolver.Resolver.__init__(self)
            yaml.composer.Composer.__init__(self)

    _LOADERS.insert(0, _CLoader)

for _loader in _LOADERS:
    # Mappings are constructed deep so that LineMap wraps nested mappings too.
    _loader.add_constructor(
        "tag:yaml.org,2002:map",
        lambda loader, node: loader.construct_mapping(node, deep=True),
    )


def load(text: str, loader: type[Any] | None = None) -> Any:
    """Parse YAML text; raises YamlProblem with a 1-based line number and a readable message. ``loader``: one of
    _LOADERS (tests run both); the fastest available by default."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_FILE_BYTES:
        raise YamlProblem(1, f"file is larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB; split it into several files")
    try:
        return yaml.load(text, Loader=loader or _LOADERS[0])
    except YamlProblem:
        raise
    except yaml.constructor.ConstructorError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else 1
        problem = exc.problem or "unsupported YAML"
        if "could not determine a constructor for the tag" in problem:
            problem = f"custom YAML tags are not allowed ({problem.split('tag')[-1].strip()})"
        raise YamlProblem(line, problem) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        raise YamlProblem(line, f"invalid YAML: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise YamlProblem(1, f"invalid YAML: {exc}") from None
    except RecursionError:
        raise YamlProblem(1, "YAML nested too deeply") from None
