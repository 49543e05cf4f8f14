"""The child-process side shared by simlib.Sim (test/pvesim) and hublib.Hub
(test/hubsim): start a simulator script, wait for its port file, talk to its
plain-HTTP control port, stop it and remove its state directory."""
import json
import os
import shutil
import signal
import subprocess
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))


class SimProcess:
    """Base of Sim and Hub. A subclass sets self.dir, self.port_file and
    self.fp_file, then calls _start()."""

    def _start(self, script, args, settle=0.0):
        """Runs test/<script> with args; waits up to 30 s for the port file
        (RuntimeError "<script> did not start" after stop()), sleeps settle
        seconds, then sets port, control_port and fingerprint."""
        self.proc = subprocess.Popen([os.path.join(HERE, script)] + list(args), stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while not os.path.exists(self.port_file):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("%s did not start" % script)
            time.sleep(0.05)
        if settle:
            time.sleep(settle)
        with open(self.port_file) as f:
            ports = json.load(f)
        self.port = ports["port"]
        self.control_port = ports["control_port"]
        with open(self.fp_file) as f:
            self.fingerprint = f.read().strip()

    def control(self, method, path, body=None):
        req = urllib.request.Request("http://127.0.0.1:%d%s" % (self.control_port, path), method=method,
                                     data=json.dumps(body).encode() if body is not None else None)
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read() or b"null")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)
