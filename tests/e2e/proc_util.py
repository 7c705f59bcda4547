"""Shared by the Python e2e tests: start a tachyon process and wait for it to listen."""
import re
import subprocess
import threading
import time


def wait_listening(proc, log, timeout_s):
    """Reads proc's stderr into `log` (lines) until it prints "listening on http://...".

    Returns that URL, or None when the process ended or timeout_s passed first. Once it
    listens, a daemon thread keeps draining stderr into `log` (so the pipe never fills).
    """
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        line = proc.stderr.readline()
        if not line:
            return None
        log.append(line.rstrip("\n"))
        m = re.search(r"listening on (http://\S+)", line)
        if m:
            def drain():
                for rest in proc.stderr:
                    log.append(rest.rstrip("\n"))
            threading.Thread(target=drain, daemon=True).start()
            return m.group(1)
    return None


class Proc:
    """A subprocess that prints "listening on http://HOST:PORT" on stderr (`base`).

    Appended to `registry` (a list the test kills at exit) before it is waited for, so a
    process that fails to start is killed too. Raises RuntimeError, with its stderr, when
    it does not listen within timeout_s.
    """

    def __init__(self, cmd, name, registry, timeout_s=60):
        self.name = name
        self.cmd = cmd
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        registry.append(self)
        self.log = []
        self.base = wait_listening(self.proc, self.log, timeout_s)
        if self.base is None:
            self.kill()
            raise RuntimeError(f"{name} did not start: {' '.join(cmd)}\n" + "\n".join(self.log))

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
