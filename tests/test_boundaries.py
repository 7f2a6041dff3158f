"""The core stays platform-neutral: nothing under bot/ imports a platform SDK or adapters/."""

from __future__ import annotations

import ast
from pathlib import Path

import bot

FORBIDDEN = ("discord", "slack_bolt", "slack_sdk", "adapters", "aiohttp")


def offenders(root: Path) -> list[str]:
    """Every import of a forbidden package under root: plain, from-, and importlib/__import__ with a literal."""
    found = []
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in (
                "import_module",
                "__import__",
            ):
                names = [a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
            found += [f"{path.relative_to(root)}:{node.lineno}: {n}" for n in names if n.split(".")[0] in FORBIDDEN]
    return found


def test_core_imports_no_platform() -> None:
    assert offenders(Path(bot.__file__).parent) == []


def test_the_check_finds_each_kind_of_import(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("import discord.ext\n")
    (tmp_path / "b.py").write_text("from adapters.shell import main\n")
    (tmp_path / "c.py").write_text("import importlib\nimportlib.import_module('slack_bolt')\n")
    (tmp_path / "d.py").write_text("import json\nfrom bot import app\n")
    assert offenders(tmp_path) == ["a.py:1: discord.ext", "b.py:1: adapters.shell", "c.py:2: slack_bolt"]
