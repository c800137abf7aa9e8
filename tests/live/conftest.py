"""Live tests against a real Hyper-V host; they run only when LABCTL_TEST_HOST is set.

    LABCTL_TEST_HOST=https://hv01.example.com:5986/wsman   # the WinRM listener
    LABCTL_TEST_USER=HV01\\Administrator
    LABCTL_TEST_PASSWORD=...                               # host password (never in a file)
    LABCTL_TEST_AUTH=ntlm                                  # optional: ntlm (default), kerberos, credssp, basic
    LABCTL_TEST_CA=/path/ca.pem or LABCTL_TEST_FINGERPRINT=sha256:AB:...   # optional: how to trust the host
    LABCTL_GUEST_PASSWORD=...                              # the guests' Administrator password
    LABCTL_TEST_IMAGE=ws2022-core                          # optional: a base image present on the host
    LABCTL_TEST_DOCKER_ZIP=/path/docker-27.3.1.zip          # optional: run the container-host bootstrap too
    LABCTL_TEST_DOCKER_SHA256=<hex>                        # (or: fetch Docker's zip and check this digest)
"""

from __future__ import annotations

import os

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("LABCTL_TEST_HOST"):
        return
    skip = pytest.mark.skip(reason="LABCTL_TEST_HOST is not set: no real Hyper-V host to test against")
    for item in items:
        if "tests/live" in str(item.fspath).replace("\\", "/"):
            item.add_marker(skip)
