"""Data-quality analysis: rules over patron records and SIS extracts, and duplicate linkage.

    >>> result = analyse(load_users("users_export.zip"), load_sis("sis_extract.zip"), load_policy())  # doctest: +SKIP
    >>> write_outputs(result, "quality-report")                                                        # doctest: +SKIP
"""

from almatools.catalog import RULES, Rule, Severity
from almatools.quality.review import PairDecisions
from almatools.quality.rules import FINDING_COLUMNS, evaluate
from almatools.quality.run import DUPLICATE_COLUMNS, POSSIBLE_COLUMNS, QualityResult, analyse, write_outputs

__all__ = ["DUPLICATE_COLUMNS", "FINDING_COLUMNS", "POSSIBLE_COLUMNS", "PairDecisions", "QualityResult", "RULES",
           "Rule", "Severity", "analyse", "evaluate", "write_outputs"]
