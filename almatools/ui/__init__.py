"""Widget panels for the notebooks. Each ``build_*`` returns a widget and never displays itself, so a
panel can be driven headless in tests: set ``.value``, call ``.click()``, read the result widgets."""

from almatools.ui.banner import banner_text, build_banner
from almatools.ui.search import build_user_search

__all__ = ["banner_text", "build_banner", "build_user_search"]
