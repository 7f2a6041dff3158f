"""What the core accepts of the text members type, before storing it."""

from __future__ import annotations

import unicodedata

# Invisible on every platform: format characters (zero-width space and joiners, word joiner, BOM, bidi marks),
# controls, and separators. An answer made only of these is nothing a voter could read.
_INVISIBLE_CATEGORIES = frozenset({"Cf", "Cc", "Zs", "Zl", "Zp"})


def storable(text: str) -> str:
    """The text without NUL: PostgreSQL refuses it in text columns, and nobody types it on purpose."""
    return text.replace("\x00", "")


def visible(text: str) -> bool:
    """Whether anything in the text would show: not only spaces, controls and zero-width characters."""
    return any(not ch.isspace() and unicodedata.category(ch) not in _INVISIBLE_CATEGORIES for ch in text)
