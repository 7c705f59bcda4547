"""Shared by the Python e2e tests: wait for a tachyon process to listen."""
import re
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
