"""The core stays platform-neutral: nothing under bot/ imports a platform SDK or adapters/."""

from __future__ import annotations

import ast
from pathlib import Path

import bot

FORBIDDEN = ("discord", "slack_bolt", "slack_sdk", "adapters", "aiohttp")


def test_core_imports_no_platform() -> None:
    root = Path(bot.__file__).parent
    offenders = []
    for path in root.rglob("*.py"):
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
            for n in names:
                if n.split(".")[0] in FORBIDDEN:
                    offenders.append(f"{path.relative_to(root.parent)}:{node.lineno}: {n}")
    assert offenders == []


def test_the_check_itself_catches_an_import(tmp_path: Path) -> None:
    tree = ast.parse("import discord\nfrom adapters.shell import main\n")
    found = [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))]
    assert len(found) == 2
