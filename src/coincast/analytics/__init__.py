"""Market analytics: per-coin statistics, risk measures, correlations and portfolio suggestions."""

from coincast.analytics.report import AnalyticsReport, build_report, period_returns

__all__ = ["AnalyticsReport", "build_report", "period_returns"]
