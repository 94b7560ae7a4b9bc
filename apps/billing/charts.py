"""Server-side SVG charts for the usage pages: stacked bars per day, drawn here so the console
loads no charting script and no CDN.

Every label passes through `escape` (agent and model names are user data), and each chart is
an accessible image: `role="img"` named by its <title> and <desc> (a summary of the figures),
and every bar segment has a <title> of its own that browsers show on hover and screen readers read.
"""

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from foundry.text import text_shown

# Colour-blind-safe (Okabe-Ito), then grey for what is lumped together as "other".
PALETTE = ("#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#f0e442", "#000000")
OTHER_COLOUR = "#9aa5b1"
OTHER = "other"

WIDTH, PLOT_HEIGHT = 720, 220
LEFT, RIGHT, TOP, AXIS = 64, 12, 12, 28
LEGEND_ROW, LEGEND_COLUMN, LEGEND_CHARS = 20, 176, 22


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[float]  # one per category
    other: bool = False  # the lump of the smaller series: drawn grey


def compact(value: float) -> str:
    """1234 -> "1.2k", 5_000_000 -> "5M"."""
    for size, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= size:
            return f"{value / size:.1f}".removesuffix(".0") + suffix
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.2f}"


def usd(value: float) -> str:
    if value and abs(value) < 0.01:
        return f"${value:.4f}"
    return "$" + (compact(value) if abs(value) >= 1000 else f"{value:,.2f}")


def nice_ticks(maximum: float, count: int = 4) -> list[float]:
    """Round axis values from 0 to at least `maximum` (1, 2 or 5 times a power of ten apart)."""
    if maximum <= 0:
        return [0.0, 1.0]
    raw = maximum / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    return [step * i for i in range(math.ceil(maximum / step - 1e-9) + 1)]


def top_series(rows: Sequence[dict], *, categories: Sequence, measure: str, keep: int = 7) -> list[Series]:
    """Rows of `usage_daily` as series per key over `categories` (days), the `keep` largest by
    total and the rest lumped into "other"."""
    index = {category: i for i, category in enumerate(categories)}
    by_key: dict[str, list[float]] = {}
    for row in rows:
        if row["day"] in index:
            values = by_key.setdefault(row["key"], [0.0] * len(categories))
            values[index[row["day"]]] += float(row[measure])
    ranked = sorted(by_key.items(), key=lambda item: (-sum(item[1]), item[0]))
    series = [Series(name, values) for name, values in ranked[:keep]]
    rest = ranked[keep:]
    if rest:
        lumped = [sum(values[i] for _, values in rest) for i in range(len(categories))]
        series.append(Series(f"{OTHER} ({len(rest)})", lumped, other=True))
    return series


def stacked_bars(
    *,
    chart_id: str,
    title: str,
    categories: Sequence[str],
    series: Sequence[Series],
    value_format: Callable[[float], str] = compact,
) -> SafeString:
    """An SVG of one bar per category, its series stacked in order, with a y axis, category
    labels (thinned to fit) and a legend. Names are shown with their text-direction and control
    characters escaped (`\\u202e`): a model's name would otherwise reverse the figure beside it."""
    categories = [text_shown(category) for category in categories]
    series = [Series(text_shown(s.name), s.values, s.other) for s in series]
    count = max(len(categories), 1)
    totals = [sum(s.values[i] for s in series) for i in range(len(categories))]
    ticks = nice_ticks(max(totals, default=0))
    top = ticks[-1]
    plot_width = WIDTH - LEFT - RIGHT
    slot = plot_width / count
    bar = max(slot * 0.72, 1.0)
    per_row = max((WIDTH - LEFT) // LEGEND_COLUMN, 1)
    legend_rows = math.ceil(len(series) / per_row)
    height = TOP + PLOT_HEIGHT + AXIS + legend_rows * LEGEND_ROW + 8

    def y(value: float) -> float:
        return TOP + PLOT_HEIGHT - (value / top) * PLOT_HEIGHT

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {WIDTH} {height}" role="img"'
        f' aria-labelledby="{chart_id}-title {chart_id}-desc" data-chart="{escape(chart_id)}">',
        f'<title id="{chart_id}-title">{escape(title)}</title>',
        f'<desc id="{chart_id}-desc">{escape(_describe(categories, series, totals, value_format))}</desc>',
    ]
    for tick in ticks:  # grid and y axis labels
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" class="grid"/>'
            f'<text x="{LEFT - 6}" y="{y(tick) + 4:.1f}" text-anchor="end" class="tick">'
            f"{escape(value_format(tick))}</text>"
        )
    colours = _colours(series)
    # Each segment outlined in white: neighbours of close hues stay apart (WCAG 1.4.11).
    for i, category in enumerate(categories):
        x = LEFT + i * slot + (slot - bar) / 2
        base = 0.0
        for s, colour in zip(series, colours, strict=True):
            value = s.values[i]
            if value <= 0:
                continue
            label = f"{category} · {s.name}: {value_format(value)}"
            parts.append(
                f'<rect x="{x:.1f}" y="{y(base + value):.1f}" width="{bar:.1f}"'
                f' height="{max(y(base) - y(base + value), 0.5):.1f}" fill="{colour}" stroke="#ffffff">'
                f"<title>{escape(label)}</title></rect>"
            )
            base += value
    step = max(math.ceil(len(categories) / 8), 1)
    for i in range(0, len(categories), step):  # category labels, thinned to about eight
        x = LEFT + i * slot + slot / 2
        parts.append(
            f'<text x="{x:.1f}" y="{TOP + PLOT_HEIGHT + 18}" text-anchor="middle" class="tick">'
            f"{escape(categories[i])}</text>"
        )
    parts.append(f'<line x1="{LEFT}" x2="{LEFT}" y1="{TOP}" y2="{TOP + PLOT_HEIGHT}" class="axis"/>')
    if not series:
        parts.append(
            f'<text x="{LEFT + plot_width / 2:.1f}" y="{TOP + PLOT_HEIGHT / 2:.1f}" text-anchor="middle"'
            ' class="empty">No usage in this period.</text>'
        )
    for n, (s, colour) in enumerate(zip(series, colours, strict=True)):  # the legend
        lx = LEFT + (n % per_row) * LEGEND_COLUMN
        ly = TOP + PLOT_HEIGHT + AXIS + (n // per_row) * LEGEND_ROW
        name = s.name if len(s.name) <= LEGEND_CHARS else s.name[: LEGEND_CHARS - 1] + "…"
        parts.append(
            f'<g class="legend"><rect x="{lx}" y="{ly}" width="12" height="12" fill="{colour}"/>'
            f'<text x="{lx + 18}" y="{ly + 11}"><title>{escape(s.name)}</title>{escape(name)}</text></g>'
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every text above went through escape()


def series_table(
    *, chart_id: str, title: str, categories: Sequence[str], series: Sequence[Series], value_format=compact
) -> SafeString:
    """The chart's figures as a table (a day per row, a series per column, and the day's total),
    folded under its chart: which series a bar segment belongs to is told by its colour and the
    legend's, so the table says it in text (WCAG 1.4.1), and a reader can compare days exactly."""
    categories = [text_shown(category) for category in categories]
    series = [Series(text_shown(s.name), s.values, s.other) for s in series]
    head = "".join(f'<th scope="col" class="num">{escape(s.name)}</th>' for s in series)
    rows = []
    for i, category in enumerate(categories):
        cells = "".join(f'<td class="num">{escape(value_format(s.values[i]))}</td>' for s in series)
        total = value_format(sum(s.values[i] for s in series))
        rows.append(f'<tr><th scope="row">{escape(category)}</th>{cells}<td class="num">{escape(total)}</td></tr>')
    return mark_safe(  # noqa: S308 - every text went through escape()
        f'<details class="chart-data" data-testid="{escape(chart_id)}-table">'
        f"<summary>{escape(title)}: the figures</summary>"
        f'<div class="scroll"><table><caption class="visually-hidden">{escape(title)}</caption>'
        f'<thead><tr><th scope="col">Day</th>{head}<th scope="col" class="num">Total</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div></details>"
    )


def _colours(series: Sequence[Series]) -> list[str]:
    colours, n = [], 0
    for s in series:
        if s.other:
            colours.append(OTHER_COLOUR)
        else:
            colours.append(PALETTE[n % len(PALETTE)])
            n += 1
    return colours


def _describe(categories, series, totals, value_format) -> str:
    if not series:
        return "No usage in this period."
    span = f"{categories[0]} to {categories[-1]}" if categories else ""
    largest = ", ".join(f"{s.name} {value_format(sum(s.values))}" for s in series[:3])
    return f"{span}: {value_format(sum(totals))} in all; largest: {largest}."
