#!/usr/bin/env python3
"""Drives claimlink-device-host by hand against the AWS IoT emulator (a manual experiment, not a test).

    claimlink-harness emulator --out DIR &
    tools/drive_host.py HOST_BINARY DIR [--keys csr|create] [--der-key] [--template NAME] [--expire-in S]

Mints a claim bundle from DIR/claim.pem + claim.key (the key as RSA primes, or as PKCS#1 DER with
--der-key), sends it over the pipe (PIPE.md) as a Begin that commits, then APPLIED and GOT_IP, and
polls aws-status until Done or Failed, printing each stage. Needs python3-cryptography.
"""
import argparse, hashlib, json, struct, subprocess, sys, time
from cryptography import x509
from cryptography.hazmat.primitives import serialization

def varint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])

def field(num, wire, value):
    key = varint(num << 3 | wire)
    if wire == 0:
        return key + varint(value) if value else b""
    if not value:
        return b""
    return key + varint(len(value)) + value

def bundle(cert_der, key, endpoint, template, seconds_left, expires, der_key):
    nums = key.private_numbers()
    be = lambda n: n.to_bytes((n.bit_length() + 7) // 8, "big")
    out = field(1, 2, cert_der)
    if der_key:
        out += field(2, 2, key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.TraditionalOpenSSL,
                                             serialization.NoEncryption()))
    out += field(3, 2, hashlib.sha256(cert_der).hexdigest().encode())
    out += field(4, 0, expires) + field(5, 0, seconds_left)
    out += field(6, 2, endpoint.encode()) + field(7, 2, template.encode())
    entry = field(1, 2, b"SerialNumber") + field(2, 2, b"claimlink-c-0001")
    out += field(8, 2, entry)
    if not der_key:
        primes = field(1, 2, be(nums.p)) + field(2, 2, be(nums.q)) + field(3, 2, be(nums.public_numbers.e))
        out += field(9, 2, primes)
    return out

def frame(proc, ftype, payload=b""):
    proc.stdin.write(struct.pack(">BI", ftype, len(payload)) + payload)
    proc.stdin.flush()
    head = proc.stdout.read(5)
    t, n = struct.unpack(">BI", head)
    return t, proc.stdout.read(n)

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("host")
    ap.add_argument("dir")
    ap.add_argument("--keys", default="csr")
    ap.add_argument("--der-key", action="store_true")
    ap.add_argument("--template")
    ap.add_argument("--expire-in", type=int)
    ap.add_argument("--credentials")
    ap.add_argument("--role-alias")
    a = ap.parse_args()
    ends = json.load(open(f"{a.dir}/endpoints.json"))
    cert = x509.load_pem_x509_certificate(open(f"{a.dir}/claim.pem", "rb").read())
    key = serialization.load_pem_private_key(open(f"{a.dir}/claim.key", "rb").read(), None)
    left = a.expire_in if a.expire_in is not None else max(1, int(cert.not_valid_after_utc.timestamp() - time.time()))
    b = bundle(cert.public_bytes(serialization.Encoding.DER), key, f"{ends['mqtt_host']}:{ends['mqtt_port']}",
               a.template or ends["template"], left, int(time.time()) + left, a.der_key)
    cmd = [a.host, "--ca", f"{a.dir}/ca.pem", "--client-id", "claimlink-c-0001", "--keys", a.keys,
           "--storage", "/tmp", "--answer-timeout-ms", "5000"]
    if a.credentials:
        cmd += ["--credentials", a.credentials, "--role-alias", a.role_alias]
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    begin = field(1, 0, len(b)) + field(2, 2, hashlib.sha256(b).digest()) + field(3, 2, b) + field(4, 0, 1)
    print("claim:", frame(p, 1, field(10, 2, begin)))
    print("status:", frame(p, 2, bytes.fromhex("5200")))
    print("applied:", frame(p, 3, b"\x00"))
    print("got ip:", frame(p, 3, b"\x01\xc0\xa8\x01\x17"))
    last = None
    for _ in range(400):
        t, ans = frame(p, 2, bytes.fromhex("5200"))
        if ans != last:
            print("status:", ans.hex(), ans)
            last = ans
        if b"Z" in ans[:3] and (ans[4:6] in (b"\x08\x09", b"\x08\x0a")):
            break
        time.sleep(0.05)
    print("shutdown:", frame(p, 5))
    print("exit:", p.wait())

main()
