"""Logging set-up, with a filter that keeps secrets out of every log line whatever a library prints."""

from __future__ import annotations

import logging
import os
import re

_SECRET_ENV = ("DISCORD_TOKEN", "SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_CLIENT_SECRET")
# Token shapes, in case one reaches a log through a URL or a library's debug output.
_PATTERNS = (
    re.compile(r"xox[abposr]-[A-Za-z0-9-]{10,}"),
    re.compile(r"xapp-[A-Za-z0-9-]{10,}"),
    re.compile(r"[MN][A-Za-z\d_-]{23,25}\.[A-Za-z\d_-]{6}\.[A-Za-z\d_-]{27,}"),
    re.compile(r"(postgres(?:ql)?(?:\+asyncpg)?://[^:/@\s]+:)[^@\s]+@"),
)


class RedactSecrets(logging.Filter):
    def __init__(self) -> None:
        super().__init__()
        self.values = [v for k in _SECRET_ENV if (v := os.environ.get(k)) and len(v) >= 8]

    def redact(self, text: str) -> str:
        for v in self.values:
            text = text.replace(v, "[redacted]")
        for p in _PATTERNS:
            text = p.sub(lambda m: (m.group(1) + "[redacted]@") if m.lastindex else "[redacted]", text)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = self.redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line, for log collectors (Docker, Loki, CloudWatch): time, level, logger, message."""

    def format(self, record: logging.LogRecord) -> str:
        import json
        from datetime import UTC, datetime

        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def setup_logging(level: str, *, interactive: bool = False, fmt: str = "text") -> None:
    handler = logging.StreamHandler()
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactSecrets())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # In the terminal shell, routine INFO lines would drown the conversation.
    if interactive:
        handler.setLevel(logging.WARNING if level == "INFO" else level)
    for noisy in ("apscheduler", "aiosqlite", "sqlalchemy.engine", "alembic"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
