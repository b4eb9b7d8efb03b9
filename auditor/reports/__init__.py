"""The HTML audit reports: a chain index and a page per store for each business date.

:mod:`~auditor.reports.queries` reads the audit results, :mod:`~auditor.reports.figures` works
out what the pages show (pure), :mod:`~auditor.reports.charts` draws, :mod:`~auditor.reports.render`
holds the Jinja2 environment and :mod:`~auditor.reports.build` puts them together.
"""

from auditor.reports.build import NightReport, render_after_audit, write_night_reports

__all__ = ["NightReport", "render_after_audit", "write_night_reports"]
