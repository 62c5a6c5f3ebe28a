"""Text from definitions shown on pages: a step's instructions, as Markdown made safe.

    markdown("Look at **T-1**. <script>alert(1)</script>")   # <p>Look at <strong>T-1</strong>. &lt;script&gt;...

CommonMark with raw HTML off, so any HTML in the text is shown as text, never run; links keep
markdown-it's own check, which refuses ``javascript:``, ``vbscript:``, ``file:`` and most ``data:`` URLs.
"""

from __future__ import annotations

from functools import lru_cache

from markdown_it import MarkdownIt
from markupsafe import Markup

MAX_CHARS = 50_000


@lru_cache(maxsize=1)
def _parser() -> MarkdownIt:
    return MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})


def markdown(text: str | None) -> Markup:
    """``text`` as safe HTML (the result is marked safe for Jinja's autoescape)."""
    if not text:
        return Markup("")
    return Markup(_parser().render(str(text)[:MAX_CHARS]))  # noqa: S704 - html is off: markdown-it escapes it
