"""Small inline SVG charts for the report: no library, no script, nothing fetched.

Every chart is a horizontal bar chart with one row per item (a tier, a process, a step): a
label on the left, bars on the right, and a ``<title>`` on each bar so hovering shows the
number. Colours come from CSS classes the report's stylesheet defines.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

WIDTH = 960
LABEL = 280
ROW = 26
BAR = 16
RIGHT = 150


@dataclass
class Segment:
    value: float
    css: str
    title: str


def _frame(rows: int, body: list[str], caption: str, height_extra: int = 0) -> str:
    height = rows * ROW + 10 + height_extra
    return (f'<svg class="chart" role="img" aria-label="{escape(caption)}" viewBox="0 0 {WIDTH} {height}" '
            f'width="100%" preserveAspectRatio="xMinYMin meet" xmlns="http://www.w3.org/2000/svg">'
            f'<title>{escape(caption)}</title>{"".join(body)}</svg>')


def _label(y: int, text: str) -> str:
    shown = text if len(text) <= 40 else text[:39] + "…"
    return f'<text class="label" x="{LABEL - 8}" y="{y + BAR - 3}" text-anchor="end">{escape(shown)}</text>'


def stacked(rows: list[tuple[str, list[Segment], str]], caption: str, scale: float | None = None,
            right: int = RIGHT) -> str:
    """One stacked bar per row. Bars share one scale: ``scale`` or the largest row's total.

    Each row is (label, segments, text shown after the bar); ``right`` is the room left for it.
    """
    top = scale or max((sum(s.value for s in segments) for _l, segments, _t in rows), default=0) or 1
    span = WIDTH - LABEL - right
    body = []
    for n, (label, segments, after) in enumerate(rows):
        y = 5 + n * ROW
        body.append(_label(y, label))
        x = float(LABEL)
        for segment in segments:
            if segment.value <= 0:
                continue
            width = span * segment.value / top
            body.append(f'<rect class="{segment.css}" x="{x:.1f}" y="{y}" width="{max(width, 1):.1f}" '
                        f'height="{BAR}"><title>{escape(segment.title)}</title></rect>')
            x += width
        body.append(f'<text class="value" x="{x + 6:.1f}" y="{y + BAR - 3}">{escape(after)}</text>')
    return _frame(len(rows), body, caption)


def against_expected(rows: list[tuple[str, float | None, float | None, float | None]], caption: str) -> str:
    """Median and p90 minutes per row, against a mark at the expected minutes.

    Each row is (label, median, p90, expected) and has its own scale (the largest of the three),
    so every process's times read against its own expected time; the minutes are written out.
    """
    span = WIDTH - LABEL - RIGHT
    body = []
    for n, (label, median, p90, expected) in enumerate(rows):
        top = max((v for v in (median, p90, expected) if v), default=0) * 1.05 or 1
        y = 5 + n * ROW
        body.append(_label(y, label))
        if p90:
            body.append(f'<rect class="p90" x="{LABEL}" y="{y + 3}" width="{max(span * p90 / top, 1):.1f}" '
                        f'height="{BAR - 6}"><title>p90 {p90:g} min</title></rect>')
        if median:
            css = "median over" if expected and median > expected else "median"
            body.append(f'<rect class="{css}" x="{LABEL}" y="{y}" width="{max(span * median / top, 1):.1f}" '
                        f'height="{BAR}"><title>median {median:g} min</title></rect>')
        if expected:
            x = LABEL + span * expected / top
            body.append(f'<line class="expected" x1="{x:.1f}" x2="{x:.1f}" y1="{y - 3}" y2="{y + BAR + 3}">'
                        f'<title>expected {expected:g} min</title></line>')
        text = (f"{median:g} / {p90:g} min" if median is not None and p90 is not None else "no completed runs")
        body.append(f'<text class="value" x="{WIDTH - RIGHT + 6}" y="{y + BAR - 3}">{escape(text)}</text>')
    return _frame(len(rows), body, caption)
