"""Configuration from the environment: regions, base URLs, the throttle, and the key kept out of sight."""

from pathlib import Path

import pytest

from almatools.config import REGIONS, Settings, cache_home, is_loopback_url, region_of
from almatools.errors import ConfigError


@pytest.mark.parametrize("region", sorted(REGIONS))
def test_every_region_has_its_gateway(region):
    settings = Settings.from_env({"ALMA_REGION": region.upper(), "ALMA_API_KEY": "k"})
    assert settings.base_url == REGIONS[region]
    assert settings.base_url.endswith("/almaws/v1")
    assert region_of(settings.base_url) == region


def test_china_is_on_com_cn():
    assert Settings.from_env({"ALMA_REGION": "cn"}).base_url == "https://api-cn.hosted.exlibrisgroup.com.cn/almaws/v1"


def test_unknown_region_names_the_allowed_ones():
    with pytest.raises(ConfigError, match="na, eu, ap, aps, ca, cn"):
        Settings.from_env({"ALMA_REGION": "mars"})


def test_base_url_wins_over_region_and_must_end_in_almaws():
    s = Settings.from_env({"ALMA_REGION": "eu", "ALMA_BASE_URL": "http://127.0.0.1:9/almaws/v1/"})
    assert s.base_url == "http://127.0.0.1:9/almaws/v1"
    with pytest.raises(ConfigError, match="/almaws/v1"):
        Settings.from_env({"ALMA_BASE_URL": "https://example.org/api"})


@pytest.mark.parametrize("url", [
    "https://api-eu.hosted.exlibrisgroup.com/almaws/v1?apikey=l8xxSECRET",  # as in Alma's documented calls
    "https://api-eu.hosted.exlibrisgroup.com/almaws/v1/?format=json&apikey=l8xxSECRET",
    "https://me:l8xxSECRET@api-eu.hosted.exlibrisgroup.com/almaws/v1",
    "https://api-eu.hosted.exlibrisgroup.com/almaws/v1#apikey=l8xxSECRET",
    "https://api-eu.hosted.exlibrisgroup.com/almaws/v2?apikey=l8xxSECRET",  # unusable anyway: still not echoed
])
def test_a_base_url_with_a_key_in_it_is_refused_without_repeating_the_key(url):
    from almatools.client import AlmaClient

    with pytest.raises(ConfigError) as err:
        Settings.from_env({"ALMA_BASE_URL": url})
    assert "l8xxSECRET" not in str(err.value)
    assert "api-eu.hosted.exlibrisgroup.com/almaws/v" in str(err.value)  # says which setting is meant
    with pytest.raises(ConfigError) as err:
        AlmaClient(api_key="k", base_url=url)
    assert "l8xxSECRET" not in str(err.value)


@pytest.mark.parametrize("value", ["0", "-3", "fast"])
def test_bad_per_second_is_explained(value):
    with pytest.raises(ConfigError, match="ALMA_PER_SECOND"):
        Settings.from_env({"ALMA_PER_SECOND": value})


def test_defaults_and_key_not_in_repr():
    s = Settings.from_env({"ALMA_API_KEY": " l8xx-secret-key "})
    assert s.api_key == "l8xx-secret-key" and s.per_second == 25 and s.base_url == REGIONS["na"]
    assert "secret" not in repr(s)
    assert Settings.from_env({}).api_key is None


def test_loopback_detection():
    assert is_loopback_url("http://127.0.0.1:8990/almaws/v1")
    assert is_loopback_url("http://localhost/almaws/v1")
    assert not is_loopback_url(REGIONS["eu"])


def test_the_cache_folder_is_the_users_own_or_none():
    assert cache_home({"XDG_CACHE_HOME": "/x/cache"}) == Path("/x/cache/almatools")
    assert cache_home({"ALMATOOLS_CACHE": "/srv/at-cache", "XDG_CACHE_HOME": "/x"}) == Path("/srv/at-cache")
    assert cache_home({}) == Path.home() / ".cache" / "almatools"
    for off in ("off", "OFF", "0", "no", "false", "none"):
        assert cache_home({"ALMATOOLS_CACHE": off}) is None
