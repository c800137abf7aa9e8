"""Every test sees the same environment, with or without pytest-xdist."""

import os

# xdist's workers set COLUMNS=80, where a plain pytest run has none: labctl's tables off a terminal are then
# narrower and wrap. Tests check what a user's pipe or CI log gets, so the variable goes.
for _name in ("COLUMNS", "LINES"):
    os.environ.pop(_name, None)
