"""Starts and stops test/pvesim for the demo and the benchmarks."""
import os
import tempfile

from proclib import SimProcess


class Sim(SimProcess):
    def __init__(self, guests=5, extra=(), auth_delay="0", task_seconds="0.3"):
        self.dir = tempfile.mkdtemp(prefix="felhom-sim-")
        self.port_file = os.path.join(self.dir, "ports.json")
        self.token_file = os.path.join(self.dir, "token")
        self.fp_file = os.path.join(self.dir, "fingerprint")
        args = ["--listen", "127.0.0.1:0", "--control", "127.0.0.1:0",
                "--port-file", self.port_file, "--token-file", self.token_file,
                "--fingerprint-file", self.fp_file, "--state-dir", os.path.join(self.dir, "state"),
                "--guests", str(guests), "--auth-delay", auth_delay, "--task-seconds", task_seconds,
                "--quiet"] + list(extra)
        self._start("pvesim", args, settle=0.05)
        self.endpoint = "https://127.0.0.1:%d" % self.port

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
