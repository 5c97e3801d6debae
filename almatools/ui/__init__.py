"""Widget panels for the notebooks. Each ``build_*`` returns a widget and never displays itself, so a
panel can be driven headless in tests: set ``.value``, call ``.click()``, read the result widgets."""

from almatools.ui.banner import banner_html, banner_text, build_banner
from almatools.ui.bulk import BulkPanel, build_bulk_panel
from almatools.ui.convert import ConvertPanel, build_convert_panel
from almatools.ui.errors import show_errors_plainly
from almatools.ui.merge_review import build_merge_exports, build_merge_review, build_merge_verify
from almatools.ui.register import RegistrationForm, build_registration_form
from almatools.ui.search import build_user_search

__all__ = ["banner_html", "banner_text", "build_banner", "build_user_search", "build_registration_form", "build_convert_panel",
           "build_bulk_panel", "RegistrationForm", "ConvertPanel", "BulkPanel",
           "build_merge_review", "build_merge_exports", "build_merge_verify", "show_errors_plainly"]
