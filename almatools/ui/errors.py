"""Errors of the kit shown on the page as a short message with what to do, never as a traceback.

A notebook calls :func:`show_errors_plainly` once, right after it connects. From then on an error of the
kit (:class:`~almatools.errors.AlmaToolsError`: Alma or the sandbox not answering, a file that cannot be
read, a broken policy file …) that stops a cell is shown as a red box saying what happened and what to
do next. In app mode (Voila) the page would otherwise show only "There was an error when executing cell
[4]. Please run Voila with --show_tracebacks=True", and in JupyterLab a traceback. Any other exception
is a bug of the kit and keeps its traceback.
"""

from __future__ import annotations

import html
import logging
from urllib.parse import urlsplit

from almatools.client import AlmaClient
from almatools.config import ui_mode
from almatools.errors import AlmaConnectionError, AlmaError, AlmaToolsError, AuthError

__all__ = ["error_message", "error_html", "show_errors_plainly"]

log = logging.getLogger(__name__)


def _again() -> str:
    """How to run the page again, in the words of where the librarian is."""
    mode = ui_mode()
    if mode == "app":
        return "then reload this page"
    if mode == "lab":
        return "then run the notebook again (Run > Run All Cells)"
    return "then run the notebook again"


def error_message(error: BaseException, client: AlmaClient | None = None, *, then: str | None = None) -> str:
    """What went wrong and what to do, in a librarian's words (never the API key: only the server's address).

    Args:
        error: the error that stopped the cell.
        client: the page's Alma client, if it has one (to tell the sandbox from production Alma).
        then: what to do once the cause is fixed (default: run the page again, in the words of where the
            librarian is), e.g. "then click Register again" on a form.
    """
    from almatools.registration import explain_alma_error

    again = then or _again()
    cause = error.__cause__
    while cause is not None and not isinstance(cause, AlmaError):
        cause = cause.__cause__
    if not isinstance(error, AlmaError) and cause is not None:
        # A step that failed because Alma did (a report run, a source read from the API): what to do is Alma's.
        return f"{error_message(cause, client, then=then)} (It stopped at: {error}.)"
    if isinstance(error, AlmaConnectionError):
        url = client.base_url if client is not None else ""
        if client is not None and client.environment == "SANDBOX":
            return (f"The sandbox at {url} does not answer: it has been stopped. Start it again (./kit app or "
                    f"./kit lab start it with the pages; almatools sandbox starts it alone), {again}. What "
                    "was saved before (journals, decisions, files) is kept.")
        host = urlsplit(url).hostname if url else "Alma"
        return (f"Alma ({host}) could not be reached, or the connection broke. Check the network connection, "
                f"{again}. What was saved before (journals, decisions, files) is kept; nobody is created twice.")
    if isinstance(error, AuthError):
        return ("Alma refused the API key (ALMA_API_KEY): it is wrong, expired, or not allowed the Users API. "
                f"Check it in the Developer Network, set it again before starting the kit, {again}.")
    if isinstance(error, AlmaError):
        return f"{explain_alma_error(error)} Then {again.removeprefix('then ')}."
    return str(error)


def error_html(error: BaseException, client: AlmaClient | None = None) -> str:
    """:func:`error_message` as the red box the page shows."""
    return ("<div class='almatools-error' role='alert' style='border-left:6px solid #c62828;background:#fdecea;"
            "padding:6px 12px;margin:4px 0'><b style='color:#c62828'>Stopped.</b> "
            f"{html.escape(error_message(error, client))}</div>")


def show_errors_plainly(client: AlmaClient | None = None) -> None:
    """From now on, show the kit's errors in this notebook as :func:`error_html`, without a traceback.

    Outside a notebook kernel (a script, the command line) it does nothing.

    Args:
        client: the page's Alma client, if it has one.
    """
    try:
        from IPython import get_ipython
        from IPython.display import HTML, display
    except ImportError:  # pragma: no cover - IPython comes with ipywidgets
        return
    shell = get_ipython()
    if shell is None:
        return

    def handler(_shell, etype, value, tb, tb_offset=None) -> list[str]:
        # The cell still counts as failed (Run All stops here), but what it shows is the message alone.
        log.info("stopped by %s: %s", etype.__name__, value)
        display(HTML(error_html(value, client)))
        return []

    shell.set_custom_exc((AlmaToolsError,), handler)
