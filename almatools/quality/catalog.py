"""The rule catalogue, kept under its old name for the sandbox's generator: see :mod:`almatools.catalog`."""

from almatools.catalog import ENTRY_RULES, RULES, Rule, Severity, entry_severity

__all__ = ["ENTRY_RULES", "RULES", "Rule", "Severity", "entry_severity"]
