"""Starts and stops test/pvesim for the demo and the benchmarks."""
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))


class Sim:
    def __init__(self, guests=5, extra=(), auth_delay="0", task_seconds="0.3"):
        self.dir = tempfile.mkdtemp(prefix="felhom-sim-")
        self.port_file = os.path.join(self.dir, "ports.json")
        self.token_file = os.path.join(self.dir, "token")
        self.fp_file = os.path.join(self.dir, "fingerprint")
        args = [os.path.join(HERE, "pvesim"), "--listen", "127.0.0.1:0", "--control", "127.0.0.1:0",
                "--port-file", self.port_file, "--token-file", self.token_file,
                "--fingerprint-file", self.fp_file, "--state-dir", os.path.join(self.dir, "state"),
                "--guests", str(guests), "--auth-delay", auth_delay, "--task-seconds", task_seconds,
                "--quiet"] + list(extra)
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while not os.path.exists(self.port_file):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("pvesim did not start")
            time.sleep(0.05)
        time.sleep(0.05)
        ports = json.load(open(self.port_file))
        self.port = ports["port"]
        self.control_port = ports["control_port"]
        self.fingerprint = open(self.fp_file).read().strip()
        self.endpoint = "https://127.0.0.1:%d" % self.port

    def control(self, method, path, body=None):
        req = urllib.request.Request("http://127.0.0.1:%d%s" % (self.control_port, path), method=method,
                                     data=json.dumps(body).encode() if body is not None else None)
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read() or b"null")

    def agent_env(self):
        """Environment for felhom-agent: the token by file, never on argv."""
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
               "FELHOM_AGENT_PROXMOX_ENDPOINT": self.endpoint,
               "FELHOM_AGENT_PROXMOX_NODE": "pve",
               "FELHOM_AGENT_PROXMOX_TOKEN_FILE": self.token_file,
               "FELHOM_AGENT_PROXMOX_TLS_FINGERPRINT": self.fingerprint,
               "FELHOM_AGENT_STATE_DIR": os.path.join(self.dir, "agent-state")}
        for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS"):
            if k in os.environ:
                env[k] = os.environ[k]
        return env

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)
