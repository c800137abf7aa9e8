"""The code stays typed and lint-clean: the same checks a reviewer runs."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)


def test_ruff_is_clean() -> None:
    # Through this interpreter (ruff is a test extra), so an unactivated venv does not skip it.
    result = _run(sys.executable, "-m", "ruff", "check", "labctl", "hvsim", "tests", "bench")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_is_clean() -> None:
    result = _run(sys.executable, "-m", "mypy")
    assert result.returncode == 0, result.stdout + result.stderr


def _imports(path: Path) -> list[str]:
    """Every module a file imports, at top level or inside a function (the import graph, not a grep)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.append(node.module)
    return found


# What labctl may use of the simulator: its server API (start it in-process) and its control client
# (the control endpoint over HTTP). Everything else of hvsim is reached over the wire.
HVSIM_PUBLIC = ("hvsim.server", "hvsim.control")


def test_architecture_boundaries() -> None:
    """Only transport/psrp.py imports pypsrp, transport/ssh.py paramiko, transport/oop.py psrpcore; only cli
    imports click and rich; hvsim imports nothing of labctl; labctl uses only hvsim's public API; the pure core
    (lab, render, engine/plan) imports neither pypsrp, click nor hvsim."""
    offenders: list[str] = []
    for path in [*(REPO / "labctl").rglob("*.py"), *(REPO / "hvsim").rglob("*.py")]:
        rel = path.relative_to(REPO).as_posix()
        imports = _imports(path)

        def uses(mod: str, imports: list[str] = imports) -> bool:
            return any(name == mod or name.startswith(mod + ".") for name in imports)

        if uses("pypsrp") and rel != "labctl/transport/psrp.py":
            offenders.append(f"{rel} imports pypsrp")
        if uses("paramiko") and rel != "labctl/transport/ssh.py" and not rel.startswith("hvsim/"):
            offenders.append(f"{rel} imports paramiko")
        if uses("psrpcore") and rel.startswith("labctl/") and rel != "labctl/transport/oop.py":
            offenders.append(f"{rel} imports psrpcore")
        if (uses("click") or uses("rich")) and not rel.startswith("labctl/cli/"):
            offenders.append(f"{rel} imports click/rich")
        if rel.startswith("hvsim/") and uses("labctl"):
            offenders.append(f"{rel} imports labctl")
        if rel.startswith("labctl/"):
            inner = [m for m in imports if (m == "hvsim" or m.startswith("hvsim.")) and m not in HVSIM_PUBLIC]
            offenders += [f"{rel} imports {m} (labctl may use only {', '.join(HVSIM_PUBLIC)})" for m in inner]
        if rel.startswith(("labctl/lab/", "labctl/render/", "labctl/engine/plan.py")) and (
                uses("hvsim") or uses("pypsrp") or uses("labctl.transport.psrp")):
            offenders.append(f"{rel} is pure core but imports I/O layers")
    assert not offenders, "\n".join(offenders)


# The simulator's surfaces: one package each, with its models (state and rules), its handlers (the only code
# that shapes PowerShell objects) and its errors. hvsim.core is the shared machinery under all of them.
HVSIM_SURFACES = ("powershell", "wsman", "hyperv", "storage", "networking", "guest", "docker")


def _hvsim_modules() -> dict[str, Path]:
    modules = {}
    for path in (REPO / "hvsim").rglob("*.py"):
        parts = list(path.relative_to(REPO).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _hvsim_layer(module: str) -> str | None:
    parts = module.split(".")
    return "models" if "models" in parts else "handlers" if "handlers" in parts else None


def _shaping_names(path: Path) -> list[str]:
    """The PowerShell object types (PSObj, PSEnum) a file imports: only handlers shape PowerShell output."""
    names = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module == "hvsim.powershell.values":
            names += [alias.name for alias in node.names if alias.name in ("PSObj", "PSEnum")]
    return names


# What one surface's code may import of another surface's handlers: the objects module that shapes that surface's
# PowerShell objects for the others (``hvsim.<surface>.handlers.objects``), and the guest step contract the
# container-host steps build on (what a step is; running a typed command line in the guest).
HVSIM_SHARED_HANDLERS = ("hvsim.guest.handlers.step", "hvsim.guest.handlers.commands")


def _surface(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 and parts[1] in (*HVSIM_SURFACES, "core") else None


def _is_shared_handlers(module: str) -> bool:
    return module in HVSIM_SHARED_HANDLERS or (
        _hvsim_layer(module) == "handlers" and module.endswith(".handlers.objects"))


def _imported_modules(path: Path, modules: dict[str, Path]) -> list[str]:
    """The hvsim modules ``path`` imports, lazily too; ``from package import module`` names the module."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names if alias.name.startswith("hvsim.")]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level and node.module.startswith("hvsim."):
            subs = [f"{node.module}.{alias.name}" for alias in node.names if f"{node.module}.{alias.name}" in modules]
            found += subs if len(subs) == len(node.names) else [node.module, *subs]
    return found


def _registers_cmdlets(path: Path) -> bool:
    return any(isinstance(node, ast.FunctionDef) and any(
        isinstance(deco, ast.Call) and isinstance(deco.func, ast.Name) and deco.func.id == "cmdlet"
        for deco in node.decorator_list) for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))))


def test_hvsim_surface_boundaries() -> None:
    """Models never import handlers nor build PowerShell objects (state and rules do not depend on how PowerShell
    shows them); hvsim.core imports no surface; every surface package is there. Each surface shapes its own
    PowerShell objects: another surface's handlers are used only through its objects module (and the guest step
    contract), and an objects module registers no cmdlets, so using one never pulls in another surface's cmdlets."""
    modules = _hvsim_modules()
    assert {m.split(".")[1] for m in modules if m.count(".") >= 1} >= set(HVSIM_SURFACES) | {"core"}
    assert all(m in modules for m in HVSIM_SHARED_HANDLERS)
    offenders = []
    for module, path in modules.items():
        inner = [m for m in _imports(path) if m.startswith("hvsim.")]
        if _hvsim_layer(module) == "models":
            offenders += [f"{module} (a model) imports {m}" for m in inner if _hvsim_layer(m) == "handlers"]
            offenders += [f"{module} (a model) builds PowerShell objects ({name})" for name in _shaping_names(path)]
        if module.startswith("hvsim.core"):
            offenders += [f"{module} (core) imports {m}" for m in inner if not m.startswith("hvsim.core")]
        surface = _surface(module)
        if surface is not None:
            foreign = [m for m in _imported_modules(path, modules) if _hvsim_layer(m) == "handlers"
                       and _surface(m) not in (None, surface) and not _is_shared_handlers(m)]
            offenders += [f"{module} imports {m}, another surface's handlers (use its objects)" for m in foreign]
        if module.endswith(".handlers.objects") and _registers_cmdlets(path):
            offenders.append(f"{module} (an objects module) registers cmdlets")
    assert not offenders, "\n".join(offenders)


def test_the_surface_test_sees_foreign_handler_imports(tmp_path: Path) -> None:
    """The surface test resolves ``from package import module`` and lazy imports, and tells layers apart."""
    probe = tmp_path / "m.py"
    probe.write_text("from hvsim.guest.handlers import direct, step\n"
                     "from hvsim.hyperv.handlers.objects import as_list\n"
                     "def f():\n    import hvsim.networking.handlers\n")
    found = _imported_modules(probe, _hvsim_modules())
    assert found == ["hvsim.guest.handlers.direct", "hvsim.guest.handlers.step", "hvsim.hyperv.handlers.objects",
                     "hvsim.networking.handlers"]
    foreign = [m for m in found if not _is_shared_handlers(m)]
    assert foreign == ["hvsim.guest.handlers.direct", "hvsim.networking.handlers"]
    assert (_hvsim_layer("hvsim.storage.models"), _hvsim_layer("hvsim.networking.handlers")) == ("models", "handlers")


def _import_time_imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """hvsim modules ``path`` imports when it is imported (top level, not under TYPE_CHECKING, not lazily)."""
    found: set[str] = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {m for m in found if m in modules}


def test_hvsim_has_no_import_cycle() -> None:
    """No hvsim module imports itself back at import time (step registration is explicit: hvsim.step_registry)."""
    modules = _hvsim_modules()
    graph = {m: _import_time_imports(p, modules) - {m} for m, p in modules.items()}
    done: set[str] = set()

    def visit(module: str, stack: list[str]) -> None:
        if module in stack:
            raise AssertionError("import cycle: " + " -> ".join([*stack[stack.index(module):], module]))
        if module in done:
            return
        for dep in sorted(graph[module]):
            visit(dep, [*stack, module])
        done.add(module)

    for module in sorted(graph):
        visit(module, [])


def test_the_architecture_test_sees_lazy_imports(tmp_path: Path) -> None:
    probe = tmp_path / "m.py"
    probe.write_text("def f():\n    from hvsim.hyperv.models.host import HostConfig\n    import labctl.errors\n")
    assert _imports(probe) == ["hvsim.hyperv.models.host", "labctl.errors"]


def test_every_host_call_is_built_in_hyperv() -> None:
    """Host calls are facts and operations of labctl/hyperv (parameterized invocations); nothing else builds one."""
    offenders = []
    for path in (REPO / "labctl").rglob("*.py"):
        rel = path.relative_to(REPO).as_posix()
        if rel.startswith(("labctl/hyperv/", "labctl/transport/")):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "Invocation":
                offenders.append(f"{rel}:{node.lineno}")
    assert not offenders, "Invocation(...) outside labctl/hyperv: " + ", ".join(offenders)


# labctl's layers, top to bottom: a module may import its own layer and the layers below it, never above.
# The cli parses and presents: below it, only the application layer and the error tree (plus the data types
# it prints: a plan, a remote object).
LAYERS = ("labctl.cli", "labctl.app", "labctl.engine", "labctl.hyperv", "labctl.transport")
CLI_MAY_USE = ("labctl.cli", "labctl.app", "labctl.errors", "labctl.redact", "labctl.engine.plan",
               "labctl.transport.base")


def _layer(module: str) -> int | None:
    for index, layer in enumerate(LAYERS):
        if module == layer or module.startswith(layer + "."):
            return index
    return None


def _modules_used(path: Path) -> list[str]:
    """Like _imports, with ``from labctl import app`` read as labctl.app (a submodule, not a name)."""
    found: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                sub = REPO.joinpath(*f"{node.module}.{alias.name}".split("."))
                found.append(f"{node.module}.{alias.name}" if sub.is_dir() or sub.with_suffix(".py").is_file()
                             else node.module)
    return found


def test_labctl_layers_point_down() -> None:
    """cli -> app -> engine -> hyperv -> transport; the pure core (lab, render) and helpers use no layer."""
    offenders: list[str] = []
    for path in (REPO / "labctl").rglob("*.py"):
        rel = path.relative_to(REPO).with_suffix("").as_posix().replace("/", ".").removesuffix(".__init__")
        own = _layer(rel)
        for mod in _modules_used(path):
            if not mod.startswith("labctl"):
                continue
            theirs = _layer(mod)
            if rel.startswith("labctl.cli") and not mod.startswith(CLI_MAY_USE):
                offenders.append(f"{rel} imports {mod}: the CLI goes through labctl.app")
            elif theirs is not None and (own is None and rel.startswith(("labctl.lab", "labctl.render"))):
                offenders.append(f"{rel} (pure core) imports {mod}")
            elif theirs is not None and own is not None and theirs < own:
                offenders.append(f"{rel} imports {mod}, a layer above it")
            elif theirs is not None and theirs <= 1 and own is None:
                offenders.append(f"{rel} imports {mod}: only the cli uses the application layer")
    assert not offenders, "\n".join(offenders)


_FS_CALLS = frozenset({"read_text", "read_bytes", "write_text", "write_bytes", "open", "is_file", "is_dir",
                       "exists", "glob", "rglob", "iterdir", "stat", "mkdir", "unlink"})


def test_the_lab_is_read_in_one_loader() -> None:
    """Only labctl/lab/files.py touches the file system; model, load (parsing), validate, images, paths,
    schema and secrets work on what it read."""
    offenders = []
    for path in (REPO / "labctl" / "lab").glob("*.py"):
        if path.name == "files.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            func = node.func if isinstance(node, ast.Call) else None
            name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
            if name in _FS_CALLS:
                offenders.append(f"{path.relative_to(REPO)}:{node.lineno} {name}()")
    assert not offenders, "file system access outside the loader: " + ", ".join(offenders)
