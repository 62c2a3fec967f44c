"""Draws scripts/bench.sh's results table as an SVG bar chart.

    python3 scripts/bench/plot.py TABLE.md OUT.svg [SUBTITLE]

TABLE.md is the markdown table scripts/bench/table.py writes (or any file
holding it, such as target/bench/results.md: lines outside the table are
ignored, except that a line starting "Measured" becomes the subtitle when
none is given). One panel per column (TCP send, TCP recv, 1-byte RR/s,
conn/s, UDP 64 B and 1400 B dgram/s, CPU s/GiB), one bar per row: kernel,
ustack, shim and smoltcp. A figure the table gives as "n/a" (or as a note)
is drawn as "n/a" with no bar. The ratio rows are not drawn.

Plain python3, standard library only.
"""

import html
import math
import sys

# (key, how a row's label is recognised, legend text, colour)
SERIES = [
    ("kernel", lambda l: l.startswith("kernel"), "kernel ↔ kernel (veth)", "#7f7f7f"),
    ("ustack", lambda l: l.startswith("ustack"), "ustack library", "#1f77b4"),
    ("shim", lambda l: "shim" in l, "iperf3 under the shim", "#2ca02c"),
    ("smoltcp", lambda l: l.startswith("smoltcp"), "smoltcp", "#ff7f0e"),
]

PANEL_W, PANEL_H = 250, 210
COLS_PER_LINE = 4
MARGIN = 20
HEADER = 78


def parse_number(cell):
    text = cell.strip().replace(",", "").rstrip("x")
    try:
        return float(text)
    except ValueError:
        return None


def load(path):
    """The column headers, {series key: [value or None per column]}, and the
    first line starting with "Measured" (or None)."""
    columns, values, measured = None, {}, None
    for line in open(path, encoding="utf-8"):
        line = line.strip()
        if line.startswith("Measured") and measured is None:
            measured = line
        if not line.startswith("|"):
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        if columns is None:
            columns = cells[1:]
            continue
        if set(cells[0]) <= set("-: "):
            continue
        label = cells[0]
        if label.startswith("ratio"):
            continue
        for key, matches, _, _ in SERIES:
            if matches(label) and key not in values:
                values[key] = [parse_number(c) for c in cells[1:]]
                break
    if columns is None:
        sys.exit(f"plot.py: no table in {path}")
    return columns, values, measured


def nice_max(v):
    """A round axis maximum with some room above v."""
    if v <= 0:
        return 1.0
    mag = 10 ** math.floor(math.log10(v))
    for m in (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10, 12):
        if m * mag >= v * 1.12:
            return m * mag
    return v * 1.2


def fmt(v):
    if v >= 1000:
        return f"{v:,.0f}"
    if v >= 100:
        return f"{v:.0f}"
    return f"{v:.2f}"


def text(x, y, s, size=11, anchor="middle", weight="normal", fill="#222"):
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" '
        f'font-weight="{weight}" fill="{fill}">{html.escape(s)}</text>'
    )


def panel(x0, y0, title, series):
    """One column's panel: title, axis, one bar per series."""
    out = [
        f'<rect x="{x0}" y="{y0}" width="{PANEL_W - 10}" height="{PANEL_H - 10}" '
        'fill="#fafafa" stroke="#ddd"/>'
    ]
    lower = "CPU" in title
    out.append(text(x0 + (PANEL_W - 10) / 2, y0 + 18, title, 12, weight="bold"))
    if lower:
        out.append(text(x0 + (PANEL_W - 10) / 2, y0 + 32, "(lower is better)", 10, fill="#666"))
    plot_top, plot_bottom = y0 + 48, y0 + PANEL_H - 30
    left, right = x0 + 12, x0 + PANEL_W - 22
    present = [v for _, v, _ in series if v is not None]
    top = nice_max(max(present)) if present else 1.0
    out.append(
        f'<line x1="{left}" y1="{plot_bottom}" x2="{right}" y2="{plot_bottom}" stroke="#999"/>'
    )
    slot = (right - left) / len(series)
    bar_w = slot * 0.62
    for i, (key, value, colour) in enumerate(series):
        cx = left + slot * (i + 0.5)
        if value is None:
            out.append(text(cx, plot_bottom - 6, "n/a", 10, fill="#888"))
        else:
            h = (plot_bottom - plot_top) * value / top
            out.append(
                f'<rect x="{cx - bar_w / 2:.1f}" y="{plot_bottom - h:.1f}" width="{bar_w:.1f}" '
                f'height="{h:.1f}" fill="{colour}"><title>{html.escape(key)}: '
                f"{html.escape(fmt(value))}</title></rect>"
            )
            out.append(text(cx, plot_bottom - h - 4, fmt(value), 10))
        out.append(text(cx, plot_bottom + 14, key, 10, fill="#444"))
    return out


def render(columns, values, subtitle):
    lines = (len(columns) + COLS_PER_LINE - 1) // COLS_PER_LINE
    width = MARGIN * 2 + PANEL_W * COLS_PER_LINE
    height = HEADER + PANEL_H * lines + MARGIN
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        text(MARGIN, 26, "ustack benchmark: scripts/bench.sh", 16, "start", "bold"),
    ]
    if subtitle:
        out.append(text(MARGIN, 44, subtitle[:150], 10, "start", fill="#555"))
    lx = MARGIN
    for key, _, legend, colour in SERIES:
        out.append(f'<rect x="{lx}" y="56" width="12" height="12" fill="{colour}"/>')
        out.append(text(lx + 17, 66, legend, 11, "start"))
        lx += 24 + 7 * len(legend)
    for i, title in enumerate(columns):
        x0 = MARGIN + PANEL_W * (i % COLS_PER_LINE)
        y0 = HEADER + PANEL_H * (i // COLS_PER_LINE)
        series = [
            (key, (values.get(key) or [None] * len(columns))[i], colour)
            for key, _, _, colour in SERIES
        ]
        out.extend(panel(x0, y0, title, series))
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main():
    if len(sys.argv) not in (3, 4):
        sys.exit("usage: plot.py TABLE.md OUT.svg [SUBTITLE]")
    columns, values, measured = load(sys.argv[1])
    subtitle = sys.argv[3] if len(sys.argv) == 4 else measured
    with open(sys.argv[2], "w", encoding="utf-8") as f:
        f.write(render(columns, values, subtitle))


if __name__ == "__main__":
    main()
