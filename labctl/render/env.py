"""The Jinja2 environment every labctl template renders in.

StrictUndefined: a misspelt variable is an error, never an empty string in an answer file. XML templates
(*.xml.j2) are autoescaped so a value such as "R&D" cannot break the document; PowerShell templates are not.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import jinja2

from labctl.lab.files import template_search_dirs


def make_environment(template_dirs: Sequence[str | Path] | None = None) -> jinja2.Environment:
    """An environment loading from ``template_dirs`` (first hit wins; default: labctl's templates/)."""
    dirs = [str(d) for d in (template_dirs if template_dirs else template_search_dirs())]
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(dirs),
        undefined=jinja2.StrictUndefined,
        autoescape=jinja2.select_autoescape(enabled_extensions=("xml", "xml.j2"), default_for_string=False,
                                            default=False),
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )


@lru_cache(maxsize=16)
def _cached(dirs: tuple[str, ...]) -> jinja2.Environment:
    return make_environment(list(dirs))


def environment_for(template_dirs: Sequence[str | Path]) -> jinja2.Environment:
    """A shared environment per set of directories (templates compile once per process)."""
    return _cached(tuple(str(d) for d in template_dirs))
