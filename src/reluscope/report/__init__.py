"""One self-contained HTML report; analyses add sections through `section`."""

from ._build import SECTION_MODULES, Report, SectionOutcome, build_report
from ._html import figure_html, paragraph, table_html
from ._registry import Claim, NotApplicable, ReportContext, Section, section

__all__ = ["Claim", "NotApplicable", "Report", "ReportContext", "SECTION_MODULES", "Section",
           "SectionOutcome", "build_report", "figure_html", "paragraph", "section", "table_html"]
