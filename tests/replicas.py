"""Runs a script that needs two logical CPUs (``MirroredStrategy`` tests) in a child process.

Logical devices must be configured before TensorFlow starts, so each two-replica check is a
script run by another Python; it imports the course_lib this process imported (not whatever
is installed) and must print its ``marker`` on success.

``run_script(..., shared=True)`` runs it in one child kept for the whole test process (one
TensorFlow start instead of one per script, ~8 s of CPU each): that child configures the two
logical CPUs once, then runs each script in a fresh namespace after ``clear_session``, with
Keras' default dtype policy; a script's own request for the same two logical CPUs is a
no-op there, any other device request fails. Without ``shared``, each script gets a fresh
Python of its own.
"""

import atexit
import json
import os
import queue
import subprocess
import sys
import tempfile
import textwrap
import threading
from pathlib import Path

import course_lib


def child_env():
    """The environment of a child Python that imports this process's course_lib."""
    package_root = str(Path(course_lib.__file__).resolve().parents[1])
    return dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2",
                PYTHONPATH=os.pathsep.join(filter(None, [package_root,
                                                         os.environ.get("PYTHONPATH")])))


def run_script(tmp_path, script, marker, *, timeout=600, shared=False):
    """Writes ``script`` under ``tmp_path``, runs it, and fails with its output tail unless it
    exits 0 (in the shared child: raises nothing) and prints ``marker``."""
    path = tmp_path / f"{marker.lower()}.py"
    path.write_text(script)
    if shared:
        _SHARED.run(path, marker, timeout)
        return
    result = subprocess.run([sys.executable, str(path)], capture_output=True, text=True,
                            timeout=timeout, env=child_env())
    assert result.returncode == 0 and marker in result.stdout, (
        result.stdout[-2000:] + result.stderr[-4000:])


# The shared child: two logical CPUs, then one script per request line on stdin (a JSON
# path); one JSON reply line per script on the protocol descriptor. Descriptor 1 goes to the
# log with descriptor 2, so that nothing TensorFlow prints can break the protocol.
_SERVER = textwrap.dedent("""
    import contextlib, io, json, os, sys, traceback
    reply = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    TWO = [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()]
    tf.config.set_logical_device_configuration(cpu, TWO)
    tf.config.list_logical_devices()                         # the runtime starts here

    def same_two_cpus(device, logical_devices):
        if device != cpu or list(logical_devices) != TWO:
            raise RuntimeError("the shared two-replica child has two plain logical CPUs; "
                               f"this script asks for {logical_devices} on {device}: run it "
                               "with run_script(..., shared=False)")

    set_devices = tf.config.set_logical_device_configuration
    tf.config.set_logical_device_configuration = same_two_cpus
    import keras
    from tensorflow.python.eager import context

    for line in sys.stdin:
        path = json.loads(line)
        keras.backend.clear_session()
        context._reset_context()        # the next MirroredStrategy reuses collective keys
        set_devices(cpu, TWO)
        keras.config.set_dtype_policy("float32")
        out = io.StringIO()
        ok = True
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            try:
                code = compile(open(path).read(), path, "exec")
                exec(code, {"__name__": "__main__", "__file__": path})
            except SystemExit as stop:
                ok = stop.code in (None, 0)
                if not ok:
                    print(f"SystemExit({stop.code!r})")
            except BaseException:
                ok = False
                traceback.print_exc()
        reply.write(json.dumps({"ok": ok, "output": out.getvalue()}) + "\\n")
        reply.flush()
""")


class _SharedChild:
    """The shared child of this test process, started at its first use, restarted after a
    script that crashed it or ran past its timeout."""

    def __init__(self):
        self.process = self.log = None

    def start(self):
        self.log = tempfile.TemporaryFile(mode="w+")
        self.process = subprocess.Popen([sys.executable, "-c", _SERVER], env=child_env(),
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=self.log, text=True)

    def stop(self):
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.log.close()
        self.process = self.log = None

    def log_tail(self):
        self.log.seek(0)
        return self.log.read()[-4000:]

    def run(self, path, marker, timeout):
        if self.process is None or self.process.poll() is not None:
            self.stop()
            self.start()
        self.process.stdin.write(json.dumps(str(path)) + "\n")
        self.process.stdin.flush()
        replies = queue.Queue()
        threading.Thread(target=lambda: replies.put(self.process.stdout.readline()),
                         daemon=True).start()
        try:
            line = replies.get(timeout=timeout)
        except queue.Empty:
            tail = self.log_tail()
            self.stop()
            raise AssertionError(f"{path.name} ran past {timeout} s\n{tail}") from None
        if not line:                                      # the child died
            tail = self.log_tail()
            self.stop()
            raise AssertionError(f"the shared child died running {path.name}\n{tail}")
        reply = json.loads(line)
        assert reply["ok"] and marker in reply["output"], (
            reply["output"][-6000:] + self.log_tail())


_SHARED = _SharedChild()
atexit.register(_SHARED.stop)


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
