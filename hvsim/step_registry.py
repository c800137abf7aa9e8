"""The registry of labctl's guest and host steps: every step module is listed here, once, explicitly.

Step modules only declare their steps in a table (hvsim.guest.handlers.step.StepTable); importing one
registers nothing. This module imports each table and registers it, so the step modules do not import
one another (the guest OS's own steps, Docker's container-host steps, the host steps).
"""

from __future__ import annotations

from collections.abc import Callable

from hvsim.docker.handlers import STEPS as DOCKER_STEPS
from hvsim.guest.handlers.host_steps import HOST_STEPS as HOST_STEP_TABLE
from hvsim.guest.handlers.imaging_steps import STEPS as IMAGING_STEPS
from hvsim.guest.handlers.step import (
    GUEST_HEADER,
    HOST_HEADER,
    GuestStep,
    HostStepFn,
    Step,
    StepFn,
    StepRegistry,
    StepTable,
)
from hvsim.guest.handlers.steps import STEPS as GUEST_OS_STEPS

GUEST_STEP_TABLES: tuple[StepTable[StepFn], ...] = (GUEST_OS_STEPS, DOCKER_STEPS, IMAGING_STEPS)
HOST_STEP_TABLES: tuple[StepTable[HostStepFn], ...] = (HOST_STEP_TABLE,)

GUEST_STEPS: StepRegistry[StepFn] = StepRegistry(GUEST_HEADER, "guest step")
HOST_STEPS: StepRegistry[HostStepFn] = StepRegistry(HOST_HEADER, "host step")
for _table in GUEST_STEP_TABLES:
    GUEST_STEPS.register_table(_table)
for _host_table in HOST_STEP_TABLES:
    HOST_STEPS.register_table(_host_table)


def find_step(script: str) -> GuestStep | None:
    """The guest step that models ``script`` (``# labctl-step: <name> <version>``; name and version must match)."""
    return GUEST_STEPS.find(script)


def find_host_step(script: str) -> HostStepFn | None:
    """The model of a host step script (first non-blank line ``# labctl-host-step: <name> <version>``)."""
    step = HOST_STEPS.find(script)
    return step.fn if step is not None else None


def guest_step(name: str, versions: tuple[str, ...] = ("1",)) -> Callable[[StepFn], StepFn]:
    """Register a guest step model directly (an ad hoc step, e.g. in a test; remove it with GUEST_STEPS.remove)."""

    def deco(fn: StepFn) -> StepFn:
        GUEST_STEPS.register(Step(name, versions, fn))
        return fn

    return deco
