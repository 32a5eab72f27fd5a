"""Registry and guest text made safe for a terminal (`runtime/src/text.rs`).

Error texts, warnings and log lines quote what strangers wrote: a registry's
error body, a skill id, a hostile component's stderr. A control character
in them (ESC above all) would let that stranger clear the screen, retitle
the window or forge output lines such as a fake `error:`. Everything this
host prints for people goes through :func:`printable`, which writes each C0
and C1 control character (and DEL) as a visible escape, exactly as the Rust
CLI does, so that both print the same line. JSON output keeps the exact
values: JSON escapes them itself.
"""

from __future__ import annotations

_NAMED = {"\x1b": "\\e", "\r": "\\r", "\n": "\\n", "\t": "\\t", "\x07": "\\a"}


def _is_control(c: str) -> bool:
    # Rust's `char::is_control`: U+0000..=U+001F and U+007F..=U+009F.
    code = ord(c)
    return code < 0x20 or 0x7F <= code <= 0x9F


def printable(text: str) -> str:
    """`text` with every control character written as a visible escape
    (`\\e`, `\\r`, `\\n`, `\\u{9b}`), so that it prints as text on one line."""
    if not any(_is_control(c) for c in text):
        return text
    return "".join(
        (_NAMED.get(c) or f"\\u{{{ord(c):x}}}") if _is_control(c) else c for c in text
    )
