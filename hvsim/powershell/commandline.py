"""A command line in PowerShell's argument mode, split into its words: what the simulator reads of a native or
cmdlet command line that a guest step or ``docker`` receives as text (no expressions are evaluated)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Word:
    """One token of a command line in argument mode."""

    text: str
    quoted: str = ""  # "'" or '"' when the token was (wholly) quoted
    comma: bool = False  # an unquoted ',' (array element separator)


def split_words(command: str, commas: bool = True) -> list[Word]:
    """Tokens of ``command``: words, quoted strings and commas (the quotes removed, their kind kept). Without
    ``commas`` an unquoted comma is one more character of its word."""
    words: list[Word] = []
    cur = ""
    quote: str | None = None
    quoted = ""
    started = False

    def flush() -> None:
        nonlocal cur, quoted, started
        if started:
            words.append(Word(cur, quoted))
        cur, quoted, started = "", "", False

    for ch in command.strip():
        if quote:
            if ch == quote:
                quote = None
            else:
                cur += ch
            continue
        if ch in ("'", '"'):
            quote = ch
            # A quote that opens the token makes it a string literal; one inside a word is part of it.
            quoted = ch if not started else quoted
            started = True
        elif ch == "," and commas:
            flush()
            words.append(Word(",", comma=True))
        elif ch.isspace():
            flush()
        else:
            cur += ch
            started = True
    flush()
    return words
