"""Runs a script that needs two logical CPUs (``MirroredStrategy`` tests) in a child process.

Logical devices must be configured before TensorFlow starts, so each two-replica check is a
script run by a fresh Python; it imports the course_lib this process imported (not whatever
is installed) and must print its ``marker`` on success.
"""

import os
import subprocess
import sys
import textwrap
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


# The start of every two-replica script: two logical CPUs (before TensorFlow starts), the
# one-device and two-replica strategies, and a check that a model's every weight holds the
# same value on both replicas.
TWO_CPUS = textwrap.dedent("""
    import numpy as np
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()])
    import keras

    ONE = tf.distribute.get_strategy()
    TWO = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    assert TWO.num_replicas_in_sync == 2

    def copies(variable):
        value = variable.value
        return [t.numpy() for t in getattr(value, "values", [value])]

    def same_on_every_replica(model):
        for v in model.weights:
            first, *others = copies(v)
            for other in others:
                np.testing.assert_array_equal(other, first, err_msg=v.path)
""")
