"""Docker on a guest: the engine (images, containers, processes), a registry and its mirror, the CLI, the Engine API."""
