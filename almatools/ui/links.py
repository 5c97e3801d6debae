"""Paths shown as links that open where the librarian works.

Under ``almatools lab`` a file in the served folder (the workspace) opens in JupyterLab
(``/lab/tree/PATH``, a new tab); under ``almatools app`` (Voila) it opens or downloads through Voila's
file handler (``/voila/files/PATH``; the command allows the kit's output types). Anywhere else
(a notebook run headless, a path outside the served folder) the path is shown as text.
"""

from __future__ import annotations

import html
from pathlib import Path
from urllib.parse import quote

from almatools.config import served_root, ui_mode

__all__ = ["file_href", "link_html", "show_path"]


def file_href(path: Path | str) -> str | None:
    """The URL that opens ``path`` in the running JupyterLab or Voila, or None when there is none."""
    mode, root = ui_mode(), served_root()
    if mode is None or root is None:
        return None
    target = Path(path).expanduser().absolute()
    try:
        relative = target.relative_to(root)
    except ValueError:
        try:  # the workspace may be reached through a symbolic link
            relative = target.resolve().relative_to(root.resolve())
        except ValueError:
            return None
    rel = quote(relative.as_posix())
    if mode == "lab":
        return f"/lab/tree/{rel}"
    return None if target.is_dir() else f"/voila/files/{rel}"


def link_html(path: Path | str, text: str | None = None) -> str:
    """An HTML link to ``path`` (see :func:`file_href`), or the path as code when it cannot be opened."""
    shown = html.escape(text if text is not None else str(path))
    href = file_href(path)
    if href is None:
        return f"<code>{shown}</code>"
    return (f'<a class="almatools-link" href="{html.escape(href)}" target="_blank" rel="noopener" '
            f'style="color:#0b5394;text-decoration:underline">{shown}</a>')


def show_path(path: Path | str, before: str = "", after: str = ""):
    """A notebook output: ``before``, the path as a link, ``after`` (an ``IPython.display.HTML``)."""
    from IPython.display import HTML

    return HTML(f"<p>{html.escape(before)}{link_html(path)}{html.escape(after)}</p>")
