"""The application layer: the use cases the CLI calls, one module each.

- ``session``: an open lab (host connection, journal, ownership) and the guests' credential
- ``up``: up and plan; ``status``; ``destroy``
- ``guest``: one guest step in one VM (exec, docker); ``isolation_demo``: the isolation demo
- ``init``: write the example labs to start from
- ``connection``: the host (embedded simulator or remote); ``secrets``: where secrets come from

Nothing here prints, exits or imports click/rich: each use case returns results for labctl.cli to present,
and raises labctl.errors for the CLI to map to exit codes.
"""
