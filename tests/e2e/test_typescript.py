"""The panel's TypeScript type-checks (strict) and lints clean, as CI runs it."""

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
