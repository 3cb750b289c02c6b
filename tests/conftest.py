"""The test run's setup and fixtures; what tests share otherwise is in helpers.py."""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest
from helpers import GOLDEN_HOME
from hypothesis import HealthCheck, settings
from syrupy.extensions.single_file import SingleFileSnapshotExtension, WriteMode

from bottlegen import Renderer

# Hypothesis: `ci` (the default) is what every run does; `soak` is a long run, for example
# `HYPOTHESIS_PROFILE=soak tests/run -k hostile`. Tests set only what is theirs (a multiple).
_SLOW = [HealthCheck.too_slow, HealthCheck.data_too_large]
settings.register_profile("ci", max_examples=250, deadline=None, suppress_health_check=_SLOW)
settings.register_profile("soak", max_examples=10_000, deadline=None, suppress_health_check=_SLOW)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

_cache_dir: str | None = None


def pytest_configure(config: pytest.Config) -> None:
    """Compiled templates go to this run's own folder from the start, collection included:
    never into the developer's cache, nor into a HOME that tests pin."""
    global _cache_dir
    _cache_dir = tempfile.mkdtemp(prefix="bottlegen-test-cache-")
    os.environ["BOTTLEGEN_CACHE_DIR"] = _cache_dir


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under pytest-xdist (tests/run runs two workers), the engine tests share one worker, in
    order, as they share one engine; the rest of the suite runs beside them on the other."""
    for item in items:
        if item.get_closest_marker("engine"):
            item.add_marker(pytest.mark.xdist_group("engine"))


def pytest_unconfigure(config: pytest.Config) -> None:
    if _cache_dir:
        shutil.rmtree(_cache_dir, ignore_errors=True)


class YamlSnapshot(SingleFileSnapshotExtension):
    """One standalone .yml golden per test case, so a pull request shows a YAML diff."""

    _write_mode = WriteMode.TEXT
    file_extension = "yml"


@pytest.fixture
def golden(snapshot):
    return snapshot.use_extension(YamlSnapshot)


@pytest.fixture
def golden_home(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", GOLDEN_HOME)
    monkeypatch.chdir(tmp_path)  # and the current directory must not matter


@pytest.fixture(scope="session")
def renderer() -> Renderer:
    return Renderer()
