"""Render ReportData as one self-contained HTML file: styles, script and data inline, no network."""

from __future__ import annotations

import html
import json
import os
from importlib import resources
from pathlib import Path

from prefkit.artifacts import now_iso
from prefkit.report.collect import ReportData

# the page may load nothing from anywhere: any request (font, script, image, fetch) is blocked
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:"
)


def _asset(name: str) -> str:
    return resources.files("prefkit.report").joinpath("assets", name).read_text(encoding="utf-8")


def embedded_json(value: object) -> str:
    """JSON safe inside a <script> element (no '</script>' or '<!--' can appear in it)."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def render_page(data: ReportData) -> str:
    """The whole HTML document for `data`."""
    title = html.escape(data.title)
    return "\n".join(
        [
            "<!doctype html>",
            '<html lang="en"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f'<meta http-equiv="Content-Security-Policy" content="{CONTENT_SECURITY_POLICY}">',
            f"<title>{title} · prefkit report</title>",
            f"<style>{_asset('report.css')}</style>",
            "</head><body>",
            f'<header><h1>{title}</h1><p class="source">{html.escape(data.source)} · generated {now_iso()} '
            "by <code>prefkit report</code></p></header>",
            '<nav id="tabs" role="tablist" aria-label="report views"></nav>',
            '<main id="view"></main>',
            f'<script id="report-data" type="application/json">{embedded_json(data.to_json())}</script>',
            f"<script>{_asset('report.js')}</script>",
            "</body></html>",
            "",
        ]
    )


def write_report(data: ReportData, out: Path) -> Path:
    """Write the page atomically (temp name, then rename) and return its path."""
    text = render_page(data)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(text, encoding="utf-8")  # UTF-8 whatever the locale: the page uses ✓ and ✗
    os.replace(tmp, out)
    return out
