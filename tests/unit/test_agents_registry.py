"""The coding agents are declared once, in perry_worker/agents.py, and everything else reads that list."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

from perry_worker import agents

ROOT = Path(__file__).resolve().parents[2]
REGISTRY = ROOT / "perry_worker" / "agents.py"
# Two agent names side by side in a text ("opencode, claude", "opencode,claude,codex"): a list written out.
LISTED_IN_TEXT = re.compile(r"\b(%s)\b[\s,|/]{1,3}(?:or |and )?\b(%s)\b" % (("|".join(agents.NAMES),) * 2))



def _sources():
    for package in ("perry_jupyter", "perry_worker"):
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if path != REGISTRY:
                yield rel, ast.parse(path.read_text(encoding="utf-8"))


def _agent_names(node: ast.AST) -> list[str]:
    return [e.value for e in ast.iter_child_nodes(node)
            if isinstance(e, ast.Constant) and e.value in agents.AGENTS]


def test_no_other_module_writes_out_a_list_of_agents():
    found = []
    for rel, tree in _sources():
        for node in ast.walk(tree):
            if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
                names = _agent_names(node)
            elif isinstance(node, ast.Dict):
                names = [k.value for k in node.keys if isinstance(k, ast.Constant) and k.value in agents.AGENTS]
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                names = list(LISTED_IN_TEXT.search(node.value).groups()) if LISTED_IN_TEXT.search(node.value) else []
            else:
                continue
            if len(set(names)) >= 2:
                found.append(f"{rel}:{node.lineno}: {', '.join(names)}")
    assert not found, "agents listed outside perry_worker/agents.py:\n" + "\n".join(found)


def test_no_other_module_chooses_a_default_agent():
    found = []
    for rel, tree in _sources():
        for node in ast.walk(tree):
            defaults = []
            if isinstance(node, ast.arguments):
                defaults = [*node.defaults, *[d for d in node.kw_defaults if d is not None]]
            elif isinstance(node, ast.IfExp):
                defaults = [node.body, node.orelse]
            found += [f"{rel}:{d.lineno}: {d.value}" for d in defaults
                      if isinstance(d, ast.Constant) and d.value in agents.AGENTS]
    assert not found, "a default agent chosen outside perry_worker/agents.py:\n" + "\n".join(found)


def test_each_agent_has_its_reader_its_files_and_a_resume_command_of_its_cli():
    for agent in agents.AGENTS.values():
        reader = agent.session_reader("/nonexistent-home", {})
        assert reader.agent == agent.name and reader.summaries() == {}
        assert agent.resume_command("ses_1").startswith(agent.cli + " ") and "ses_1" in agent.resume_command("ses_1")
        assert agent.files and all(not f.startswith("/") for f in agent.files)
    assert agents.DEFAULT in agents.AGENTS and set(agents.IMAGE_DEFAULT) <= set(agents.AGENTS)


def test_the_resume_argv_keeps_the_id_one_argument():
    assert [a.resume_argv("ses_1") for a in agents.AGENTS.values()] == [
        ["opencode", "--session", "ses_1"], ["claude", "--resume", "ses_1"], ["codex", "resume", "ses_1"]]
    odd = "a b; $(x) 'q'"
    assert agents.AGENTS["codex"].resume_argv(odd) == ["codex", "resume", odd]


def test_the_registry_needs_only_the_standard_library():
    # Workspaces run perry_worker with their python3 alone.
    code = ("import sys; sys.path.insert(0, %r); import perry_worker.agents, perry_worker.sessions; "
            "print(sorted(m.split('.')[0] for m in sys.modules if m.split('.')[0] in "
            "('perry_jupyter', 'docker', 'traitlets', 'tornado', 'jupyter_server')))" % str(ROOT))
    out = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_worker_copied_into_workspaces_carries_the_registry():
    import io
    import tarfile

    from perry_jupyter.core.archive import worker_tar

    names = tarfile.open(fileobj=io.BytesIO(worker_tar())).getnames()
    assert "opt/perry/perry_worker/agents.py" in names
