#!/usr/bin/env python3
"""Regenerates the SSHSIG golden vectors in vectors/sshsig/ (and the seed
corpora of the two sshsig fuzz targets).

    python3 vectors/sshsig/gen.py

Needs ssh-keygen (OpenSSH) and python3-cryptography. The tests never run
this script: they only read what it wrote, which is checked in. Every run
makes fresh keys, so every file changes; commit the whole directory.

What it writes (format: docs/PROTOCOL.opsig.md, "Golden vectors"):
  manifest.txt        one case per line: NAME EXPECTED BLOB SIG SIGNERS HOST NOW
                      (tab-separated); cases run in order against ONE fresh
                      nonce store, so an accepted case burns its nonce
  blobs/NAME.json     the exact op-blob bytes that were signed (the message)
  sigs/NAME.sig       the armored SSHSIG
  signers*.txt        signer files (ROLE KEY_ID KEYTYPE BASE64 [COMMENT])
  keys/*.pub          the public keys, for reference
  openssh-9.2.txt     NAME, then what `ssh-keygen -Y check-novalidate` of this
                      machine's OpenSSH says about the signature alone
                      (accept/reject): where we are stricter than OpenSSH
  fuzz-message.json   the message the blob fuzz target checks signatures over
Real ssh-keygen signatures are used wherever ssh-keygen can make them; this
script signs only what ssh-keygen 9.2 cannot (FIDO keys without a token,
rsa-sha2-256, SHA-1, chosen short values) or what a mutation must re-sign.
"""
import base64
import hashlib
import os
import shutil
import struct
import subprocess
import sys
import tempfile

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, utils

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
NS = b"felhom-op-v1"
HOST = "host-7f3a"
ISSUED = 1781000000
EXPIRES = 1781000900
NOW = 1781000300
MAXLIFE = 3600       # authz.max_lifetime_seconds the manifest assumes
SKEW = 60            # authz.clock_skew_seconds the manifest assumes

ORDER = {
    "nistp256": 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551,
    "nistp384": int("FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF"
                    "581A0DB248B0A77AECEC196ACCC52973", 16),
    "nistp521": int("01FF" + "FFFFFFFF" * 7 + "FFFFFFFA"
                    "51868783BF2F966B7FCC0148F709A5D03BB5C9B8899C47AEBB6FB71E91386409", 16),
}
ED25519_L = 2**252 + 27742317777372353535851937790883648493

# ---- SSH wire ---------------------------------------------------------------


def u32(n):
    return struct.pack(">I", n)


def sstr(b):
    if isinstance(b, str):
        b = b.encode()
    return u32(len(b)) + b


def mpint(i):
    if i == 0:
        return u32(0)
    b = i.to_bytes((i.bit_length() + 7) // 8, "big")
    if b[0] & 0x80:
        b = b"\0" + b
    return sstr(b)


def read_str(b, off):
    n = struct.unpack(">I", b[off:off + 4])[0]
    return b[off + 4:off + 4 + n], off + 4 + n


class SSHSIG:
    """The envelope as editable parts."""

    def __init__(self, raw):
        assert raw[:6] == b"SSHSIG"
        self.magic = raw[:6]
        self.version = struct.unpack(">I", raw[6:10])[0]
        off = 10
        self.key, off = read_str(raw, off)
        self.ns, off = read_str(raw, off)
        self.reserved, off = read_str(raw, off)
        self.hash, off = read_str(raw, off)
        self.sig, off = read_str(raw, off)
        assert off == len(raw)
        self.trailer = b""

    def bytes(self):
        return (self.magic + u32(self.version) + sstr(self.key) + sstr(self.ns) +
                sstr(self.reserved) + sstr(self.hash) + sstr(self.sig) + self.trailer)


def envelope(key, sig, hashalg, ns=NS):
    return b"SSHSIG" + u32(1) + sstr(key) + sstr(ns) + sstr(b"") + sstr(hashalg) + sstr(sig)


def armor(raw, width=70, nl="\n"):
    b64 = base64.b64encode(raw).decode()
    if width:
        body = nl.join(b64[i:i + width] for i in range(0, len(b64), width))
    else:
        body = b64
    return "-----BEGIN SSH SIGNATURE-----" + nl + body + nl + "-----END SSH SIGNATURE-----" + nl


def dearmor(text):
    lines = text.strip().split("\n")
    assert lines[0] == "-----BEGIN SSH SIGNATURE-----" and lines[-1] == "-----END SSH SIGNATURE-----"
    return base64.b64decode("".join(lines[1:-1]))


def signed_data(msg, hashalg, ns=NS):
    return (b"SSHSIG" + sstr(ns) + sstr(b"") + sstr(hashalg) +
            sstr(hashlib.new(hashalg.decode() if isinstance(hashalg, bytes) else hashalg, msg).digest()))

# ---- keys -------------------------------------------------------------------


class Key:
    """A signing key: its SSH public blob and a signer for the SSHSIG data."""

    def __init__(self, name, kind, priv, blob, app=None, curve=None):
        self.name, self.kind, self.priv, self.blob, self.app, self.curve = name, kind, priv, blob, app, curve

    @property
    def type(self):
        return read_str(self.blob, 0)[0].decode()

    def line(self, role, kid, comment=""):
        return "%s %s %s %s%s" % (role, kid, self.type, base64.b64encode(self.blob).decode(),
                                  " " + comment if comment else "")


EC_HASH = {"nistp256": hashes.SHA256, "nistp384": hashes.SHA384, "nistp521": hashes.SHA512}


def ec_rs(priv, data, curve):
    return utils.decode_dss_signature(priv.sign(data, ec.ECDSA(EC_HASH[curve]())))


def fido_msg(app, flags, counter, d):
    return hashlib.sha256(app).digest() + bytes([flags]) + u32(counter) + hashlib.sha256(d).digest()


def py_sign(key, msg, hashalg=b"sha512", ns=NS, rsa_alg="rsa-sha2-512", flags=0x01, counter=42,
            blob_flags=None, sign_app=None, rs=None):
    """SSHSIG bytes made here (not by ssh-keygen). rs: callback editing (r, s)."""
    d = signed_data(msg, hashalg, ns)
    if key.kind == "ed25519":
        sig = sstr("ssh-ed25519") + sstr(key.priv.sign(d))
    elif key.kind == "ecdsa":
        r, s = ec_rs(key.priv, d, key.curve)
        if rs:
            r, s = rs(r, s)
        sig = sstr(key.type) + sstr(mpint(r) + mpint(s))
    elif key.kind == "rsa":
        h = {"rsa-sha2-256": hashes.SHA256, "rsa-sha2-512": hashes.SHA512, "ssh-rsa": hashes.SHA1}[rsa_alg]
        sig = sstr(rsa_alg) + sstr(key.priv.sign(d, padding.PKCS1v15(), h()))
    elif key.kind in ("sk-ed25519", "sk-ecdsa"):
        m = fido_msg(sign_app or key.app, flags, counter, d)
        if key.kind == "sk-ed25519":
            inner = sstr(key.priv.sign(m))
            name = "sk-ssh-ed25519@openssh.com"
        else:
            r, s = utils.decode_dss_signature(key.priv.sign(m, ec.ECDSA(hashes.SHA256())))
            inner = sstr(mpint(r) + mpint(s))
            name = "sk-ecdsa-sha2-nistp256@openssh.com"
        sig = sstr(name) + inner + bytes([flags if blob_flags is None else blob_flags]) + u32(counter)
    else:
        raise ValueError(key.kind)
    return envelope(key.blob, sig, hashalg, ns)

# ---- the generator ------------------------------------------------------------


class Gen:
    def __init__(self):
        self.tmp = tempfile.mkdtemp(prefix="sshsig-gen-")
        self.cases = []          # (name, expected, blob, sig, signers, host, now)
        self.keys = {}
        self.seq = 0

    def run(self, argv, stdin=None):
        return subprocess.run(argv, input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              env={"PATH": "/usr/bin:/bin", "LC_ALL": "C"})

    def keygen(self, name, t, bits):
        path = os.path.join(self.tmp, name)
        p = self.run(["ssh-keygen", "-q", "-t", t, "-b", str(bits), "-N", "", "-C", "vector-" + name, "-f", path])
        assert p.returncode == 0, p.stderr
        pub = open(path + ".pub").read().split()
        priv = serialization.load_ssh_private_key(open(path, "rb").read(), None)
        kind = "ed25519" if t == "ed25519" else "ecdsa" if t == "ecdsa" else "rsa"
        curve = {256: "nistp256", 384: "nistp384", 521: "nistp521"}.get(bits) if t == "ecdsa" else None
        k = Key(name, kind, priv, base64.b64decode(pub[1]), curve=curve)
        self.keys[name] = k
        return k

    def fido(self, name, kind, app=b"ssh:"):
        if kind == "sk-ed25519":
            priv = ed25519.Ed25519PrivateKey.generate()
            pk = priv.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
            blob = sstr("sk-ssh-ed25519@openssh.com") + sstr(pk) + sstr(app)
        else:
            priv = ec.generate_private_key(ec.SECP256R1())
            q = priv.public_key().public_bytes(serialization.Encoding.X962,
                                               serialization.PublicFormat.UncompressedPoint)
            blob = sstr("sk-ecdsa-sha2-nistp256@openssh.com") + sstr("nistp256") + sstr(q) + sstr(app)
        k = Key(name, kind, priv, blob, app=app, curve="nistp256")
        self.keys[name] = k
        return k

    def ssh_sign(self, key, msg, hashalg="sha512", ns="felhom-op-v1"):
        self.seq += 1
        path = os.path.join(self.tmp, "msg-%d" % self.seq)
        with open(path, "wb") as f:
            f.write(msg)
        p = self.run(["ssh-keygen", "-Y", "sign", "-f", os.path.join(self.tmp, key.name), "-n", ns,
                      "-O", "hashalg=" + hashalg, path])
        assert p.returncode == 0, p.stderr
        return open(path + ".sig").read()

    def openssh_accepts(self, sig_text, msg):
        path = os.path.join(self.tmp, "check.sig")
        with open(path, "wb") as f:
            f.write(sig_text if isinstance(sig_text, bytes) else sig_text.encode("latin-1"))
        p = self.run(["ssh-keygen", "-Y", "check-novalidate", "-n", "felhom-op-v1", "-s", path], stdin=msg)
        return p.returncode == 0

    @staticmethod
    def blob(name, host=HOST, issued=ISSUED, expires=EXPIRES, guest="null", nonce=None, extra=""):
        nonce = nonce or ("vector-nonce-" + name)[:128]
        return ('{"expires_at":%d,"guest_id":%s,"host_id":"%s","issued_at":%d,"key_id":"ops-anna",'
                '"nonce":"%s","op":"storage_wipe","params":{"durable_id":"byid:ata-WDC_X"},"v":1%s}'
                % (expires, guest, host, issued, nonce, extra)).encode()

    def add(self, name, expected, msg, sig, signers="signers.txt", host=HOST, now=NOW, files=None):
        """sig: armored text (str/bytes) or raw SSHSIG bytes (armored here)."""
        assert all(c[0] != name for c in self.cases), name
        if isinstance(sig, (bytes, bytearray)) and sig[:6] == b"SSHSIG":
            sig = armor(bytes(sig))
        if files:
            bpath, spath = files
        else:
            bpath, spath = "blobs/%s.json" % name, "sigs/%s.sig" % name
            with open(os.path.join(HERE, bpath), "wb") as f:
                f.write(msg)
            with open(os.path.join(HERE, spath), "wb") as f:
                f.write(sig if isinstance(sig, bytes) else sig.encode("latin-1"))
        self.cases.append((name, expected, bpath, spath, signers, host, now,
                           self.openssh_accepts(sig, msg)))


def main():
    for d in ("blobs", "sigs", "keys"):
        shutil.rmtree(os.path.join(HERE, d), ignore_errors=True)
        os.makedirs(os.path.join(HERE, d))
    g = Gen()
    try:
        build(g)
    finally:
        shutil.rmtree(g.tmp, ignore_errors=True)


def build(g):
    K = {}
    for name, t, bits in (("ed25519", "ed25519", 256), ("p256", "ecdsa", 256), ("p384", "ecdsa", 384),
                          ("p521", "ecdsa", 521), ("rsa2048", "rsa", 2048), ("rsa3072", "rsa", 3072),
                          ("rsa4096", "rsa", 4096), ("rsa1024", "rsa", 1024), ("other", "ed25519", 256),
                          ("ca", "ed25519", 256)):
        K[name] = g.keygen(name, t, bits)
    K["sked"] = g.fido("sked", "sk-ed25519")
    K["skec"] = g.fido("skec", "sk-ecdsa")
    for k in K.values():
        with open(os.path.join(HERE, "keys", k.name + ".pub"), "w") as f:
            f.write("%s %s vector-%s\n" % (k.type, base64.b64encode(k.blob).decode(), k.name))

    roles = {"p384": "recovery", "rsa4096": "recovery"}
    listed = ["ed25519", "p256", "p384", "p521", "rsa2048", "rsa3072", "rsa4096", "sked", "skec"]
    with open(os.path.join(HERE, "signers.txt"), "w") as f:
        f.write("# felhom SSHSIG golden vectors: the signers every case uses unless it names another file.\n")
        f.write("# ROLE KEY_ID KEYTYPE BASE64 [COMMENT]\n\n")
        for n in listed:
            f.write(K[n].line(roles.get(n, "operational"), "vec-" + n, "vector key " + n) + "\n")
    # Another key holds the key id "ops-anna" that every blob names: the
    # allow-list matches key material, never ids.
    with open(os.path.join(HERE, "signers-keyid.txt"), "w") as f:
        f.write(K["ed25519"].line("operational", "ops-anna") + "\n")

    # the blob fuzz target's message and seeds
    fuzz_msg = Gen.blob("fuzz", nonce="fuzz-nonce-0123456789")
    with open(os.path.join(HERE, "fuzz-message.json"), "wb") as f:
        f.write(fuzz_msg)

    # ---- accepted: every key type, both hashes (ssh-keygen) ----
    good = {}
    for n in ("ed25519", "p256", "p384", "p521", "rsa2048", "rsa3072", "rsa4096"):
        for h in ("sha256", "sha512"):
            name = "accept_%s_%s" % (n, h)
            m = Gen.blob(name)
            s = g.ssh_sign(K[n], m, h)
            g.add(name, "accept", m, s)
            good[(n, h)] = (m, s)
    # FIDO (crafted here), both hashes; UP+UV
    for n in ("sked", "skec"):
        for h in (b"sha256", b"sha512"):
            name = "accept_%s_%s" % (n, h.decode())
            m = Gen.blob(name)
            g.add(name, "accept", m, py_sign(K[n], m, h))
        name = "accept_%s_flags_up_uv" % n
        m = Gen.blob(name)
        g.add(name, "accept", m, py_sign(K[n], m, flags=0x05))
    # rsa-sha2-256 (ssh-keygen 9.2 always signs rsa-sha2-512), with both SSHSIG hashes
    for h in (b"sha256", b"sha512"):
        name = "accept_rsa2048_rsa_sha2_256_%s" % h.decode()
        m = Gen.blob(name)
        g.add(name, "accept", m, py_sign(K["rsa2048"], m, h, rsa_alg="rsa-sha2-256"))
    # ECDSA high-S on every curve (malleable, accepted as OpenSSH does)
    for n in ("p256", "p384", "p521"):
        name = "accept_%s_high_s" % n
        m = Gen.blob(name)
        n_ = ORDER[K[n].curve]
        raw = py_sign(K[n], m, rs=lambda r, s, n_=n_: (r, n_ - s))
        # sanity: the flipped signature verifies with an independent library
        K[n].priv.public_key().verify(
            utils.encode_dss_signature(*_rs_of(raw)), signed_data(m, b"sha512"),
            ec.ECDSA(EC_HASH[K[n].curve]()))
        g.add(name, "accept", m, raw)
    # non-minimal mpint (extra leading zeros in r)
    name = "accept_p256_nonminimal_r"
    m = Gen.blob(name)
    s = SSHSIG(dearmor(g.ssh_sign(K["p256"], m)))
    t, off = read_str(s.sig, 0)
    inner, _ = read_str(s.sig, off)
    r, off2 = read_str(inner, 0)
    s.sig = sstr(t) + sstr(u32(len(r) + 2) + b"\0\0" + r + inner[off2:])
    g.add(name, "accept", m, s.bytes())
    # a short r (31 bytes) on P-256: about 1 in 256 signatures
    for i in range(5000):
        m = Gen.blob("accept_p256_short_r", nonce="vector-nonce-short-r-%d" % i)
        raw = py_sign(K["p256"], m)
        r, _ = _rs_of(raw)
        if r < 1 << 248:
            g.add("accept_p256_short_r", "accept", m, raw)
            break
    else:
        raise SystemExit("no short r found")
    # an RSA signature shorter than the modulus (leading zero stripped)
    for i in range(5000):
        m = Gen.blob("accept_rsa2048_short_sig", nonce="vector-nonce-short-sig-%d" % i)
        raw = py_sign(K["rsa2048"], m)
        s = SSHSIG(raw)
        t, off = read_str(s.sig, 0)
        body, _ = read_str(s.sig, off)
        if body[0] == 0:
            s.sig = sstr(t) + sstr(body[1:])
            g.add("accept_rsa2048_short_sig", "accept", m, s.bytes())
            break
    else:
        raise SystemExit("no short RSA signature found")

    # ---- armor ----
    def arm_case(name, expected, text):
        mm = Gen.blob(name)
        ss = g.ssh_sign(K["ed25519"], mm)
        t = text(ss, dearmor(ss))
        g.add(name, expected, mm, t.encode("latin-1") if isinstance(t, str) else t)

    arm_case("accept_armor_crlf", "accept", lambda a, r: armor(r, 70, "\r\n"))
    arm_case("accept_armor_width64", "accept", lambda a, r: armor(r, 64))
    arm_case("accept_armor_width76", "accept", lambda a, r: armor(r, 76))
    arm_case("accept_armor_one_line", "accept", lambda a, r: armor(r, 0))
    arm_case("accept_armor_one_column", "accept", lambda a, r: armor(r, 1))
    arm_case("accept_armor_blank_lines_spaces_tabs", "accept",
             lambda a, r: a.replace("\n", "\n\n \t\x0b\x0c\r\n", 2))
    arm_case("accept_armor_whitespace_after_footer", "accept", lambda a, r: a + " \t\r\n\n")
    arm_case("accept_armor_no_final_newline", "accept", lambda a, r: a.rstrip("\n"))
    arm_case("accept_armor_16384_bytes", "accept", lambda a, r: a + "\n" * (16384 - len(a)))
    arm_case("armor_16385_bytes", "malformed", lambda a, r: a + "\n" * (16385 - len(a)))
    arm_case("armor_bom", "malformed", lambda a, r: "\ufeff".encode().decode("latin-1") + a)
    arm_case("armor_leading_space", "malformed", lambda a, r: " " + a)
    arm_case("armor_leading_blank_line", "malformed", lambda a, r: "\n" + a)
    arm_case("armor_header_trailing_space", "malformed",
             lambda a, r: a.replace("SIGNATURE-----\n", "SIGNATURE----- \n", 1))
    arm_case("armor_header_cr_cr_lf", "malformed",
             lambda a, r: a.replace("SIGNATURE-----\n", "SIGNATURE-----\r\r\n", 1))
    arm_case("armor_header_lowercase", "malformed", lambda a, r: a.replace("BEGIN SSH", "begin SSH"))
    arm_case("armor_footer_lowercase", "malformed", lambda a, r: a.replace("END SSH", "end SSH"))
    arm_case("armor_footer_not_after_newline", "malformed", lambda a, r: a.replace("\n-----END", "-----END"))
    arm_case("armor_footer_truncated", "malformed", lambda a, r: a[:-2] + "\n")
    arm_case("armor_no_footer", "malformed", lambda a, r: a[:a.index("-----END")])
    arm_case("armor_garbage_after_footer", "malformed", lambda a, r: a + "trailing text\n")
    arm_case("armor_two_signatures", "malformed", lambda a, r: a + a)
    arm_case("armor_missing_padding", "malformed", lambda a, r: a.replace("=", ""))
    for i in range(100):
        mm = Gen.blob("armor_urlsafe_alphabet", nonce="vector-nonce-urlsafe-%d" % i)
        ss = g.ssh_sign(K["ed25519"], mm)
        body = ss[30:ss.index("-----END")]
        j = min([body.index(c) for c in "+/" if c in body], default=-1)
        if j >= 0:
            bad = body[:j] + ("-" if body[j] == "+" else "_") + body[j + 1:]
            g.add("armor_urlsafe_alphabet", "malformed", mm, ss[:30] + bad + ss[30 + len(body):])
            break
    else:
        raise SystemExit("no + or / in any armor")
    arm_case("armor_nul_in_body", "malformed", lambda a, r: a[:40] + "\0" + a[41:])
    arm_case("armor_base64_after_padding", "malformed", lambda a, r: a.replace("=\n", "=AAAA\n"))
    arm_case("armor_empty_body", "malformed",
             lambda a, r: "-----BEGIN SSH SIGNATURE-----\n\n-----END SSH SIGNATURE-----\n")
    g.add("armor_empty_file", "malformed", Gen.blob("armor_empty_file"), b"")

    # non-zero unused bits: the blob's last byte has low bits the padding hides
    def unused_bits(a, r):
        text = armor(r)
        i = text.index("=") - 1
        c = text[i]
        alpha = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
        return text[:i] + alpha[alpha.index(c) | 1] + text[i + 1:]
    # ed25519 blobs are 83+... bytes; make sure there is padding to abuse
    for i in range(50):
        mm = Gen.blob("armor_unused_bits", nonce="vector-nonce-unused-bits-%d" % i)
        ss = g.ssh_sign(K["ed25519"], mm)
        if "=" in ss:
            g.add("armor_unused_bits", "malformed", mm, unused_bits(ss, dearmor(ss)))
            break
    else:
        raise SystemExit("no padded armor")

    # ---- envelope (blob) ----
    def blob_case(name, expected, edit, key="ed25519", h="sha512"):
        mm = Gen.blob(name)
        s = SSHSIG(dearmor(g.ssh_sign(K[key], mm, h)))
        edit(s)
        g.add(name, expected, mm, s.bytes())

    blob_case("blob_bad_magic", "malformed", lambda s: setattr(s, "magic", b"SSHSIH"))
    blob_case("blob_version_0", "malformed", lambda s: setattr(s, "version", 0))
    blob_case("blob_version_2", "malformed", lambda s: setattr(s, "version", 2))
    blob_case("blob_reserved_not_empty", "malformed", lambda s: setattr(s, "reserved", b"x"))
    for hv, nm in ((b"sha1", "sha1"), (b"SHA512", "upper"), (b"sha384", "sha384"), (b"", "empty"),
                   (b"sha512\0", "trailing_nul")):
        blob_case("blob_hash_" + nm, "malformed", lambda s, hv=hv: setattr(s, "hash", hv))
    blob_case("blob_namespace_trailing_nul", "malformed", lambda s: setattr(s, "ns", NS + b"\0"))
    blob_case("blob_namespace_embedded_nul", "malformed", lambda s: setattr(s, "ns", b"felhom\0op-v1"))
    blob_case("blob_trailing_byte", "malformed", lambda s: setattr(s, "trailer", b"\0"))

    name = "blob_truncated"
    mm = Gen.blob(name)
    g.add(name, "malformed", mm, armor(dearmor(g.ssh_sign(K["ed25519"], mm))[:-5]))
    name = "blob_string_overruns"
    mm = Gen.blob(name)
    r_ = bytearray(dearmor(g.ssh_sign(K["ed25519"], mm)))
    r_[10:14] = b"\xff\xff\xff\xff"
    g.add(name, "malformed", mm, armor(bytes(r_)))

    # ---- namespace ----
    name = "namespace_other"
    mm = Gen.blob(name)
    g.add(name, "namespace", mm, g.ssh_sign(K["ed25519"], mm, ns="felhom-op-v2"))
    name = "namespace_git"
    mm = Gen.blob(name)
    g.add(name, "namespace", mm, g.ssh_sign(K["p256"], mm, ns="git"))
    blob_case("namespace_edited", "namespace", lambda s: setattr(s, "ns", b"felhom-op-v1x"))
    blob_case("namespace_empty", "namespace", lambda s: setattr(s, "ns", b""))
    # namespace is judged before the key: an unknown key in a wrong namespace
    name = "namespace_before_signer"
    mm = Gen.blob(name)
    g.add(name, "namespace", mm, g.ssh_sign(K["other"], mm, ns="file"))

    # ---- public key ----
    def key_case(name, expected, edit, key="ed25519"):
        blob_case(name, expected, lambda s: setattr(s, "key", edit(s.key)), key=key)

    key_case("key_trailing_byte", "malformed", lambda k: k + b"\0")
    key_case("key_ed25519_31_bytes", "malformed", lambda k: k[:15] + u32(31) + k[19:-1])
    key_case("key_length_overrun", "malformed", lambda k: k[:15] + u32(255) + k[19:])
    qoff = 4 + 19 + 4 + 8
    key_case("key_compressed_point", "malformed",
             lambda k: k[:qoff] + u32(33) + bytes([2 | (k[-1] & 1)]) + k[qoff + 5:qoff + 37], key="p256")
    key_case("key_curve_mismatch", "malformed", lambda k: k[:27] + b"nistp384" + k[35:], key="p256")
    key_case("key_point_short", "malformed", lambda k: k[:qoff] + u32(64) + k[qoff + 4:-1], key="p256")
    key_case("key_off_curve", "unknown_signer", lambda k: k[:-1] + bytes([k[-1] ^ 1]), key="p256")
    key_case("key_type_dss", "unknown_signer", lambda k: sstr("ssh-dss") + mpint(23) + mpint(11) + mpint(4) + mpint(8))
    key_case("key_type_unknown", "unknown_signer", lambda k: sstr("ssh-mldsa44-ed25519@openssh.com") + k[15:])
    key_case("key_type_nul", "malformed", lambda k: sstr(b"ssh-ed25519\0") + k[15:])
    key_case("key_rsa_8192_bits", "unknown_signer",
             lambda k: sstr("ssh-rsa") + mpint(65537) + mpint((1 << 8191) | 0x12345 | 1))
    name = "key_rsa_1024"
    mm = Gen.blob(name)
    g.add(name, "unknown_signer", mm, g.ssh_sign(K["rsa1024"], mm))
    # a certificate as the signing key
    p = g.run(["ssh-keygen", "-q", "-s", os.path.join(g.tmp, "ca"), "-I", "vector-cert", "-n", "op",
               os.path.join(g.tmp, "ed25519.pub")])
    assert p.returncode == 0, p.stderr
    cert = base64.b64decode(open(os.path.join(g.tmp, "ed25519-cert.pub")).read().split()[1])
    key_case("key_certificate", "unknown_signer", lambda k: cert)

    # ---- allow-list ----
    name = "unknown_signer_key"
    mm = Gen.blob(name)
    g.add(name, "unknown_signer", mm, g.ssh_sign(K["other"], mm))
    name = "unknown_signer_same_key_id"
    mm = Gen.blob(name)
    g.add(name, "unknown_signer", mm, g.ssh_sign(K["p256"], mm), signers="signers-keyid.txt")
    name = "accept_signers_keyid_file"
    mm = Gen.blob(name)
    g.add(name, "accept", mm, g.ssh_sign(K["ed25519"], mm), signers="signers-keyid.txt")

    # ---- signature structure and crypto ----
    def sig_case(name, expected, edit, key="ed25519", h="sha512"):
        blob_case(name, expected, lambda s: setattr(s, "sig", edit(s.sig)), key=key, h=h)

    def inner(sig):
        t, off = read_str(sig, 0)
        body, off2 = read_str(sig, off)
        return t, body, sig[off2:]

    sig_case("sig_ed25519_63_bytes", "malformed", lambda x: x[:15] + u32(63) + x[19:-1])
    sig_case("sig_trailing_byte", "malformed", lambda x: x + b"\0")
    sig_case("sig_type_mismatch", "malformed",
             lambda x: sstr("ecdsa-sha2-nistp384") + sstr(inner(x)[1]), key="p256")
    sig_case("sig_ecdsa_rs_trailing_byte", "malformed",
             lambda x: sstr(inner(x)[0]) + sstr(inner(x)[1] + b"\0"), key="p256")
    def rs_parts(x):
        """(type, r as raw mpint bytes, the encoded s mpint) of an ECDSA signature."""
        t, body, _ = inner(x)
        r, off = read_str(body, 0)
        return t, r, body[off:]

    sig_case("sig_ecdsa_negative_r", "malformed",
             lambda x: sstr(rs_parts(x)[0]) + sstr(u32(1) + b"\x80" + rs_parts(x)[2]), key="p256")
    sig_case("sig_ecdsa_r_zero", "bad_signature",
             lambda x: sstr(rs_parts(x)[0]) + sstr(u32(0) + rs_parts(x)[2]), key="p256")
    sig_case("sig_ecdsa_s_equals_n", "bad_signature",
             lambda x: sstr(rs_parts(x)[0]) + sstr(sstr(rs_parts(x)[1]) + mpint(ORDER["nistp256"])), key="p256")
    sig_case("sig_flipped_bit", "bad_signature", lambda x: x[:-1] + bytes([x[-1] ^ 1]))
    sig_case("sig_rsa_ssh_rsa_name", "malformed", lambda x: sstr("ssh-rsa") + sstr(inner(x)[1]), key="rsa2048")
    sig_case("sig_rsa_longer_than_modulus", "bad_signature",
             lambda x: sstr(inner(x)[0]) + sstr(b"\0" + inner(x)[1]), key="rsa2048")
    sig_case("sig_rsa_empty", "bad_signature", lambda x: sstr(inner(x)[0]) + sstr(b""), key="rsa2048")
    blob_case("sig_hash_swapped", "bad_signature", lambda s: setattr(s, "hash", b"sha256"))
    # a genuine SHA-1 (ssh-rsa) signature
    name = "sig_rsa_sha1"
    mm = Gen.blob(name)
    g.add(name, "malformed", mm, py_sign(K["rsa2048"], mm, rsa_alg="ssh-rsa"))
    # Ed25519 S = L and S + L (chosen so S + L has top byte 0x10, the forms
    # wolfSSL 5.5.4 accepts by itself)
    for i in range(2000):
        mm = Gen.blob("sig_ed25519_s_plus_l", nonce="vector-nonce-s-plus-l-%d" % i)
        s = SSHSIG(py_sign(K["ed25519"], mm))
        t, body, _ = inner(s.sig)
        S = int.from_bytes(body[32:], "little") + ED25519_L
        if S >> 248 == 0x10:
            s.sig = sstr(t) + sstr(body[:32] + S.to_bytes(32, "little"))
            g.add("sig_ed25519_s_plus_l", "bad_signature", mm, s.bytes())
            break
    else:
        raise SystemExit("no S+L candidate")
    sig_case("sig_ed25519_s_equals_l", "bad_signature",
             lambda x: sstr(inner(x)[0]) + sstr(inner(x)[1][:32] + ED25519_L.to_bytes(32, "little")))
    # FIDO
    for n in ("sked", "skec"):
        for nm, kw, exp in (("no_user_presence", {"flags": 0x00}, "bad_signature"),
                            ("uv_only", {"flags": 0x04}, "bad_signature"),
                            ("flags_edited", {"blob_flags": 0x05}, "bad_signature"),
                            ("other_application", {"sign_app": b"ssh:other"}, "bad_signature")):
            name = "%s_%s" % (n, nm)
            mm = Gen.blob(name)
            g.add(name, exp, mm, py_sign(K[n], mm, **kw))
        name = "%s_counter_edited" % n
        mm = Gen.blob(name)
        s = SSHSIG(py_sign(K[n], mm))
        s.sig = s.sig[:-1] + bytes([s.sig[-1] ^ 1])
        g.add(name, "bad_signature", mm, s.bytes())
        name = "%s_counter_truncated" % n
        mm = Gen.blob(name)
        s = SSHSIG(py_sign(K[n], mm))
        s.sig = s.sig[:-1]
        g.add(name, "malformed", mm, s.bytes())
    name = "skec_webauthn_type"
    mm = Gen.blob(name)
    s = SSHSIG(py_sign(K["skec"], mm))
    t, body, rest = inner(s.sig)
    s.sig = sstr("webauthn-sk-ecdsa-sha2-nistp256@openssh.com") + sstr(body) + rest + sstr("https://x") + \
        sstr("{}") + sstr("")
    g.add(name, "malformed", mm, s.bytes())

    # ---- the signature covers the raw bytes ----
    name = "bad_signature_tampered_blob"
    mm = Gen.blob(name)
    ss = g.ssh_sign(K["ed25519"], mm)
    g.add(name, "bad_signature", mm.replace(b"vector-nonce", b"vector-noncf"), ss)
    name = "bad_signature_reserialized_spaces"
    mm = Gen.blob(name)
    ss = g.ssh_sign(K["p384"], mm)
    g.add(name, "bad_signature", mm.replace(b'"op":', b'"op": '), ss)
    name = "bad_signature_reserialized_order"
    mm = Gen.blob(name)
    ss = g.ssh_sign(K["rsa3072"], mm)
    g.add(name, "bad_signature", b'{"v":1,' + mm[1:-len(b',"v":1}')] + b"}", ss)
    name = "bad_signature_trailing_newline"
    mm = Gen.blob(name)
    ss = g.ssh_sign(K["p521"], mm)
    g.add(name, "bad_signature", mm + b"\n", ss)
    # crypto before target: a tampered blob for another host
    name = "bad_signature_before_target"
    mm = Gen.blob(name, host="elsewhere")
    ss = g.ssh_sign(K["ed25519"], mm)
    g.add(name, "bad_signature", mm.replace(b"elsewhere", b"elsewherf"), ss)

    # ---- op blob ----
    for name, mm in (("opblob_not_json", b"storage_wipe byid:ata-WDC_X please"),
                     ("opblob_empty", b""),
                     ("opblob_unknown_field", Gen.blob("opblob_unknown_field", extra=',"x":1')),
                     ("opblob_duplicate_key", Gen.blob("opblob_duplicate_key", extra=',"v":1')),
                     ("opblob_float_time", Gen.blob("opblob_float_time").replace(b'"issued_at":1781000000',
                                                                                 b'"issued_at":1781000000.0')),
                     ("opblob_string_version", Gen.blob("opblob_string_version").replace(b'"v":1', b'"v":"1"')),
                     ("opblob_over_8192_bytes", Gen.blob("opblob_over_8192_bytes") + b" " * 8000),
                     ("opblob_expires_before_issued", Gen.blob("opblob_expires_before_issued",
                                                                issued=EXPIRES, expires=ISSUED))):
        g.add(name, "malformed", mm, g.ssh_sign(K["ed25519"], mm))

    # ---- target ----
    for name, host in (("target_other_host", "host-7f3b"), ("target_case", "HOST-7F3A"),
                       ("target_suffix", "host-7f3a.example")):
        mm = Gen.blob(name, host=host)
        g.add(name, "target", mm, g.ssh_sign(K["p256"], mm))
    name = "target_before_time"
    mm = Gen.blob(name, host="elsewhere", issued=ISSUED - 7200, expires=ISSUED - 3600)
    g.add(name, "target", mm, g.ssh_sign(K["ed25519"], mm))
    name = "accept_guest_op"
    mm = Gen.blob(name, guest="105")
    g.add(name, "accept", mm, g.ssh_sign(K["ed25519"], mm))

    # ---- time window (max lifetime 3600 s, skew 60 s) ----
    for name, exp, issued, expires, now in (
            ("time_lifetime_over_max", "expired", ISSUED, ISSUED + MAXLIFE + 1, ISSUED + 10),
            ("accept_time_lifetime_at_max", "accept", ISSUED, ISSUED + MAXLIFE, ISSUED + 10),
            ("time_not_yet_valid", "not_yet_valid", ISSUED, EXPIRES, ISSUED - SKEW - 1),
            ("accept_time_issued_within_skew", "accept", ISSUED, EXPIRES, ISSUED - SKEW),
            ("time_expired", "expired", ISSUED, EXPIRES, EXPIRES + 3600),
            ("time_expired_at_boundary", "expired", ISSUED, EXPIRES, EXPIRES + SKEW),
            ("accept_time_expiry_within_skew", "accept", ISSUED, EXPIRES, EXPIRES + SKEW - 1)):
        mm = Gen.blob(name, issued=issued, expires=expires)
        g.add(name, exp, mm, g.ssh_sign(K["ed25519"], mm, "sha256"), now=now)

    # ---- replay: the same op twice; the second is refused ----
    name = "replay_first"
    mm = Gen.blob(name)
    ss = g.ssh_sign(K["p256"], mm)
    g.add(name, "accept", mm, ss)
    g.add("replay_second", "replay", mm, ss, files=("blobs/replay_first.json", "sigs/replay_first.sig"))
    # a new signature over the same nonce is a replay too
    name = "replay_new_signature_same_nonce"
    mm = Gen.blob(name, nonce="vector-nonce-replay_first")
    g.add(name, "replay", mm, g.ssh_sign(K["ed25519"], mm))
    # a rejected op burns nothing: the same nonce, refused first, then accepted
    name = "nonce_kept_after_bad_signature"
    mm = Gen.blob(name)
    ss = g.ssh_sign(K["ed25519"], mm)
    g.add(name, "bad_signature", mm.replace(b'"op":"storage_wipe"', b'"op":"storage_wipf"'), ss)
    g.add("nonce_kept_then_accepted", "accept", mm, ss)

    # ---- manifest ----
    with open(os.path.join(HERE, "manifest.txt"), "w") as f:
        f.write("# felhom signed-op (SSHSIG) golden vectors; see docs/PROTOCOL.opsig.md.\n")
        f.write("# Generated by vectors/sshsig/gen.py; do not edit by hand.\n")
        f.write("# Columns (tab-separated): NAME EXPECTED BLOB SIG SIGNERS HOST_ID NOW\n")
        f.write("# EXPECTED: accept | malformed | namespace | unknown_signer | bad_signature | target |\n")
        f.write("#           expired | not_yet_valid | replay\n")
        f.write("# Paths are relative to this directory. Verifier settings for every case:\n")
        f.write("#   namespace felhom-op-v1, authz.max_lifetime_seconds %d, authz.clock_skew_seconds %d.\n"
                % (MAXLIFE, SKEW))
        f.write("# Run the cases in this order against ONE nonce store that starts empty:\n")
        f.write("# an accepted case records its nonce (replay_* cases depend on it).\n")
        for c in g.cases:
            f.write("\t".join(str(x) for x in c[:7]) + "\n")
    with open(os.path.join(HERE, "openssh-9.2.txt"), "w") as f:
        v = g.run(["ssh", "-V"]).stderr.decode().strip()
        f.write("# What `ssh-keygen -Y check-novalidate -n felhom-op-v1` (%s) says about each\n" % v)
        f.write("# case's signature alone (no allow-list, no op blob, no time): accept | reject.\n")
        f.write("# Where it accepts and manifest.txt expects malformed/bad_signature, felhom is stricter.\n")
        for c in g.cases:
            f.write("%s\t%s\n" % (c[0], "accept" if c[7] else "reject"))

    # ---- fuzz seeds ----
    arm_dir = os.path.join(ROOT, "vectors", "fuzz", "sshsig_armor")
    blob_dir = os.path.join(ROOT, "vectors", "fuzz", "sshsig_blob")
    for d in (arm_dir, blob_dir):
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
    for n in ("ed25519", "p256", "p384", "p521", "rsa2048"):
        for h in ("sha256", "sha512"):
            a = g.ssh_sign(K[n], fuzz_msg, h)
            open(os.path.join(blob_dir, "%s-%s" % (n, h)), "wb").write(dearmor(a))
            if h == "sha512":
                open(os.path.join(arm_dir, n), "w").write(a)
    for n in ("sked", "skec"):
        open(os.path.join(blob_dir, n), "wb").write(py_sign(K[n], fuzz_msg))
    open(os.path.join(blob_dir, "rsa-sha2-256"), "wb").write(py_sign(K["rsa2048"], fuzz_msg,
                                                                     rsa_alg="rsa-sha2-256"))
    open(os.path.join(blob_dir, "cert"), "wb").write(envelope(cert, b"", b"sha512"))
    a = g.ssh_sign(K["ed25519"], fuzz_msg)
    for nm, text in (("crlf", armor(dearmor(a), 70, "\r\n")), ("oneline", armor(dearmor(a), 0)),
                     ("pad1", armor(b"AB")), ("pad2", armor(b"A")), ("nopad", armor(b"ABC")),
                     ("empty", "-----BEGIN SSH SIGNATURE-----\n\n-----END SSH SIGNATURE-----\n"),
                     ("header", "-----BEGIN SSH SIGNATURE-----\n"), ("trailing-ws", a + " \t\n")):
        open(os.path.join(arm_dir, nm), "w", newline="").write(text)
    # every armor case as an armor seed; every decodable blob/key/signature
    # case as a blob seed (other messages: they exercise the parsers)
    for c in g.cases:
        text = open(os.path.join(HERE, c[3]), "rb").read()
        if c[0].startswith(("armor_", "accept_armor_")):
            open(os.path.join(arm_dir, c[0]), "wb").write(text)
        elif c[0].startswith(("blob_", "key_", "sig_", "sked_", "skec_")):
            try:
                open(os.path.join(blob_dir, c[0]), "wb").write(dearmor(text.decode("latin-1")))
            except (AssertionError, ValueError):
                pass
    print("%d cases; %d accept" % (len(g.cases), sum(1 for c in g.cases if c[1] == "accept")))


def _rs_of(raw):
    s = SSHSIG(raw)
    _, off = read_str(s.sig, 0)
    body, _ = read_str(s.sig, off)
    r, off = read_str(body, 0)
    sv, _ = read_str(body, off)
    return int.from_bytes(r, "big"), int.from_bytes(sv, "big")


if __name__ == "__main__":
    try:
        main()
    except InvalidSignature:
        sys.exit("sanity check failed: a crafted vector does not verify")
