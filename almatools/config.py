"""Configuration: the one place that reads the environment.

Variables:
    ALMA_API_KEY: the Alma API key. When unset, the kit works against the local sandbox.
    ALMA_REGION: ``na``, ``eu``, ``ap``, ``aps``, ``ca`` or ``cn`` (default ``na``).
    ALMA_BASE_URL: an explicit base URL ending in ``/almaws/v1`` (wins over ALMA_REGION).
    ALMA_PER_SECOND: the client's throttle in calls per second (default 25).
    ALMATOOLS_POLICY: path of the institution's policy file (TOML).
    ALMATOOLS_DATA: folder that holds the sandbox's data (default ``~/.local/share/almatools``).
    ALMATOOLS_WORKSPACE: the workspace folder where the notebooks' outputs land by default (reports, merge
        worklists and exports, merge requests, quality exports); default ``work/`` in the kit's checkout,
        else ``$ALMATOOLS_DATA/work``. ``almatools lab`` and ``almatools app`` set it for their kernels.
    ALMATOOLS_UI: ``lab`` or ``app``, set by those commands so that notebooks print links that open there.
    ALMATOOLS_SERVER_ROOT: the folder JupyterLab or Voila serves (links are made relative to it).
    ALMATOOLS_CACHE: the folder of the parse cache (default ``$XDG_CACHE_HOME/almatools``, else
        ``~/.cache/almatools``), or ``off`` for none (:mod:`almatools.sources.cache`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from almatools.errors import ConfigError

__all__ = ["REGIONS", "Settings", "region_url", "region_of", "check_base_url", "data_home", "is_loopback_url",
           "policy_file", "cache_home",
           "workspace", "served_root", "ui_mode", "child_environment", "CHECKOUT"]

# The kit's checkout, when the package runs from one (an editable install): it has the notebooks.
_PARENT = Path(__file__).resolve().parent.parent
CHECKOUT: Path | None = _PARENT if (_PARENT / "notebooks").is_dir() and (_PARENT / "pyproject.toml").is_file() else None

# Alma's API gateways, from the Users OpenAPI spec. China is on .com.cn.
REGIONS: dict[str, str] = {
    "na": "https://api-na.hosted.exlibrisgroup.com/almaws/v1",
    "eu": "https://api-eu.hosted.exlibrisgroup.com/almaws/v1",
    "ap": "https://api-ap.hosted.exlibrisgroup.com/almaws/v1",
    "aps": "https://api-aps.hosted.exlibrisgroup.com/almaws/v1",
    "ca": "https://api-ca.hosted.exlibrisgroup.com/almaws/v1",
    "cn": "https://api-cn.hosted.exlibrisgroup.com.cn/almaws/v1",
}
DEFAULT_PER_SECOND = 25.0


def region_url(region: str) -> str:
    """The base URL of an Alma region code.

    Raises:
        ConfigError: for an unknown region, naming the allowed ones.
    """
    key = region.strip().lower()
    if key not in REGIONS:
        raise ConfigError(f"Unknown Alma region {region!r}: use one of {', '.join(REGIONS)} "
                          "(ALMA_REGION), or set ALMA_BASE_URL to a URL ending in /almaws/v1.")
    return REGIONS[key]


def _shown_url(parts) -> str:
    """A URL as it may appear in a message: without its query, fragment or user name and password (where
    an ``apikey=`` copied from Alma's documentation would sit)."""
    host = parts.hostname or ""
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    return f"{parts.scheme}://{host}{port}{parts.path}" if parts.scheme else parts.path


def check_base_url(url: str) -> str:
    """Validate an explicit base URL and return it without a trailing slash.

    A query string (Alma's documentation shows calls with ``?apikey=…``), a fragment or a user name is
    refused: the base URL is shown in banners, ``repr`` and error messages, and every path is appended to
    it, so a key there would leak and every call would break. The message never repeats those parts.
    """
    url = url.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ConfigError(f"ALMA_BASE_URL {_shown_url(parts)!r} carries a query string, a fragment or a user name: "
                          "give the base URL alone, ending in /almaws/v1, and the key in ALMA_API_KEY (the kit "
                          "sends it in a header).")
    if parts.scheme not in ("http", "https") or not parts.netloc or not parts.path.endswith("/almaws/v1"):
        raise ConfigError(f"ALMA_BASE_URL {_shown_url(parts)!r} is not usable: give a full http(s) URL ending in "
                          "/almaws/v1, e.g. https://api-eu.hosted.exlibrisgroup.com/almaws/v1")
    return url


def is_loopback_url(url: str) -> bool:
    """True for URLs on this machine (the local sandbox), False for a hosted Alma."""
    host = (urlsplit(url).hostname or "").lower()
    return host in ("localhost", "::1") or host.startswith("127.")


def region_of(url: str) -> str | None:
    """The region code of a hosted Alma URL, or None (sandbox, proxy, unknown host)."""
    for code, base in REGIONS.items():
        if urlsplit(base).hostname == urlsplit(url).hostname:
            return code
    return None


def data_home(environ: Mapping[str, str] | None = None) -> Path:
    """Folder for the kit's local data (the sandbox's SQLite store, its SIS extract)."""
    env = os.environ if environ is None else environ
    if env.get("ALMATOOLS_DATA"):
        return Path(env["ALMATOOLS_DATA"]).expanduser()
    xdg = env.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(xdg) / "almatools"


def cache_home(environ: Mapping[str, str] | None = None) -> Path | None:
    """Folder of the parse cache, or None when ``ALMATOOLS_CACHE`` is ``off`` (also ``0``, ``no``, ``false``)."""
    env = os.environ if environ is None else environ
    value = (env.get("ALMATOOLS_CACHE") or "").strip()
    if value.lower() in ("off", "0", "no", "false", "none"):
        return None
    if value:
        return Path(value).expanduser()
    xdg = env.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "almatools"


def workspace(environ: Mapping[str, str] | None = None) -> Path:
    """The workspace folder: where reports, merge worklists and exports, merge requests and quality
    exports land unless a notebook or command is told otherwise (JupyterLab opens on it).

    ``ALMATOOLS_WORKSPACE`` when set; else ``work/`` in the kit's checkout (git-ignored); else
    ``work`` under :func:`data_home`. The folder is not created here.
    """
    env = os.environ if environ is None else environ
    if env.get("ALMATOOLS_WORKSPACE"):
        return Path(env["ALMATOOLS_WORKSPACE"]).expanduser().absolute()
    if CHECKOUT is not None:
        return CHECKOUT / "work"
    return data_home(env) / "work"


def ui_mode(environ: Mapping[str, str] | None = None) -> str | None:
    """``lab`` or ``app`` when the kernel was started by ``almatools lab`` / ``almatools app``, else None."""
    env = os.environ if environ is None else environ
    mode = (env.get("ALMATOOLS_UI") or "").strip().lower()
    return mode if mode in ("lab", "app") else None


def served_root(environ: Mapping[str, str] | None = None) -> Path | None:
    """The folder the JupyterLab or Voila server serves (set by ``almatools lab|app``), else None."""
    env = os.environ if environ is None else environ
    root = env.get("ALMATOOLS_SERVER_ROOT")
    return Path(root).expanduser().absolute() if root else None


def child_environment(updates: Mapping[str, str] | None = None, *,
                      prepend: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment with ``updates``, and with ``prepend``'s folders put first on those
    path variables (e.g. ``JUPYTER_PATH``): for the servers the command line starts."""
    env = {**os.environ, **(updates or {})}
    for name, folder in (prepend or {}).items():
        env[name] = os.pathsep.join(p for p in (folder, env.get(name, "")) if p)
    return env


@dataclass(frozen=True)
class Settings:
    """What the environment says. ``api_key`` is kept out of ``repr``."""

    api_key: str | None = field(default=None, repr=False)
    base_url: str = REGIONS["na"]
    per_second: float = DEFAULT_PER_SECOND

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read the ALMA_* and ALMATOOLS_* variables (see the module docstring).

        Raises:
            ConfigError: a variable has a value that cannot be used; the message says which and why.
        """
        env = os.environ if environ is None else environ
        key = (env.get("ALMA_API_KEY") or "").strip() or None
        if env.get("ALMA_BASE_URL"):
            base = check_base_url(env["ALMA_BASE_URL"])
        else:
            base = region_url(env.get("ALMA_REGION") or "na")
        raw_rate = env.get("ALMA_PER_SECOND")
        try:
            rate = float(raw_rate) if raw_rate else DEFAULT_PER_SECOND
        except ValueError:
            rate = -1.0
        if not rate > 0:
            raise ConfigError(f"ALMA_PER_SECOND={raw_rate!r} is not usable: give a positive number of calls per second, e.g. 25")
        return cls(api_key=key, base_url=base, per_second=rate)


def policy_file(environ: Mapping[str, str] | None = None) -> Path | None:
    """The policy file ``ALMATOOLS_POLICY`` names, or None (the kit's default policy is then used)."""
    env = os.environ if environ is None else environ
    value = (env.get("ALMATOOLS_POLICY") or "").strip()
    return Path(value).expanduser() if value else None
