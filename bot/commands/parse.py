"""Typed command text (Slack's ``/quiz ...``, the shell) into a command path and options.

Accepted forms: ``quiz leaderboard month``, ``/quiz admin setup time=09:00 tz="America/New_York"``,
``key:value`` as Discord users type it. Anything else comes back as a ParseError whose message explains
the usage, never as a stack trace.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from bot.commands.spec import BY_PATH, COMMANDS, CommandSpec

MAX_COMMAND_CHARS = 2000


class ParseError(Exception):
    def __init__(self, message: str, spec: CommandSpec | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.spec = spec


@dataclass(frozen=True)
class Parsed:
    spec: CommandSpec
    options: dict[str, str]


def parse(text: str) -> Parsed:
    if len(text) > MAX_COMMAND_CHARS:
        raise ParseError("That command is too long.")
    clean = "".join(ch for ch in text if ch.isprintable() or ch in " \t")
    try:
        words = shlex.split(clean)
    except ValueError:
        raise ParseError(
            'A quote is not closed. Put values with spaces in matching quotes: name="like this".',
            _spec_of(clean.split()),
        ) from None
    if words and words[0].lstrip("/").lower() == "quiz":
        words = words[1:]
    if not words:
        return Parsed(BY_PATH[("quiz", "help")], {})
    head = words[0].lower()
    path: tuple[str, ...]
    if head == "admin":
        if len(words) < 2:
            raise ParseError("Which admin command? " + _list(admin=True))
        path = ("quiz", "admin", words[1].lower())
        rest = words[2:]
    else:
        path = ("quiz", head)
        rest = words[1:]
    spec = BY_PATH.get(path)
    if spec is None:
        suggestion = _closest(" ".join(path[1:]))
        hint = f" Did you mean `/quiz {suggestion}`?" if suggestion else ""
        raise ParseError(f"I don't know `/quiz {' '.join(path[1:])}`.{hint} " + _list(admin=head == "admin"))
    return Parsed(spec, _options(spec, rest))


def _spec_of(words: list[str]) -> CommandSpec | None:
    """The command the first words name, if any: for the usage shown beside a problem found before parsing."""
    if words and words[0].lstrip("/").lower() == "quiz":
        words = words[1:]
    path = tuple(["quiz", *(w.lower() for w in words[:2])])
    return BY_PATH.get(path) or BY_PATH.get(path[:2])


def _options(spec: CommandSpec, rest: list[str]) -> dict[str, str]:
    options: dict[str, str] = {}
    positional = list(spec.positional)
    for word in rest:
        key, sep, value = _split(word)
        if sep:
            opt = spec.option(key)
            if opt is None:
                raise ParseError(f"`{key}` is not an option of /{spec.name}.", spec)
            if opt.name in options:
                raise ParseError(f"`{opt.name}` is given twice.", spec)
            options[opt.name] = value
            if opt.name in positional:
                positional.remove(opt.name)
            continue
        if not positional:
            raise ParseError(f"I don't know what `{word}` means here.", spec)
        name = _positional_for(spec, positional, word)
        options[name] = word
        positional.remove(name)
    for name, value in options.items():
        opt = spec.option(name)
        if opt and opt.choices and value.lower() not in opt.choices:
            raise ParseError(f"`{name}` must be one of {', '.join(opt.choices)}, not `{value}`.", spec)
        if opt and opt.choices:
            options[name] = value.lower()
    return options


def _positional_for(spec: CommandSpec, remaining: list[str], word: str) -> str:
    # A bare word fills the first positional slot whose choices it matches, else the first free-text one:
    # so "/quiz practice hard" means difficulty=hard, and "/quiz practice cnn" means topic=cnn.
    for name in remaining:
        opt = spec.option(name)
        if opt and opt.choices and word.lower() in opt.choices:
            return name
    for name in remaining:
        opt = spec.option(name)
        if opt and not opt.choices:
            return name
    return remaining[0]


def _split(word: str) -> tuple[str, str, str]:
    for sep in ("=", ":"):
        key, found, value = word.partition(sep)
        # "09:00" alone is not key:value; a key is a word of letters and hyphens
        if found and key and key.replace("-", "").replace("_", "").isalpha():
            return key, found, value
    return word, "", ""


def _list(admin: bool) -> str:
    names = [c.name.removeprefix("quiz ") for c in COMMANDS if c.admin == admin]
    return "Commands: " + ", ".join(f"`/quiz {n}`" for n in names) + "."


def _closest(typed: str) -> str | None:
    import difflib

    names = [c.name.removeprefix("quiz ") for c in COMMANDS]
    found = difflib.get_close_matches(typed, names, n=1, cutoff=0.6)
    return found[0] if found else None


def usage_text(spec: CommandSpec) -> str:
    lines = [f"Usage: `{spec.usage()}`", spec.summary]
    for o in spec.options:
        lines.append(f"- `{o.name}`: {o.help}")
    if spec.examples:
        lines.append("Example: " + " or ".join(f"`{e}`" for e in spec.examples))
    return "\n".join(lines)


def parse_duration(value: str) -> int:
    """'8h', '90m', '1h30m', '1.5h' or plain minutes -> minutes."""
    import re

    v = value.strip().lower().replace(" ", "")
    # ASCII digits only, and few of them: int("²") fails, and "9" * 400 + "h" overflows a float.
    m = re.fullmatch(r"([0-9]{1,9})|(?:([0-9]{1,9}(?:\.[0-9]{1,6})?)h)?(?:([0-9]{1,9})m(?:in)?)?", v)
    if not m or not any(m.groups()):
        raise ValueError(f"'{value[:40]}' is not a duration like 8h, 90m or 1h30m")
    if m.group(1):
        return int(m.group(1))
    return int(float(m.group(2) or 0) * 60) + int(m.group(3) or 0)
