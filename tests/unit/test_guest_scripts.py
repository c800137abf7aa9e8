"""The shipped guest and host scripts are real Windows PowerShell 5.1 and keep docs/guest-steps.md.

The simulator cannot run PowerShell: it models each script by its header. So this test is what keeps the
scripts honest. Every templates/guest/*.ps1 and templates/host/*.ps1 must

- parse with tree-sitter-powershell, with no ERROR or MISSING node;
- carry the header the contract names, at the contract's version;
- declare param() with the contract's names, types and order (read from the doc's tables, so the two cannot
  drift);
- follow the script conventions (docs/guest-steps.md): comment-based help (.SYNOPSIS, .DESCRIPTION, a
  .PARAMETER for each declared parameter, .OUTPUTS, .NOTES) preceded only by comments, `#Requires -Version
  5.1`, `[CmdletBinding()]` on the param block (no parameter named like a common parameter, no Position or
  PositionalBinding: -ArgumentList binds in declaration order), then `Set-StrictMode -Version Latest` and
  `$ErrorActionPreference = 'Stop'` as the first two statements; exec runs the user's command without
  strict mode;
- call only cmdlets the simulator's catalog knows (Verb-Noun names, and aliases such as % or ?), with
  parameters that bind by PowerShell's rules (exact name, alias, or unambiguous prefix; common parameters
  included); the script's own functions are checked against their own param() blocks; native programs
  only from NATIVE_COMMANDS; `& $variable` only for DYNAMIC_INVOCATIONS;
- produce the output properties the contract lists, and nothing else by accident (a Get-/New-/Invoke-...
  command at script level whose objects are not captured would join the step's one output object);
- keep secrets (docker-tls's key) out of strings, command arguments and output objects;
- take shared helpers from templates/<kind>/lib (each script travels alone: labctl splices them in at
  `# labctl-include:` lines), never define them again, and never write "$name:" in a string (a PowerShell
  parse error tree-sitter accepts).

The negative tests feed bad snippets through the same checker, so it is known to catch what it claims to.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
import tree_sitter_powershell as tsp
from tree_sitter import Language, Node, Parser

from hvsim.powershell.catalog import Catalog, load_catalog
from hvsim.powershell.catalog.spec import COMMON_PARAMETERS
from labctl.guest.steps import expand_includes
from labctl.resources import resource_dir

REPO = Path(__file__).resolve().parents[2]
CONTRACT = REPO / "docs" / "guest-steps.md"
TEMPLATES = resource_dir("templates")
SCRIPTS = sorted((TEMPLATES / "guest").glob("*.ps1")) + sorted((TEMPLATES / "host").glob("*.ps1"))
HEADERS = {"guest": "step", "host": "host-step"}
LIBS = sorted((TEMPLATES / "guest" / "lib").glob("*.ps1")) + sorted((TEMPLATES / "host" / "lib").glob("*.ps1"))


def source_of(path: Path) -> str:
    """The script as labctl sends it: with its ``# labctl-include:`` lines expanded."""
    return expand_includes(path.read_text(encoding="utf-8"), path.parent / "lib", path)

# Native programs a script may invoke by name (with or without .exe).
NATIVE_COMMANDS = frozenset({"docker", "dockerd", "bcdboot"})  # bcdboot: the host step that makes an image bootable
# `& $variable` runs something the parser cannot name: allowed only for these, each for a stated reason.
DYNAMIC_INVOCATIONS: Mapping[str, str] = {
    "$filepath": "Invoke-NativeCommand runs the native program (docker.exe, dockerd.exe) its caller resolved",
    "$userscript": "exec runs the user's own command text ([scriptblock]::Create), its explicit intent",
}
# Built-in aliases a script might use, and the cmdlet each stands for.
ALIASES: Mapping[str, str] = {
    "%": "ForEach-Object",
    "foreach": "ForEach-Object",
    "?": "Where-Object",
    "where": "Where-Object",
    "select": "Select-Object",
    "sort": "Sort-Object",
    "gci": "Get-ChildItem",
    "ls": "Get-ChildItem",
    "dir": "Get-ChildItem",
    "gi": "Get-Item",
    "gc": "Get-Content",
    "gsv": "Get-Service",
    "gps": "Get-Process",
    "ps": "Get-Process",
    "rm": "Remove-Item",
    "del": "Remove-Item",
    "cp": "Copy-Item",
    "copy": "Copy-Item",
    "mv": "Move-Item",
    "move": "Move-Item",
    "icm": "Invoke-Command",
    "measure": "Measure-Object",
}
# Cmdlets a script calls that the simulator's catalog has no entry for, because the simulator never runs them:
# it models a step by its header, and these only set up the script's own session. Parameters (and aliases)
# from the cmdlet's reference page; the common parameters are added below. A catalog entry, once there, wins.
VERB_NOUN = re.compile(r"^[A-Za-z]+-[A-Za-z0-9]+$")
HEADER = re.compile(r"^# labctl-(?P<kind>step|host-step): (?P<name>[a-z0-9-]+) (?P<version>\d+)$")
# Variable scopes and drives that may follow `$name:` inside a double-quoted string.
SCOPES = frozenset({"env", "script", "global", "local", "private", "using", "variable", "function"})
# Arguments whose values are secrets: never in a string, a command's arguments or a [pscustomobject].
SECRET_PARAMETERS: Mapping[str, tuple[str, ...]] = {"docker-tls": ("KeyPem",)}

PARSER = Parser(Language(tsp.language()))
CATALOG = load_catalog()


# --- the contract -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ContractStep:
    """One row of a steps table in docs/guest-steps.md."""

    kind: str  # guest or host
    name: str
    version: str
    params: tuple[tuple[str, str], ...]  # (type, name), in order
    output: str  # the Facts cell (guest steps), "" for host steps


_STEP_CELL = re.compile(r"`(?P<name>[a-z0-9-]+)`\s+(?P<version>\d+)")
_PARAM = re.compile(r"`\[(?P<type>[\w.]+(?:\[\])?)\]\s*\$(?P<name>\w+)`")


def parse_contract(text: str) -> dict[tuple[str, str], ContractStep]:
    """The step tables of the contract, keyed by (kind, name)."""
    steps: dict[tuple[str, str], ContractStep] = {}
    kind: str | None = None
    for line in text.splitlines():
        if line.startswith("## "):
            heading = line[3:].strip().lower()
            kind = "guest" if heading == "guest steps" else "host" if heading == "host steps" else None
            continue
        if kind is None or not line.startswith("| `"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        m = _STEP_CELL.fullmatch(cells[0])
        assert m, f"step cell not understood: {cells[0]!r}"
        params = tuple((p["type"], p["name"]) for p in _PARAM.finditer(cells[1]))
        assert params or cells[1] in ("—", "-", ""), f"arguments cell not understood: {cells[1]!r}"
        steps[(kind, m["name"])] = ContractStep(kind, m["name"], m["version"], params,
                                                cells[-1] if kind == "guest" else "")
    return steps


CONTRACT_STEPS = parse_contract(CONTRACT.read_text(encoding="utf-8"))


def kind_of(path: Path) -> str:
    return path.parent.name  # templates/guest or templates/host


# --- tree helpers -----------------------------------------------------------------------------------------


def parse(source: str) -> Node:
    return PARSER.parse(source.encode("utf-8")).root_node


def text(node: Node) -> str:
    return (node.text or b"").decode("utf-8")


def walk(node: Node) -> Iterator[Node]:
    yield node
    for child in node.children:
        yield from walk(child)


def line_of(node: Node) -> int:
    return node.start_point[0] + 1


def syntax_problems(root: Node) -> list[str]:
    return [f"line {line_of(n)}: {'missing ' + n.type if n.is_missing else 'syntax error'} near {text(n)[:40]!r}"
            for n in walk(root) if n.type == "ERROR" or n.is_missing]


def child_of_type(node: Node, *types: str) -> Node | None:
    return next((c for c in node.children if c.type in types), None)


def script_params(param_block: Node | None) -> list[tuple[str, str, list[str]]]:
    """(type, name, aliases) of each parameter in a param() block; type "" when untyped."""
    if param_block is None:
        return []
    plist = child_of_type(param_block, "parameter_list")
    found: list[tuple[str, str, list[str]]] = []
    for param in (plist.children if plist else []):
        if param.type != "script_parameter":
            continue
        var = child_of_type(param, "variable")
        assert var is not None
        ptype, aliases = "", []
        attrs = child_of_type(param, "attribute_list")
        for attr in (attrs.children if attrs else []):
            literal = child_of_type(attr, "type_literal")
            if literal is not None:
                ptype = text(literal)[1:-1]
                continue
            name = child_of_type(attr, "attribute_name")
            if name is not None and text(name).lower() == "alias":
                aliases += [text(s).strip("'\"") for s in walk(attr) if s.type == "string_literal"]
        found.append((ptype, text(var).lstrip("$"), aliases))
    return found


def is_advanced(param_block: Node | None) -> bool:
    """[CmdletBinding()] or any [Parameter()]: PowerShell then adds the common parameters."""
    if param_block is None:
        return False
    names = {text(n).lower() for n in walk(param_block) if n.type == "attribute_name"}
    return bool(names & {"cmdletbinding", "parameter"})


def top_param_block(root: Node) -> Node | None:
    return child_of_type(root, "param_block")


# --- the command checker ----------------------------------------------------------------------------------

ParamTable = Mapping[str, tuple[str, ...]]  # parameter name -> its aliases


def catalog_params(catalog: Catalog, cmdlet: str) -> ParamTable | None:
    spec = catalog.get(cmdlet)
    if spec is None:
        return None
    return {p.name: p.aliases for p in spec.parameters.values()}


def local_functions(root: Node) -> dict[str, ParamTable]:
    """The script's own functions: name (lower case) -> their parameters."""
    functions: dict[str, ParamTable] = {}
    for node in walk(root):
        if node.type != "function_statement":
            continue
        name = child_of_type(node, "function_name")
        body = child_of_type(node, "script_block")
        block = child_of_type(body, "param_block") if body else None
        table: dict[str, tuple[str, ...]] = {n: tuple(a) for _, n, a in script_params(block)}
        if is_advanced(block):
            for common, spec in COMMON_PARAMETERS.items():
                table.setdefault(common, tuple(spec.get("aliases", ())))
        assert name is not None
        functions[text(name).lower()] = table
    return functions


def resolve_parameter(table: ParamTable, token: str) -> tuple[str | None, str]:
    """PowerShell's binding of ``-token``: (parameter, "") or (None, why not)."""
    wanted = token.lower()
    for name, aliases in table.items():
        if wanted == name.lower() or wanted in (a.lower() for a in aliases):
            return name, ""
    matches = sorted({name for name, aliases in table.items()
                      if name.lower().startswith(wanted) or any(a.lower().startswith(wanted) for a in aliases)})
    if len(matches) == 1:
        return matches[0], ""
    if matches:
        return None, f"-{token} is ambiguous ({', '.join(matches)})"
    return None, f"has no parameter -{token}"


def command_name(command: Node) -> tuple[str, bool]:
    """(name, dynamic): the invoked name, or the variable/script block text for `& $x` / `& { }`."""
    node = child_of_type(command, "command_name", "command_name_expr")
    assert node is not None, text(command)
    if node.type == "command_name":
        return text(node), False
    inner = node.children[0]
    if inner.type == "command_name":
        return text(inner), False
    if inner.type == "string_literal":
        return text(inner).strip("'\""), False
    return text(inner), True


def check_command(command: Node, catalog: Catalog, functions: Mapping[str, ParamTable]) -> list[str]:
    where = f"line {line_of(command)}"
    name, dynamic = command_name(command)
    if dynamic:
        if name.startswith("{"):
            return []  # & { ... }: its commands are checked where they are
        if name.lower() not in DYNAMIC_INVOCATIONS:
            return [f"{where}: `& {name}` invokes something unknown; allowed: {', '.join(DYNAMIC_INVOCATIONS)}"]
        return []
    key = name.lower()
    table: ParamTable | None
    if key in functions:
        table, what = functions[key], f"function {name}"
    elif key in ALIASES:
        table, what = catalog_params(catalog, ALIASES[key]), f"{ALIASES[key]} (alias {name})"
        if table is None:
            return [f"{where}: alias {name} stands for {ALIASES[key]}, which the catalog lacks"]
    elif VERB_NOUN.match(name):
        table, what = catalog_params(catalog, name), name
        if table is None:
            return [f"{where}: {name} is not a cmdlet in the simulator's catalog"]
    else:
        native = key.removesuffix(".exe")
        if native not in NATIVE_COMMANDS:
            return [f"{where}: native command {name!r} is not allowed (NATIVE_COMMANDS: {sorted(NATIVE_COMMANDS)})"]
        return []  # a native program's options are its own
    problems: list[str] = []
    elements = child_of_type(command, "command_elements")
    for element in (elements.children if elements else []):
        if element.type != "command_parameter":
            continue
        token = text(element).lstrip("-").rstrip(":")
        if not token:
            continue  # `--`: end of parameters
        _, why = resolve_parameter(table, token)
        if why:
            problems.append(f"{where}: {what} {why}")
    return problems


# Commands that write objects: a statement that calls one without capturing it ($x = ..., $null = ...) adds
# to the step's output, which must be exactly one object.
_OUTPUT_VERBS = ("get-", "new-", "invoke-", "install-", "measure-", "convertfrom-", "select-", "sort-")
_CAPTURING = frozenset({"assignment_expression", "parenthesized_expression", "sub_expression", "array_expression",
                        "command_elements", "flow_control_statement", "hash_entry"})


_CONTROL = frozenset({"if_statement", "while_statement", "do_statement", "for_statement", "foreach_statement",
                      "switch_statement"})


def uncaptured_output(command: Node) -> str | None:
    """Why ``command`` leaks objects into the script's own output, or None. A statement's objects go to the
    block that holds it: a control statement's body passes them on to wherever that statement's output goes,
    a function or script block returns them (its caller is checked), the script emits them."""
    name, dynamic = command_name(command)
    if dynamic or not name.lower().startswith(_OUTPUT_VERBS):
        return None
    chain = command.parent
    if chain is None or chain.type != "pipeline_chain" or chain.children[-1] != command:
        return None  # piped into another command: that one is checked
    node, from_body = chain, False
    while True:
        while node.parent is not None and node.parent.type != "statement_list":
            if node.type in _CAPTURING:
                return None
            node = node.parent
        if node.parent is None or (node.type in _CONTROL and not from_body):
            return None  # a condition or loop header consumes it
        owner = node.parent.parent
        if owner is None or owner.type == "program":
            return (f"line {line_of(command)}: the objects {name} writes join the step's output; "
                    "capture them ($null = ...)")
        if owner.type != "statement_block":
            return None  # a function's or script block's own output
        node, from_body = owner, True


def check_source(source: str, catalog: Catalog = CATALOG) -> list[str]:
    """Everything wrong with one script's commands (syntax first: a broken tree is not checked further)."""
    root = parse(source)
    problems = syntax_problems(root)
    if problems:
        return problems
    functions = local_functions(root)
    for name in functions:
        if name in catalog or name in ALIASES:
            problems.append(f"function {name} shadows a cmdlet")
    for node in walk(root):
        if node.type == "command":
            problems += check_command(node, catalog, functions)
            leak = uncaptured_output(node)
            if leak:
                problems.append(leak)
        elif node.type == "expandable_string_literal":
            # "$name: text" is a parse error in PowerShell (':' after a variable names a scope or drive).
            for m in re.finditer(r"(?<!`)\$(\w+):(?![\w:])", text(node)):
                if m[1].lower() not in SCOPES:
                    problems.append(f"line {line_of(node)}: \"${m[1]}:\" in a string; write \"$({m[1]}):\"")
    return problems


def secret_leaks(source: str, secrets: tuple[str, ...]) -> list[str]:
    """Uses of secret parameters (and variables copied from them) in strings, command arguments or
    [pscustomobject] output."""
    root = parse(source)
    names = {s.lower() for s in secrets}
    for node in walk(root):  # follow `$copy = $Secret`
        if node.type == "assignment_expression":
            left, right = node.children[0], node.children[-1]
            if text(right).strip().lstrip("$").lower() in names:
                names.add(text(left).strip().lstrip("$").lower())
    leaks: list[str] = []
    for node in walk(root):
        if node.type != "variable" or text(node).lstrip("$@").lower() not in names:
            continue
        parent = node.parent
        while parent is not None:
            if parent.type == "expandable_string_literal":
                leaks.append(f"line {line_of(node)}: {text(node)} in a string")
            elif parent.type == "command_elements":
                leaks.append(f"line {line_of(node)}: {text(node)} passed to a command")
            elif parent.type == "cast_expression" and text(parent).lower().startswith("[pscustomobject]"):
                leaks.append(f"line {line_of(node)}: {text(node)} in an output object")
            parent = parent.parent
    return leaks


# --- script conventions -----------------------------------------------------------------------------------

# Comment-based help keywords (about_Comment_Based_Help). A line that starts with any other `.word` makes
# PowerShell discard the whole block as help.
HELP_KEYWORDS = frozenset({"SYNOPSIS", "DESCRIPTION", "PARAMETER", "EXAMPLE", "INPUTS", "OUTPUTS", "NOTES", "LINK",
                           "COMPONENT", "ROLE", "FUNCTIONALITY", "FORWARDHELPTARGETNAME", "FORWARDHELPCATEGORY",
                           "REMOTEHELPRUNSPACE", "EXTERNALHELP"})
HELP_SECTIONS = ("SYNOPSIS", "DESCRIPTION", "OUTPUTS", "NOTES")  # each step script has these, and a .PARAMETER each
_HELP_LINE = re.compile(r"^\.(?P<keyword>\w+)(?:\s+(?P<argument>\S.*?))?\s*$")
_REQUIRES = re.compile(r"#requires\s+-version\s+5\.1", re.IGNORECASE)


def help_sections(comment: str) -> list[tuple[str, str]]:
    """(KEYWORD, argument) of each keyword line in a ``<# ... #>`` comment, in order."""
    body = comment.removeprefix("<#").removesuffix("#>")
    found = []
    for line in body.splitlines():
        m = _HELP_LINE.match(line.strip())
        if m:
            found.append((m["keyword"].upper(), (m["argument"] or "").strip()))
    return found


def _statement_text(node: Node) -> str:
    return re.sub(r"\s+", " ", text(node)).strip().lower()


def convention_problems(source: str) -> list[str]:
    """What a step script lacks of the conventions: comment-based help (preceded only by comments, with the
    sections and a .PARAMETER per declared parameter), #Requires -Version 5.1, [CmdletBinding()] on param(),
    then Set-StrictMode -Version Latest and $ErrorActionPreference = 'Stop' as the first two statements."""
    root = parse(source)
    problems = syntax_problems(root)
    if problems:
        return problems
    block = top_param_block(root)
    if block is None:
        return ["no param() block first: a step script declares param() (empty if it takes nothing)"]
    leading = [n for n in root.children if n.end_byte <= block.start_byte]
    comments = [n for n in leading if n.type == "comment"]
    if len(comments) != len(leading):
        problems.append("only comments and blank lines may come before param()")

    # comment-based help
    helps = [c for c in comments if text(c).startswith("<#") and help_sections(text(c))]
    if not helps:
        problems.append("no comment-based help (<# .SYNOPSIS ... #>) before param()")
    else:
        help_node = helps[0]
        index = comments.index(help_node)
        if index > 0 and help_node.start_point[0] <= comments[index - 1].end_point[0] + 1:
            # PowerShell reads comments on consecutive lines as one block: with the header glued on, the
            # block starts with text that is no keyword and is not help.
            problems.append(f"line {line_of(help_node)}: a blank line must separate the help from the comment "
                            "before it")
        sections = help_sections(text(help_node))
        for keyword, _ in sections:
            if keyword not in HELP_KEYWORDS:
                problems.append(f"help keyword .{keyword} is not one PowerShell knows: it discards the help")
        present = {keyword for keyword, _ in sections}
        problems += [f"help has no .{s}" for s in HELP_SECTIONS if s not in present]
        documented = [arg for keyword, arg in sections if keyword == "PARAMETER"]
        declared = [name for _, name, _ in script_params(block)]
        lowered = {d.lower() for d in documented}
        problems += [f"help has no .PARAMETER {name}" for name in declared if name.lower() not in lowered]
        problems += [f"help documents .PARAMETER {name}, which param() does not declare"
                     for name in documented if name.lower() not in {d.lower() for d in declared}]

    # #Requires -Version 5.1 (a comment PowerShell reads; it must start its line)
    if not any(_REQUIRES.fullmatch(text(c).strip()) and c.start_point[1] == 0 for c in comments):
        problems.append("no '#Requires -Version 5.1' line before param()")

    # [CmdletBinding()] on the param block. It adds the common parameters, which the script's own names must
    # not repeat, and -ArgumentList keeps binding by declaration order only while no parameter takes a
    # Position and positional binding stays on.
    attributes = child_of_type(block, "attribute_list")  # the block's own, not its parameters'
    names = {text(n).lower() for n in walk(attributes) if n.type == "attribute_name"} if attributes else set()
    if "cmdletbinding" not in names:
        problems.append("param() has no [CmdletBinding()] attribute")
    common = {c.lower() for name, info in COMMON_PARAMETERS.items() for c in (name, *info.get("aliases", ()))}
    for _, name, aliases in script_params(block):
        problems += [f"parameter {name}: {n} is a common parameter's name" for n in (name, *aliases)
                     if n.lower() in common]
    for node in walk(block):
        if node.type == "attribute_argument" and text(node).split("=")[0].strip().lower() in (
                "position", "positionalbinding"):
            problems.append(f"line {line_of(node)}: {text(node)}: -ArgumentList binds by declaration order")

    # Set-StrictMode -Version Latest, then $ErrorActionPreference = 'Stop'
    statements = child_of_type(root, "statement_list")
    first = [_statement_text(n) for n in (statements.children if statements else [])[:2]]
    if not first or first[0] != "set-strictmode -version latest":
        problems.append("the first statement after param() must be 'Set-StrictMode -Version Latest'")
    if len(first) < 2 or first[1] != "$erroractionpreference = 'stop'":
        problems.append("the second statement must be \"$ErrorActionPreference = 'Stop'\"")
    return problems


def strict_mode_off_around(command: Node) -> bool:
    """Whether ``command`` runs in a script block that first turns strict mode off (`Set-StrictMode -Off`)."""
    node: Node | None = command
    while node is not None:
        if node.type == "script_block":
            body = child_of_type(node, "script_block_body")
            statements = child_of_type(body, "statement_list") if body else None
            for statement in (statements.children if statements else []):
                if statement.start_byte >= command.start_byte:
                    break
                if _statement_text(statement) == "set-strictmode -off":
                    return True
        node = node.parent
    return False


# --- output shape -----------------------------------------------------------------------------------------

STANDARD_OUTPUT = ("Step", "Changed", "RebootNeeded", "Facts")
_IDENT = re.compile(r"[A-Z]\w*")  # property names are PascalCase; `nat`, "the" are prose


def contract_output(cell: str) -> tuple[bool, set[str]]:
    """(standard Step/Changed/RebootNeeded/Facts object?, property names the contract lists)."""
    if cell.startswith("("):
        body = cell[1:-1]
        body = body.split(":", 1)[1] if body.lower().startswith("no step/changed") else body
        names = set()
        for part in re.split(r",\s*(?![^(]*\))", body):
            word = part.strip().split(" ")[0].strip("`")
            if _IDENT.fullmatch(word):
                names.add(word)
        return False, names
    names = {n for n in re.findall(r"`([^`]+)`", cell) if _IDENT.fullmatch(n)}
    for group in re.findall(r"`@\{([^}]*)\}`", cell):  # nested objects: `@{ Name; Id }`
        names |= {n.strip() for n in group.split(";") if _IDENT.fullmatch(n.strip())}
    return True, names


def hash_keys(root: Node) -> set[str]:
    return {text(n) for n in walk(root) if n.type == "key_expression"}


# --- the shipped scripts ----------------------------------------------------------------------------------


def test_contract_tables_are_read() -> None:
    guest = [name for kind, name in CONTRACT_STEPS if kind == "guest"]
    assert {"probe", "container-features", "docker-install", "isolation-demo", "exec"} <= set(guest)
    assert ("host", "copy-from-guest") in CONTRACT_STEPS
    assert CONTRACT_STEPS[("guest", "docker-install")].params == (
        ("string", "ZipPath"), ("string", "Sha256"), ("string", "DaemonJson"), ("int", "TimeoutSeconds"))
    assert CONTRACT_STEPS[("guest", "probe")].params == ()


def test_every_contract_step_has_a_script_and_every_script_a_contract_row() -> None:
    shipped = {(kind_of(p), p.stem) for p in SCRIPTS}
    assert set(CONTRACT_STEPS) - shipped == set(), "steps in docs/guest-steps.md without a script"
    assert shipped - set(CONTRACT_STEPS) == set(), "scripts not in docs/guest-steps.md"


@pytest.mark.parametrize("path", SCRIPTS, ids=[f"{kind_of(p)}/{p.name}" for p in SCRIPTS])
def test_script_parses_and_keeps_the_contract(path: Path) -> None:
    source = source_of(path)
    root = parse(source)
    assert syntax_problems(root) == []
    step = CONTRACT_STEPS[(kind_of(path), path.stem)]

    m = HEADER.fullmatch(source.splitlines()[0])
    assert m, f"first line must be '# labctl-{HEADERS[step.kind]}: {step.name} <version>'"
    assert (m["kind"], m["name"], m["version"]) == (HEADERS[step.kind], step.name, step.version)

    declared = [(ptype.lower(), name) for ptype, name, _ in script_params(top_param_block(root))]
    assert declared == [(ptype.lower(), name) for ptype, name in step.params], "param() differs from the contract"


@pytest.mark.parametrize("path", SCRIPTS, ids=[f"{kind_of(p)}/{p.name}" for p in SCRIPTS])
def test_script_follows_the_conventions(path: Path) -> None:
    assert convention_problems(source_of(path)) == []


def test_exec_runs_the_users_command_without_strict_mode() -> None:
    # StrictMode is inherited by child scopes: the user's script block must run in a scope that turned it off.
    root = parse(source_of(TEMPLATES / "guest" / "exec.ps1"))
    calls = [n for n in walk(root) if n.type == "command" and command_name(n) == ("$userScript", True)]
    assert len(calls) == 1, "exec invokes the user's script block once, as `& $userScript`"
    assert strict_mode_off_around(calls[0]), "run `& $userScript` inside `& { Set-StrictMode -Off; ... }`"


@pytest.mark.parametrize("path", SCRIPTS, ids=[f"{kind_of(p)}/{p.name}" for p in SCRIPTS])
def test_script_calls_only_catalog_cmdlets_with_real_parameters(path: Path) -> None:
    assert check_source(source_of(path)) == []


GUEST_ROWS = [s for s in CONTRACT_STEPS.values() if s.kind == "guest"]


@pytest.mark.parametrize("step", GUEST_ROWS, ids=[s.name for s in GUEST_ROWS])
def test_script_outputs_what_the_contract_lists(step: ContractStep) -> None:
    source = source_of(TEMPLATES / "guest" / f"{step.name}.ps1")
    root = parse(source)
    keys = hash_keys(root)
    standard, names = contract_output(step.output)
    if standard:
        assert set(STANDARD_OUTPUT) <= keys
        assert re.search(rf"\bStep\s*=\s*'{re.escape(step.name)}'", source), f"Step = '{step.name}'"
    else:
        assert "Step" not in keys, "the contract says this step has no Step/Changed"
    assert names - keys == set(), "properties the contract lists but the script never sets"


def test_host_steps_output_the_standard_object() -> None:
    for path in sorted((TEMPLATES / "host").glob("*.ps1")):
        source = source_of(path)
        assert set(STANDARD_OUTPUT) <= hash_keys(parse(source))
        assert re.search(rf"\bStep\s*=\s*'{re.escape(path.stem)}'", source), f"Step = '{path.stem}'"


def test_shared_helpers_live_once_in_lib() -> None:
    # Scripts travel alone, so shared helpers are included at load time from templates/<kind>/lib: a helper
    # defined again inside a script would drift from the library copy.
    lib_functions: set[str] = set()
    for path in LIBS:
        for node in walk(parse(path.read_text(encoding="utf-8"))):
            if node.type == "function_statement":
                name_node = child_of_type(node, "function_name")
                assert name_node is not None
                lib_functions.add(text(name_node).lower())
    assert lib_functions, "no shared helpers in templates/guest/lib"
    for path in SCRIPTS:
        own = path.read_text(encoding="utf-8")
        for node in walk(parse(own)):
            if node.type == "function_statement":
                name_node = child_of_type(node, "function_name")
                assert name_node is not None
                assert text(name_node).lower() not in lib_functions, f"{path.name} redefines {text(name_node)}"


def test_includes_are_expanded_and_a_missing_one_is_an_error(tmp_path: Path) -> None:
    from labctl.errors import TemplateError

    for path in SCRIPTS:
        assert "# labctl-include:" not in source_of(path)
    (tmp_path / "bad.ps1").write_text("# labctl-step: bad 1\nparam()\n# labctl-include: nope.ps1\n")
    with pytest.raises(TemplateError, match=r"includes nope.ps1"):
        source_of(tmp_path / "bad.ps1")


@pytest.mark.parametrize("step", sorted(SECRET_PARAMETERS))
def test_secrets_stay_out_of_output_and_messages(step: str) -> None:
    source = source_of(TEMPLATES / "guest" / f"{step}.ps1")
    assert secret_leaks(source, SECRET_PARAMETERS[step]) == []


def test_pipeline_aliases_resolve_to_catalog_cmdlets() -> None:
    for alias, cmdlet in (("%", "ForEach-Object"), ("foreach", "ForEach-Object"), ("?", "Where-Object"),
                          ("where", "Where-Object"), ("select", "Select-Object")):
        assert ALIASES[alias] == cmdlet and cmdlet in CATALOG


# --- the checker catches what it claims to --------------------------------------------------------------

BAD_SNIPPETS = {
    "misspelt cmdlet": ("Get-Servise -Name docker", "not a cmdlet in the simulator's catalog"),
    "misspelt parameter": ("Get-Service -Nmae docker", "Get-Service has no parameter -Nmae"),
    "misspelt colon parameter": ("Test-Path -Pth:$p", "Test-Path has no parameter -Pth"),
    "ambiguous prefix": ("Get-Service -D docker", "-D is ambiguous"),
    "bad alias parameter": ("$x | % -Prcess { $_ }", "ForEach-Object (alias %) has no parameter -Prcess"),
    "bad where parameter": ("$x | ? -FilterScrpt { $_ }", "has no parameter -FilterScrpt"),
    "unknown native": ("curl.exe https://example.com", "native command 'curl.exe' is not allowed"),
    "unknown dynamic": ("& $program --version", "invokes something unknown"),
    "function parameter": ("function Get-Thing { param([string] $Name) }\nGet-Thing -Nam x -Size 1",
                           "function Get-Thing has no parameter -Size"),
    "shadowing function": ("function Get-Service { }", "shadows a cmdlet"),
    "parse error": ("if ($x { Get-Item x }", "line 1"),
    "scope colon in string": ('throw "expected $Sha256: got"', '"$Sha256:" in a string'),
    "cmdlet in a nested block": ("Invoke-Command -ScriptBlock { Get-ItemX }", "Get-ItemX is not a cmdlet"),
    "splat with bad cmdlet": ("Get-VMz @params", "Get-VMz is not a cmdlet"),
    "misspelt Set-StrictMode parameter": ("Set-StrictMode -Versoin Latest", "Set-StrictMode has no parameter"),
    "uncaptured output": ("if ($x) {\n    New-Item -Path C:\\x -ItemType Directory\n}", "join the step's output"),
    "uncaptured in a loop": ("foreach ($n in 1, 2) {\n    Get-Item -Path $n\n}", "Get-Item writes join"),
}


@pytest.mark.parametrize("case", sorted(BAD_SNIPPETS))
def test_checker_rejects(case: str) -> None:
    snippet, expected = BAD_SNIPPETS[case]
    problems = check_source(snippet)
    assert any(expected in p for p in problems), problems


GOOD_SNIPPETS = [
    "$s = Get-Service -Name docker -ErrorAction SilentlyContinue",
    "$s = Get-Service -ServiceName docker -ea Stop",  # alias, common-parameter alias
    "$s = Get-Service -N docker",  # unique prefix
    "Test-Path -Path:$p -PathType Leaf",
    "$s = Get-Service @splat -Name docker",
    "$x | % { $_ } | ? { $_ } | foreach { $_ } | where { $_ }",
    "docker version; & docker.exe ps; dockerd.exe --register-service",
    "function Invoke-Thing {\n    [CmdletBinding()]\n    param([Alias('N')] [string] $Name)\n}\n"
    "$null = Invoke-Thing -N x -Verbose",
    "& { $i = Get-Item -LiteralPath x }",
    "function Invoke-NativeCommand {\n    param([string] $FilePath)\n    & $FilePath\n}",
    'throw "at $($Path): $env:ProgramData"',
    "$null = New-Item -Path x -ItemType Directory\n$d = Get-Item x | Select-Object -First 1\n"
    "if (Get-Item x) { }\nreturn (Get-Item x)",
    "$rows = foreach ($n in 1, 2) {\n    if ($n) { Get-Item -Path $n }\n}",
    "function Get-Thing {\n    Get-Item -Path x\n}\n$t = Get-Thing",
]


@pytest.mark.parametrize("snippet", GOOD_SNIPPETS)
def test_checker_accepts(snippet: str) -> None:
    assert check_source(snippet) == []


CONVENTIONAL = """# labctl-step: sample 1

<#
.SYNOPSIS
    A sample.

.DESCRIPTION
    What it does.

.PARAMETER Name
    The name.

.OUTPUTS
    System.Management.Automation.PSCustomObject.

.NOTES
    A sample step.
#>

#Requires -Version 5.1
[CmdletBinding()]
param(
    [Parameter(Mandatory = $true)]
    [string] $Name
)
Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'
"""

# Each case edits the conventional script: (old text, new text, expected problem).
BAD_CONVENTIONS = {
    "no help": (CONVENTIONAL[CONVENTIONAL.index("<#"):CONVENTIONAL.index("#>") + 3], "", "no comment-based help"),
    "help glued to the header": ("1\n\n<#", "1\n<#", "a blank line must separate the help"),
    "statement before param": ("#Requires -Version 5.1\n", "#Requires -Version 5.1\n$x = 1\n",
                               "syntax error"),  # PowerShell too: an attribute must precede param()
    "no param": ("[CmdletBinding()]\nparam(\n    [Parameter(Mandatory = $true)]\n    [string] $Name\n)\n", "",
                 "no param() block first"),
    "help without synopsis": (".SYNOPSIS\n    A sample.\n", "", "help has no .SYNOPSIS"),
    "help without notes": (".NOTES\n    A sample step.\n", "", "help has no .NOTES"),
    "undocumented parameter": ("[string] $Name\n", "[string] $Name,\n    [int] $Count\n",
                               "help has no .PARAMETER Count"),
    "documents a stale parameter": (".PARAMETER Name", ".PARAMETER Nam", "documents .PARAMETER Nam,"),
    "unknown help keyword": (".OUTPUTS", ".OUTPUT", "help keyword .OUTPUT is not one PowerShell knows"),
    "no requires": ("#Requires -Version 5.1\n", "", "no '#Requires -Version 5.1'"),
    "requires another version": ("-Version 5.1", "-Version 3.0", "no '#Requires -Version 5.1'"),
    "no cmdletbinding": ("[CmdletBinding()]\n", "", "no [CmdletBinding()]"),
    "positional binding off": ("[CmdletBinding()]", "[CmdletBinding(PositionalBinding = $false)]",
                               "binds by declaration order"),
    "explicit position": ("Mandatory = $true", "Mandatory = $true, Position = 1", "binds by declaration order"),
    "common parameter name": ("$Name\n", "$Verbose\n", "Verbose is a common parameter's name"),
    "common parameter alias": ("[string] $Name", "[Alias('ev')] [string] $Name", "ev is a common parameter's"),
    "no strict mode": ("Set-StrictMode -Version Latest\n", "", "must be 'Set-StrictMode -Version Latest'"),
    "older strict mode": ("-Version Latest", "-Version 2.0", "must be 'Set-StrictMode -Version Latest'"),
    "strict mode after the preference": (
        "Set-StrictMode -Version Latest\n$ErrorActionPreference = 'Stop'\n",
        "$ErrorActionPreference = 'Stop'\nSet-StrictMode -Version Latest\n", "must be 'Set-StrictMode"),
    "no error preference": ("$ErrorActionPreference = 'Stop'\n", "", "the second statement must be"),
}


def test_convention_checker_accepts_the_conventional_script() -> None:
    assert convention_problems(CONVENTIONAL) == []
    assert convention_problems(CONVENTIONAL.replace("[string] $Name", "[string] $name")) == []  # case-blind
    assert check_source(CONVENTIONAL) == []  # Set-StrictMode binds (the catalog's core.json)


@pytest.mark.parametrize("case", sorted(BAD_CONVENTIONS))
def test_convention_checker_rejects(case: str) -> None:
    old, new, expected = BAD_CONVENTIONS[case]
    assert old in CONVENTIONAL, case
    problems = convention_problems(CONVENTIONAL.replace(old, new, 1))
    assert any(expected in p for p in problems), problems


def test_strict_mode_off_check() -> None:
    def user_call(source: str) -> Node:
        return next(n for n in walk(parse(source)) if n.type == "command" and command_name(n)[0] == "$userScript")

    assert strict_mode_off_around(user_call("& {\n    Set-StrictMode -Off\n    & $userScript\n}"))
    assert not strict_mode_off_around(user_call("& $userScript"))
    assert not strict_mode_off_around(user_call("& {\n    & $userScript\n    Set-StrictMode -Off\n}"))
    assert not strict_mode_off_around(user_call("& {\n    Set-StrictMode -Version 1\n    & $userScript\n}"))


def test_secret_check_catches_leaks() -> None:
    leaky = "param([string] $KeyPem)\n$k = $KeyPem\nthrow \"bad key $k\"\nWrite-Output $KeyPem\n" \
            "[pscustomobject]@{ Key = $k }"
    leaks = secret_leaks(leaky, ("KeyPem",))
    assert len(leaks) == 3, leaks
    assert secret_leaks("param([string] $KeyPem)\n$k = $KeyPem\nif ($k -match 'x') { }", ("KeyPem",)) == []


def test_contract_parser_reads_params_and_output() -> None:
    doc = (
        "## Guest steps\n\n| step | arguments | does | Facts |\n|---|---|---|---|\n"
        "| `a-step` 2 | `[string[]] $Names`, `[int] $Count` | x | `Done` (bool), `Items`: list of `@{ Id; Size }` |\n"
        "| `b-step` 1 | — | y | (no Step/Changed: `ExitCode`, `Output` (string[])) |\n"
        "## Host steps\n\n| step | arguments | does |\n|---|---|---|\n"
        "| `c-step` 1 | `[pscredential] $Credential` | z |\n"
    )
    steps = parse_contract(doc)
    assert steps[("guest", "a-step")].params == (("string[]", "Names"), ("int", "Count"))
    assert steps[("guest", "a-step")].version == "2"
    assert contract_output(steps[("guest", "a-step")].output) == (True, {"Done", "Items", "Id", "Size"})
    assert contract_output(steps[("guest", "b-step")].output) == (False, {"ExitCode", "Output"})
    assert steps[("host", "c-step")].params == (("pscredential", "Credential"),)


def test_docker_install_refuses_another_installation_before_touching_anything() -> None:
    """A docker service of another installation is refused before labctl stops it or replaces what it reads
    (its binaries, the machine PATH, the shared default daemon.json); version 2 checked only afterwards."""
    script = source_of(TEMPLATES / "guest" / "docker-install.ps1")
    refusal = script.index("Remove that installation")
    changes = ("Stop-Service -Name docker -Force", "Expand-Archive -LiteralPath", "SetEnvironmentVariable('Path'",
               "WriteAllText($configPath", "-ArgumentList '--register-service'")
    for change in changes:
        assert refusal < script.index(change), change
    assert script.index("-isnot [System.Management.Automation.PSCustomObject]") < script.index(changes[1])
