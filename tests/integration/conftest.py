"""Integration tests: the labctl CLI against the simulator, end to end over WinRM."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from labharness import bare, quickstart, served  # noqa: F401  (fixtures)


@pytest.fixture(autouse=True, scope="session")
def docker_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The Docker zip cache in a temporary directory: tests never write to the user's ~/.cache."""
    import os

    path = tmp_path_factory.mktemp("cache")
    old = os.environ.get("LABCTL_CACHE_DIR")
    os.environ["LABCTL_CACHE_DIR"] = str(path)
    yield path
    if old is None:
        os.environ.pop("LABCTL_CACHE_DIR", None)
    else:
        os.environ["LABCTL_CACHE_DIR"] = old
