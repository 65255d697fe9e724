"""Runs a script that needs two logical CPUs (``MirroredStrategy`` tests) in a child process.

Logical devices must be configured before TensorFlow starts, so each two-replica check is a
script run by a fresh Python; it imports the course_lib this process imported (not whatever
is installed) and must print its ``marker`` on success.
"""

import os
import subprocess
import sys
from pathlib import Path

import course_lib


def run_script(tmp_path, script, marker, *, timeout=600):
    """Writes ``script`` under ``tmp_path``, runs it, and fails with its output tail unless it
    exits 0 and prints ``marker``."""
    path = tmp_path / f"{marker.lower()}.py"
    path.write_text(script)
    package_root = str(Path(course_lib.__file__).resolve().parents[1])
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2",
               PYTHONPATH=os.pathsep.join(filter(None, [package_root,
                                                        os.environ.get("PYTHONPATH")])))
    result = subprocess.run([sys.executable, str(path)], capture_output=True, text=True,
                            timeout=timeout, env=env)
    assert result.returncode == 0 and marker in result.stdout, (
        result.stdout[-2000:] + result.stderr[-4000:])
