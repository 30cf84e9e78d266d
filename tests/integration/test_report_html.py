"""``--html``: one self-contained page, charts as inline SVG; seen in a real browser.

The browser test takes a screenshot with headless Chromium (Debian:
``apt-get install chromium``) and counts the chart colours in it; without a
Chromium it skips.
"""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import zlib
from collections import Counter

import pytest
import samples

from flakehunt.report.html import BAD, COLORS, TRACK, HtmlReporter

CHROMIUM = next((p for p in (shutil.which(n) for n in ("chromium", "chromium-browser",
                                                       "google-chrome")) if p), None)


def test_page_is_self_contained():
    page = HtmlReporter().render(samples.result())
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert "default-src 'none'" in page  # nothing may be fetched or run
    assert not re.search(r"""(src|href)=["']?(https?:|//)""", page)
    assert "<link" not in page and "<script" not in page.lower()


def test_page_has_a_chart_per_flaky_test_by_profile_workers_and_order():
    page = HtmlReporter().render(samples.result())
    assert page.count('<svg class="chart"') == 1 + 3  # overview + flaky, flaky, failing
    race = page[page.index("<h2>tests/test_a.py::TestA::test_race</h2>"):]
    race = race[:race.index("</section>")]
    assert ["by profile", "by workers", "by order"] == re.findall(r">(by \w+)</text>", race)
    # single-core 0/2 -> an empty bar; none 1/2 -> half of the 300 px track
    assert '<title>profile none: failed 1/2</title>' in race
    assert f'width="150.0" height="16" fill="{BAD}"' in race
    assert "1/2 (50%)" in race and "0/2 (0%)" in race
    assert "python -m pytest &#x27;tests/test_a.py::TestA::test_race&#x27; --count=8" in race
    assert "same order, different outcome: timing decides" in race


def png_colours(data: bytes) -> Counter:
    """Count the RGB colours of an 8-bit, non-interlaced RGB(A) PNG (what Chromium writes)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, b"", None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = header
    assert depth == 8 and colour in (2, 6) and not interlace
    bpp = 3 if colour == 2 else 4
    raw, stride = zlib.decompress(idat), width * bpp
    prev, counts = bytearray(stride), Counter()
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1:start + 1 + stride])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], (prev[i - bpp] if i >= bpp else 0)
            if kind == 1:
                line[i] = (line[i] + a) & 255
            elif kind == 2:
                line[i] = (line[i] + b) & 255
            elif kind == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        counts.update(bytes(line[i:i + 3]) for i in range(0, stride, bpp))
        prev = line
    return counts


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium here (Debian: apt-get install chromium)")
def test_charts_render_in_headless_chromium(tmp_path):
    page = tmp_path / "report.html"
    page.write_text(HtmlReporter().render(samples.result()), encoding="utf-8")
    shot = tmp_path / "shot.png"
    proc = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
                           "--hide-scrollbars", "--window-size=1000,1600",
                           f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}",
                           page.as_uri()], capture_output=True, text=True, timeout=120,
                          check=False, stdin=subprocess.DEVNULL)
    assert shot.exists(), proc.stderr[-2000:]
    colours = png_colours(shot.read_bytes())
    rgb = {name: bytes.fromhex(value[1:]) for name, value in
           {"bad": BAD, "track": TRACK, "stable": COLORS["stable"],
            "failing": COLORS["failing"]}.items()}
    # failure-rate bars, their tracks, and the overview's stable and failing segments
    assert colours[rgb["bad"]] > 2000, colours.most_common(8)
    assert colours[rgb["track"]] > 2000, colours.most_common(8)
    assert colours[rgb["stable"]] > 500 and colours[rgb["failing"]] > 500
