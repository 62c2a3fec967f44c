"""Turns scripts/bench.sh's raw measurements into one markdown table.

Input lines: `ROW KEY VALUE`, where KEY is one of send, recv (Gbit/s of one
bulk run), rr, crr, udp64, udp1400 (per second, one run), bytes and cpu (of
one bulk run, summed into CPU seconds per GiB), or note (free text shown in
place of every figure). Medians are taken over the runs of each KEY. The
row `passthrough` (keys pt_plain, pt_shim: microseconds of one `dd` run;
pt_calls: its system calls) becomes a line under the table.
"""

import statistics
import sys

ROWS = [
    ("kernel", "kernel ↔ kernel, veth between two namespaces"),
    ("ustack", "ustack library ↔ kernel, TUN"),
    ("shim", "iperf3 under the ustack shim ↔ kernel iperf3, TUN"),
    ("smoltcp", "smoltcp {smoltcp} ↔ kernel, TUN"),
]
COLS = [
    ("send", "TCP send Gbit/s", "{:.2f}"),
    ("recv", "TCP recv Gbit/s", "{:.2f}"),
    ("rr", "1-byte RR/s", "{:,.0f}"),
    ("crr", "conn/s", "{:,.0f}"),
    ("udp64", "UDP 64 B dgram/s", "{:,.0f}"),
    ("udp1400", "UDP 1400 B dgram/s", "{:,.0f}"),
    ("cpu_gib", "CPU s/GiB", "{:.2f}"),
]


def load(path):
    runs, notes = {}, {}
    for line in open(path, encoding="utf-8"):
        parts = line.rstrip("\n").split(" ", 2)
        if len(parts) != 3:
            continue
        row, key, value = parts
        if key == "note":
            notes[row] = value
        else:
            runs.setdefault(row, {}).setdefault(key, []).append(float(value))
    figures = {}
    for row, keys in runs.items():
        fig = {k: statistics.median(v) for k, v in keys.items() if k not in ("bytes", "cpu")}
        gib = sum(keys.get("bytes", [])) / 2**30
        if gib > 0 and keys.get("cpu"):
            fig["cpu_gib"] = sum(keys["cpu"]) / gib
        figures[row] = fig
    return figures, notes


def main():
    raw, out, smoltcp = sys.argv[1], sys.argv[2], sys.argv[3]
    figures, notes = load(raw)
    lines = [
        "| stack under test ↔ peer | " + " | ".join(c[1] for c in COLS) + " |",
        "| --- |" + " ---: |" * len(COLS),
    ]
    for row, label in ROWS:
        label = label.format(smoltcp=smoltcp)
        fig = figures.get(row, {})
        cells = []
        for key, _, fmt in COLS:
            if key in fig:
                cells.append(fmt.format(fig[key]))
            else:
                cells.append(notes.get(row, "n/a"))
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    for other in ("kernel", "smoltcp"):
        a, b = figures.get("ustack", {}), figures.get(other, {})
        cells = []
        for key, _, _ in COLS:
            if a.get(key) and b.get(key):
                cells.append(f"{a[key] / b[key]:.2f}x")
            else:
                cells.append("n/a")
        lines.append(f"| ratio ustack / {other} | " + " | ".join(cells) + " |")
    pt = figures.get("passthrough", {})
    if pt.get("pt_plain") and pt.get("pt_shim"):
        plain, shim = pt["pt_plain"], pt["pt_shim"]
        calls = pt.get("pt_calls", 0)
        lines.append("")
        lines.append(
            f"Shim pass-through, `dd bs=1` ({calls:,.0f} read/write calls on"
            f" non-socket fds), median wall time: plain {plain / 1e3:.1f} ms,"
            f" under the shim {shim / 1e3:.1f} ms, ratio {shim / plain:.3f}"
            f" ({(shim / plain - 1) * 100:+.1f}%)."
        )
    elif "passthrough" in notes:
        lines.append("")
        lines.append(f"Shim pass-through: {notes['passthrough']}.")
    text = "\n".join(lines) + "\n"
    with open(out, "w", encoding="utf-8") as f:
        f.write(text)
    print(text, end="")


if __name__ == "__main__":
    main()
