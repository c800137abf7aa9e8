"""How a guest's PowerShell session decodes what native programs write (docker.exe's UTF-8 output).

Windows PowerShell 5.1 reads a native program's redirected stdout and stderr as text in
``[Console]::OutputEncoding``: the console's output code page. The server process of a PowerShell Direct
session is a console process, so that is the OEM code page of the guest's system locale (437 for en-US, 850
for de-DE ...), not UTF-8. docker.exe (a Go program) writes UTF-8 to a pipe whatever the code page, so any
non-ASCII character arrives as its UTF-8 bytes read one by one in the OEM code page: 'é' (C3 A9) becomes
'├⌐' under 437 and '├®' under 850 ('Ã©' is what the ANSI code page 1252 would make of it). A script that sets
``[Console]::OutputEncoding`` to UTF-8 before calling docker reads it back unchanged.

(WinRM sessions, whose host process has no console, use the ANSI code page instead and refuse to set
``[Console]::OutputEncoding``, PowerShell/PowerShell#15128 and ralish/PSWinVitals#5; labctl reaches guests
over PowerShell Direct only, so the simulator models the console case.)
"""

from __future__ import annotations

import codecs
from typing import Any

from hvsim.guest.models.localized import OEM_CODE_PAGES

UTF8 = 65001
DEFAULT_OEM = 437  # en-US, and what an unknown locale is taken to be
# LOCALE_IDEFAULTCODEPAGE (the OEM code page) of common system locales; the display languages the simulator
# models come from localized.py.
OEM_BY_LOCALE: dict[str, int] = {
    **OEM_CODE_PAGES,
    "en-GB": 850, "en-AU": 850, "en-CA": 850, "en-IE": 850, "en-NZ": 850, "fr-FR": 850, "fr-BE": 850,
    "fr-CH": 850, "fr-CA": 863, "de-AT": 850, "de-CH": 850, "es-ES": 850, "es-MX": 850, "it-IT": 850,
    "nl-NL": 850, "nl-BE": 850, "pt-BR": 850, "pt-PT": 860, "sv-SE": 850, "da-DK": 850, "nb-NO": 850,
    "fi-FI": 850, "pl-PL": 852, "cs-CZ": 852, "sk-SK": 852, "hu-HU": 852, "ro-RO": 852, "hr-HR": 852,
    "sl-SI": 852, "ru-RU": 866, "uk-UA": 866, "bg-BG": 866, "tr-TR": 857, "el-GR": 737, "he-IL": 862,
    "ar-SA": 720, "th-TH": 874, "ja-JP": 932, "zh-CN": 936, "ko-KR": 949, "zh-TW": 950,
}


def oem_code_page(guest: Any) -> int:
    """The OEM code page of the guest: its answer file's SystemLocale, else its image's display language."""
    locale = getattr(guest, "system_locale", None) or getattr(guest, "ui_culture", None) or ""
    for known, cp in OEM_BY_LOCALE.items():
        if known.lower() == str(locale).lower():
            return cp
    return DEFAULT_OEM


def _question_marks(err: UnicodeError) -> tuple[str, int]:
    # .NET's code-page decoders replace a byte sequence they cannot map with '?' (unconfirmed for each
    # multi-byte code page; the single-byte OEM code pages map every byte).
    assert isinstance(err, UnicodeDecodeError)
    return "?", err.end


codecs.register_error("labctl-dotnet-replace", _question_marks)


def read_native_text(text: str, console_code_page: int) -> str:
    """``text`` that a native program wrote as UTF-8, as PowerShell reads it with this console code page."""
    if console_code_page == UTF8 or text.isascii():
        return text
    return text.encode("utf-8").decode(f"cp{console_code_page}", errors="labctl-dotnet-replace")


def read_native_lines(lines: list[str], console_code_page: int) -> list[str]:
    return [read_native_text(line, console_code_page) for line in lines]
