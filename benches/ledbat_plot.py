#!/usr/bin/env python3
"""Draws the CSV of tests/ledbat.rs (second, utp_mbit, tcp_mbit, queue_ms) as a PNG: the two
flows' rates above, the queuing delay below with LEDBAT's 100 ms target. Needs only Python's
standard library and ImageMagick's `convert` (its drawing primitives, no SVG delegate).

    RIVULET_LEDBAT_CSV=/tmp/ledbat.csv cargo test --test ledbat -- --nocapture
    python3 benches/ledbat_plot.py /tmp/ledbat.csv benches/ledbat.png
"""
import csv
import math
import subprocess
import sys

FONT = '/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf'
W, H = 960, 600
LEFT, RIGHT = 70, 20
TOP_PANEL = (40, 300)      # y range of the rate panel (top, bottom)
LOW_PANEL = (360, 540)     # y range of the delay panel
UTP, TCP, DELAY = '#1f77b4', '#d62728', '#2ca02c'


def main(src, dst):
    rows = [r for r in csv.DictReader(open(src))]
    t = [float(r['second']) for r in rows]
    utp = [float(r['utp_mbit']) for r in rows]
    tcp = [float(r['tcp_mbit']) for r in rows]
    queue = [float(r['queue_ms']) for r in rows]
    t_max = max(t)
    rate_max = 25.0
    delay_max = max(350.0, max((q for q in queue if not math.isnan(q)), default=0))

    def x(sec):
        return LEFT + (W - LEFT - RIGHT) * sec / t_max

    def y(value, top, bottom, vmax):
        return bottom - (bottom - top) * min(value, vmax) / vmax

    draw = []

    def text(px, py, s, size=13, color='black'):
        draw.extend(['-stroke', 'none', '-fill', color, '-pointsize', str(size),
                     '-draw', "text %d,%d '%s'" % (px, py, s)])

    def line(points, color, width=2, dash=None):
        pts = ' '.join('%.1f,%.1f' % p for p in points)
        args = ['-fill', 'none', '-stroke', color, '-strokewidth', str(width)]
        if dash:
            args += ['-draw', 'stroke-dasharray %s polyline %s' % (dash, pts)]
        else:
            args += ['-draw', 'polyline %s' % pts]
        draw.extend(args)

    # TCP's period, shaded in both panels.
    on = [s for s, v in zip(t, tcp) if v > 0.5]
    if on:
        for top, bottom in (TOP_PANEL, LOW_PANEL):
            draw.extend(['-stroke', 'none', '-fill', '#f3f3f3', '-draw',
                         'rectangle %.1f,%d %.1f,%d' % (x(min(on) - 1), top, x(max(on)), bottom)])
    for top, bottom, vmax, step, unit in ((*TOP_PANEL, rate_max, 5, 'Mbit/s'),
                                         (*LOW_PANEL, delay_max, 100, 'ms')):
        line([(LEFT, top), (LEFT, bottom), (W - RIGHT, bottom)], 'black', 1)
        v = 0
        while v <= vmax:
            yy = y(v, top, bottom, vmax)
            line([(LEFT - 4, yy), (LEFT, yy)], 'black', 1)
            text(8, yy + 4, '%d %s' % (v, unit), 11)
            v += step
    for sec in range(0, int(t_max) + 1, 5):
        line([(x(sec), LOW_PANEL[1]), (x(sec), LOW_PANEL[1] + 4)], 'black', 1)
        text(x(sec) - 6, LOW_PANEL[1] + 18, str(sec), 11)
    text(W // 2 - 20, LOW_PANEL[1] + 38, 'seconds', 12)

    line([(x(s), y(v, *TOP_PANEL, rate_max)) for s, v in zip(t, utp)], UTP)
    line([(x(s), y(v, *TOP_PANEL, rate_max)) for s, v in zip(t, tcp)], TCP)
    line([(x(s), y(q, *LOW_PANEL, delay_max)) for s, q in zip(t, queue) if not math.isnan(q)], DELAY)
    target = y(100, *LOW_PANEL, delay_max)
    line([(LEFT, target), (W - RIGHT, target)], 'gray', 1, '6 4')

    text(LEFT, 24, 'uTP (LEDBAT) and a TCP flow (cubic) through 20 Mbit/s, 25 ms each way, 300 ms buffer', 14)
    text(W - 300, TOP_PANEL[0] + 18, 'uTP', 13, UTP)
    text(W - 250, TOP_PANEL[0] + 18, 'TCP (shaded: while it runs)', 13, TCP)
    text(LEFT + 10, LOW_PANEL[0] - 8, 'queuing delay (RTT probes minus the idle RTT); dashed: the 100 ms target', 12, DELAY)
    subprocess.run(['convert', '-size', '%dx%d' % (W, H), 'xc:white', '-font', FONT] + draw + [dst],
                   check=True)


if __name__ == '__main__':
    main(sys.argv[1], sys.argv[2])
