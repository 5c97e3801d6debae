"""Data-quality analysis: rules over patron records and SIS extracts, and duplicate linkage."""

from almatools.quality.catalog import RULES, Rule, Severity

__all__ = ["RULES", "Rule", "Severity"]
