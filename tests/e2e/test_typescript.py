"""The panel's TypeScript type-checks (strict) and lints clean, as CI runs it; its reading of agent output."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_typecheck_and_lint():
    jlpm = shutil.which("jlpm", path=str(Path(sys.executable).parent)) or shutil.which("jlpm")
    assert jlpm, "jlpm comes with jupyterlab (the test extra)"
    # package.json's scripts call jlpm again: it must be on PATH.
    env = {**os.environ, "PATH": f"{Path(jlpm).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    if not (ROOT / "node_modules").is_dir():
        subprocess.run([jlpm, "install"], cwd=ROOT, check=True, capture_output=True, timeout=600, env=env)
    done = subprocess.run([jlpm, "check"], cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


# src/readable.ts run by Node as it is (transpiled on the fly), on real agents' output.
READ_OUTPUT = r"""
const fs = require('fs');
const ts = require('typescript');
const source = fs.readFileSync(process.argv[1], 'utf8');
const js = ts.transpileModule(source, { compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2019 } });
const mod = { exports: {} };
new Function('module', 'exports', js.outputText)(mod, mod.exports);
const read = {};
for (const file of process.argv.slice(2)) {
  read[file] = mod.exports.readableOutput(fs.readFileSync(file, 'utf8').split('\n').filter(Boolean));
}
process.stdout.write(JSON.stringify(read));
"""


def test_agent_output_reads_as_words():
    """Each agent's JSON events (and OpenCode's log lines) told in words: no line of JSON left."""
    outputs = sorted((ROOT / "tests" / "unit" / "agent_output").glob("*"))
    done = subprocess.run(["node", "-e", READ_OUTPUT, str(ROOT / "src" / "readable.ts"), *map(str, outputs)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "NODE_PATH": str(ROOT / "node_modules")})
    assert done.returncode == 0, done.stderr
    read = {Path(k).name: v for k, v in json.loads(done.stdout).items()}
    for name, lines in read.items():
        assert lines, name
        assert not [line for line in lines if line.lstrip().startswith(("{", "["))], name
    assert read["opencode-401.jsonl"] == ["Error: Incorrect API key provided: sk-te***st. (HTTP 401)"]
    assert read["opencode-401.log"][-1] == "log error: stream error (AI_APICallError: Incorrect API key provided: sk-te***st.)"
    assert "Retrying the model: authentication failed (HTTP 401)" in read["claude-401.jsonl"]
    assert read["claude-401.jsonl"][0].startswith("Claude Code started")
    assert read["codex-down.jsonl"][1] == "Retrying the model: Connection failed: error sending request"
    assert read["codex-401.jsonl"][-1].startswith("Error: unexpected status 401 Unauthorized")
