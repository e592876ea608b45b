"""`prefkit report`: one self-contained HTML page for any artifact or iterate run folder."""

from __future__ import annotations

from pathlib import Path

from prefkit.report.collect import DEFAULT_MAX_PAIRS, RUN_CONFIG_FILE, ReportData, collect
from prefkit.report.page import render_page, write_report

__all__ = ["ReportData", "build_report", "collect", "default_report_path", "render_page", "write_report"]


def default_report_path(path: str | Path) -> Path:
    """RUN/report.html for an iterate run; NAME.report.html beside an artifact folder, because a file
    added inside a finished artifact would change its content hash (and every fingerprint built on it)."""
    path = Path(path)
    if (path / RUN_CONFIG_FILE).exists():
        return path / "report.html"
    return path.with_name(f"{path.name}.report.html")


def build_report(path: str | Path, out: str | Path | None = None, max_pairs: int = DEFAULT_MAX_PAIRS) -> Path:
    """Read `path` (validated first), then write its page to `out` (default: `default_report_path`)."""
    data = collect(path, max_pairs=max_pairs)
    return write_report(data, Path(out) if out is not None else default_report_path(path))
