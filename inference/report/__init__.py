"""Results people can look at: an HTML report with the lineage forest, summary numbers, the
CTC measures and every tracking error against ground truth, located in frame and space."""

from inference.report.build import Report, write_report
from inference.report.forest import ForestNode, Mark, layout_forest, plot_forest
from inference.report.summary import Summary, summarize
from inference.report.tracking_errors import ErrorAnalysis, TrackingError, analyse_errors

__all__ = [
    "ErrorAnalysis",
    "ForestNode",
    "Mark",
    "Report",
    "Summary",
    "TrackingError",
    "analyse_errors",
    "layout_forest",
    "plot_forest",
    "summarize",
    "write_report",
]
