"""Starts and stops test/hubsim for the demo and the benchmarks, and runs
felhom-agent as a daemon against it and test/pvesim (see simlib.Sim)."""
import json
import os
import tempfile

from proclib import SimProcess


class Hub(SimProcess):
    def __init__(self, envelope=None, extra=()):
        self.dir = tempfile.mkdtemp(prefix="felhom-hub-")
        self.port_file = os.path.join(self.dir, "ports.json")
        self.key_file = os.path.join(self.dir, "hub.key")
        self.fp_file = os.path.join(self.dir, "fingerprint")
        self.cert_file = os.path.join(self.dir, "hub-ca.pem")
        args = ["--listen", "127.0.0.1:0", "--control", "127.0.0.1:0",
                "--port-file", self.port_file, "--api-key-file", self.key_file,
                "--fingerprint-file", self.fp_file, "--cert-file", self.cert_file,
                "--state-dir", os.path.join(self.dir, "state"), "--quiet"] + list(extra)
        if envelope:
            args += ["--envelope", json.dumps(envelope)]
        self._start("hubsim", args)
        self.url = "https://127.0.0.1:%d" % self.port


def agent_env(sim, hub, state_dir, **overrides):
    """felhom-agent's environment for a daemon against sim (pvesim) and hub:
    secrets by file, pins for both, short intervals unless overridden."""
    env = sim.agent_env()
    env.update({
        "FELHOM_AGENT_HUB_URL": hub.url,
        "FELHOM_AGENT_HUB_HOST_ID": "host-demo",
        "FELHOM_AGENT_HUB_API_KEY_FILE": hub.key_file,
        "FELHOM_AGENT_HUB_TLS_FINGERPRINT": hub.fingerprint,
        "FELHOM_AGENT_STATE_DIR": state_dir,
        # no sudo rule on a demo machine: cpu_temp_c is null
        "FELHOM_AGENT_PRIVILEGED_SUDO_PATH": "/bin/false",
    })
    for k, v in overrides.items():
        env["FELHOM_AGENT_" + k.upper()] = str(v)
    return env
