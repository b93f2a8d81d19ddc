"""Line charts drawn as SVG on the server: no script, no external CDN, nothing to fetch.

A suppressed point is a gap in its line (never a zero): the chart shows no more than the API.
"""

from __future__ import annotations

from xml.sax.saxutils import escape

WIDTH, HEIGHT, LEFT, RIGHT, TOP, BOTTOM = 640, 260, 48, 16, 28, 36
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf")

Series = dict[str, list[int | None]]


def line_chart(title: str, periods: list[str], series: Series) -> str:
    top = max([v for values in series.values() for v in values if v is not None] or [1])
    span_x = max(1, len(periods) - 1)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(i: int) -> float:
        return LEFT + plot_w * i / span_x

    def y(v: int) -> float:
        return TOP + plot_h * (1 - v / top)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
             f'aria-label="{escape(title, {chr(34): "&quot;"})}">',
             f"<title>{escape(title)}</title>",
             f'<text x="{LEFT}" y="18" font-size="14" font-family="sans-serif">{escape(title)}</text>',
             f'<line x1="{LEFT}" y1="{TOP + plot_h}" x2="{WIDTH - RIGHT}" y2="{TOP + plot_h}" stroke="#888"/>',
             f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{TOP + plot_h}" stroke="#888"/>',
             f'<text x="{LEFT - 6}" y="{TOP + 4}" font-size="11" text-anchor="end" '
             f'font-family="sans-serif">{top}</text>',
             f'<text x="{LEFT - 6}" y="{TOP + plot_h}" font-size="11" text-anchor="end" '
             f'font-family="sans-serif">0</text>']
    if periods:
        for i in sorted({0, len(periods) // 2, len(periods) - 1}):
            parts.append(f'<text x="{x(i):.1f}" y="{HEIGHT - 12}" font-size="11" text-anchor="middle" '
                         f'font-family="sans-serif">{escape(periods[i])}</text>')
    for n, (label, values) in enumerate(series.items()):
        colour = COLOURS[n % len(COLOURS)]
        runs: list[list[str]] = [[]]
        for i, v in enumerate(values):
            if v is None:
                runs.append([])
            else:
                runs[-1].append(f"{x(i):.1f},{y(v):.1f}")
        for run in runs:
            if len(run) == 1:
                cx, cy = run[0].split(",")
                parts.append(f'<circle cx="{cx}" cy="{cy}" r="2.5" fill="{colour}"/>')
            elif run:
                parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{" ".join(run)}"/>')
        parts.append(f'<text x="{WIDTH - RIGHT}" y="{TOP + 14 * n}" font-size="11" text-anchor="end" '
                     f'fill="{colour}" font-family="sans-serif">{escape(label)}</text>')
    if not any(v is not None for values in series.values() for v in values):
        parts.append(f'<text x="{WIDTH / 2}" y="{TOP + plot_h / 2}" font-size="13" text-anchor="middle" '
                     f'font-family="sans-serif" fill="#666">every period suppressed (groups too small)</text>')
    parts.append("</svg>")
    return "".join(parts)
