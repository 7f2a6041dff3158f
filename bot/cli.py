"""The ``interview-bot`` command line.

Adapters are found through the ``interview_bot.adapters`` entry point group (see pyproject.toml), so the
core never imports a platform: a new platform is a new package that registers itself there.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from bot.config import ConfigError, load_config
from bot.logs import setup_logging

log = logging.getLogger("interview-bot")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="interview-bot",
        description="A daily interview-practice bot for Discord, Slack and the terminal.",
    )
    p.add_argument("--config", type=Path, help="YAML config file (default: ./interview-bot.yaml if present)")
    sub = p.add_subparsers(dest="cmd", metavar="COMMAND")

    run = sub.add_parser("run", help="run the bot (the terminal shell unless a platform is configured)")
    run.add_argument("--platform", choices=sorted(available_adapters()), help="override the configured platform")

    q = sub.add_parser("questions", help="work with question banks")
    qsub = q.add_subparsers(dest="qcmd", metavar="ACTION")
    lint = qsub.add_parser("lint", help="check question files; exit 1 on any error")
    lint.add_argument("paths", nargs="*", type=Path, help="files or directories (default: the configured banks)")
    stats = qsub.add_parser("stats", help="count questions per topic and difficulty")
    stats.add_argument("paths", nargs="*", type=Path)

    bench = sub.add_parser("bench", help="run the benchmarks (from a checkout): figures, not tests")
    bench.add_argument("--quick", action="store_true", help="small sizes, under a minute or two")
    bench.add_argument("only", nargs="*", help="ingest, latency, leaderboard, fanout (default: all)")

    cmds = sub.add_parser("commands", help="platform slash commands")
    csub = cmds.add_subparsers(dest="ccmd", metavar="ACTION")
    sync = csub.add_parser("sync", help="register the slash commands with the platform (after install or upgrade)")
    sync.add_argument("--platform", default="discord", help="which platform (default: discord)")
    sync.add_argument("--guild", help="a Discord server id: register there only, visible at once (for testing)")

    db = sub.add_parser("db", help="database maintenance")
    dsub = db.add_subparsers(dest="dbcmd", metavar="ACTION")
    dsub.add_parser("upgrade", help="apply migrations (also done at every start)")
    dsub.add_parser("current", help="print the schema revision")
    exp = dsub.add_parser("export", help="write every row to a file (JSON Lines), e.g. before moving to PostgreSQL")
    exp.add_argument("file", type=Path)
    imp = dsub.add_parser("import", help="load an export into an empty database (migrated first)")
    imp.add_argument("file", type=Path)
    return p


def platform_of(args: argparse.Namespace, config: Any) -> str:
    return str(getattr(args, "platform", None) or config.platform or "shell")


def available_adapters() -> dict[str, Any]:
    return {ep.name: ep for ep in entry_points(group="interview_bot.adapters")}


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.cmd is None:
        parser.print_help()
        return 2
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.cmd == "questions":
        from bot.questions.cli import lint_command, stats_command

        if args.qcmd == "lint":
            return lint_command(args.paths, config)
        if args.qcmd == "stats":
            return stats_command(args.paths, config)
        parser.parse_args(["questions", "--help"])
        return 2
    setup_logging(
        config.log_level, interactive=args.cmd == "run" and platform_of(args, config) == "shell", fmt=config.log_format
    )
    if args.cmd == "db":
        if args.dbcmd not in ("upgrade", "current", "export", "import"):
            parser.parse_args(["db", "--help"])
            return 2
        return asyncio.run(_db(args.dbcmd, config.database_url, getattr(args, "file", None)))
    if args.cmd == "bench":
        try:
            from bench.run import main as bench_main
        except ModuleNotFoundError:
            print("error: the benchmarks live in the source checkout: run this from the repository.", file=sys.stderr)
            return 2
        return bench_main([*(["--quick"] if args.quick else []), *args.only])
    if args.cmd == "commands":
        if args.ccmd != "sync":
            parser.parse_args(["commands", "--help"])
            return 2
        syncers = {ep.name: ep for ep in entry_points(group="interview_bot.command_sync")}
        if args.platform not in syncers:
            print(f"error: no command sync for '{args.platform}' (available: {', '.join(syncers)})", file=sys.stderr)
            return 2
        return int(asyncio.run(syncers[args.platform].load()(config, args.guild)) or 0)
    if args.cmd == "run":
        platform = platform_of(args, config)
        adapters = available_adapters()
        if platform not in adapters:
            print(
                f"error: no '{platform}' adapter is installed (available: {', '.join(sorted(adapters)) or 'none'}). "
                "Reinstall with `pip install -e .`.",
                file=sys.stderr,
            )
            return 2
        adapter_main = adapters[platform].load()
        try:
            return int(asyncio.run(adapter_main(config)) or 0)
        except KeyboardInterrupt:
            return 130
    return 2


async def _db(action: str, url: str, file: Path | None = None) -> int:
    from bot.store import migrate, transfer
    from bot.store.db import DatabaseUrlError, create_engine, redact

    try:
        engine = create_engine(url)
    except DatabaseUrlError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        if action == "upgrade":
            before, after = await migrate.upgrade(engine)
            done = f"migrated {before or 'empty'} -> {after}" if before != after else f"at {after}"
            print(f"{redact(url)}: {done}")
        elif action == "export":
            assert file is not None
            counts = await transfer.export(engine, file)
            print(f"exported {_summary(counts)} to {file}")
        elif action == "import":
            assert file is not None
            await migrate.upgrade(engine)
            counts = await transfer.import_(engine, file)
            print(f"imported {_summary(counts)} from {file} into {redact(url)}")
        else:
            print(await migrate.current_revision(engine) or "empty (run `interview-bot db upgrade`)")
    except transfer.TransferError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"error: cannot reach the database at {redact(url)}: {exc}", file=sys.stderr)
        return 1
    finally:
        await engine.dispose()
    return 0


def _summary(counts: dict[str, int]) -> str:
    detail = ", ".join(f"{n} {table}" for table, n in counts.items() if n)
    return f"{sum(counts.values())} rows ({detail or 'none'})"


if __name__ == "__main__":
    raise SystemExit(main())
