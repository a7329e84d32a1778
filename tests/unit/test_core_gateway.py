"""The gateway stays the only way to Docker, and the in-memory engine keeps its interface."""

from __future__ import annotations

import ast
import functools
import inspect
from pathlib import Path

from perry_jupyter.core.engine import Engine
from tests.fake_engine import FakeEngine

PACKAGE = Path(__file__).resolve().parents[2] / "perry_jupyter"
GATEWAY = PACKAGE / "core" / "engine.py"
# namedtuple's API, public despite its underscore.
# namedtuple's public API, and the hook jupyter_server calls on an ExtensionApp to link it.
PUBLIC_UNDERSCORED = {"_replace", "_asdict", "_fields", "_make", "_link_jupyter_server_extension"}


@functools.lru_cache(maxsize=1)
def modules() -> list[tuple[str, ast.AST]]:
    return [(str(f.relative_to(PACKAGE.parent)), ast.parse(f.read_text(encoding="utf-8"), str(f)))
            for f in sorted(PACKAGE.rglob("*.py")) if f != GATEWAY]


def docker_imports(tree: ast.AST) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.split(".")[0] == "docker"]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == "docker":
            found.append(node.module)
    return found


def docker_command_lines(tree: ast.AST) -> list[str]:
    """Lists or tuples that read as a `docker ...` command line, and "docker" kept as a program name."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.List, ast.Tuple)):
            words = [e.value for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]
            starts_with_docker = bool(node.elts) and isinstance(node.elts[0], ast.Constant) and \
                node.elts[0].value == "docker"
            subcommand = ("exec" in words and {"-it", "-i", "-u"} & set(words)) or \
                ("inspect" in words and {"-f", "--format"} & set(words))
            if starts_with_docker or subcommand:
                found.append(f"line {node.lineno}: {ast.unparse(node)[:80]}")
        elif isinstance(node, (ast.arguments,)):
            for default in [*node.defaults, *node.kw_defaults]:
                if isinstance(default, ast.Constant) and default.value == "docker":
                    found.append(f"line {default.lineno}: a default of \"docker\"")
        elif isinstance(node, (ast.Assign, ast.AnnAssign)) and isinstance(node.value, ast.Constant) \
                and node.value.value == "docker":
            found.append(f"line {node.lineno}: {ast.unparse(node)[:80]}")
    return found


def test_only_the_gateway_imports_the_docker_sdk():
    offenders = {path: names for path, tree in modules() if (names := docker_imports(tree))}
    assert offenders == {}, f"only {GATEWAY.name} may import the Docker SDK: {offenders}"


def test_only_the_gateway_builds_a_docker_command_line():
    offenders = {path: lines for path, tree in modules() if (lines := docker_command_lines(tree))}
    assert offenders == {}, f"only {GATEWAY.name} may build a `docker ...` command line: {offenders}"


def test_the_check_sees_what_it_must():
    seen = ast.parse('import docker.errors\nfrom docker.utils.socket import frames_iter\n'
                     'cmd = ["docker", "-H", host, "exec", "-it", c, "bash"]\n'
                     'probe = [*docker, "inspect", "-f", "{{.State.Running}}", c]\n'
                     'def f(cli: str = "docker"): pass\n'
                     'volumes.get("docker")\nx = {"docker": 1}\n')
    assert docker_imports(seen) == ["docker.errors", "docker.utils.socket"]
    assert [line.split(":")[0] for line in docker_command_lines(seen)] == ["line 3", "line 4", "line 5"]


def test_core_modules_use_no_other_modules_private_names():
    offenders = []
    for path, tree in modules():
        if not (path.startswith("perry_jupyter/core/") or path == "perry_jupyter/app.py"):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__") \
                    and node.attr not in PUBLIC_UNDERSCORED \
                    and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")):
                offenders.append(f"{path}:{node.lineno} {ast.unparse(node)}")
            elif isinstance(node, ast.ImportFrom):
                offenders += [f"{path}:{node.lineno} imports {a.name}" for a in node.names
                              if a.name.startswith("_") and not a.name.startswith("__")]
    assert offenders == []


def public_methods(cls) -> dict[str, inspect.Signature]:
    return {name: inspect.signature(member) for name, member in vars(cls).items()
            if callable(member) and not name.startswith("_")}


def test_the_fake_engine_has_the_gateways_interface():
    real = public_methods(Engine)
    fake = public_methods(FakeEngine)
    missing = sorted(set(real) - set(fake) - {"unavailable"})
    assert missing == [], f"FakeEngine lacks {missing}"
    differing = {name: (str(sig), str(fake[name])) for name, sig in real.items()
                 if name in fake and sig.replace(return_annotation=inspect.Signature.empty) !=
                 fake[name].replace(return_annotation=inspect.Signature.empty)}
    assert differing == {}
