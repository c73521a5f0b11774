#!/usr/bin/env python3
"""Checks proto/vectors/*.json with an implementation independent of claimlink's Rust code.

Every derived value is recomputed from the vectors' inputs: SRP-6a (RFC 5054 3072-bit group,
g = 5, SHA-512, as ESP-IDF's components/protocomm/src/crypto/srp6a/esp_srp.c computes it) with
Python integers; AES-256-GCM (Sec2 patch 1, IV = 8-byte prefix || 32-bit big-endian counter, as
components/protocomm/src/security/security2.c), X25519 and AES-256-CTR (Sec1, as security1.c) with
the `cryptography` package. Every protobuf message is decoded strictly (unknown fields and wrong
wire types fail) with a schema read from proto/claimlink_aws.proto (and ESP-IDF's session / sec1 /
sec2 messages, below), and re-encoded canonically (fields in number order, proto3 defaults
omitted): the bytes must come out the same. The claim transfers and the refused cases are replayed
through a small reference device written from docs/protocol.md section 5.3, whose answers must
equal the recorded ones field by field.

Usage: python3 proto/vectors/check.py   (needs `cryptography`; exit status 1 on any failure).
proto/vectors/self_test.py proves the checks can fail.
"""

import hashlib
import json
import os
import re
import sys

from cryptography import x509
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

HERE = os.path.dirname(os.path.abspath(__file__))
FAILURES = []
QUIET = False  # self_test.py breaks the vectors on purpose: it counts failures, it does not list them


def check(condition, what):
    if not condition:
        FAILURES.append(what)
        if not QUIET:
            print("FAIL", what)


def load(name):
    with open(os.path.join(HERE, name)) as f:
        return json.load(f)


h = bytes.fromhex

# ---- protobuf: a schema, a strict decoder, a canonical encoder --------------------------------

# ESP-IDF's messages the vectors use (components/protocomm/proto/session.proto, sec1.proto,
# sec2.proto, constants.proto): message -> {number: (name, type)}; a oneof member is an ordinary
# field here.
SCHEMA = {
    "SessionData": {2: ("sec_ver", "enum"), 11: ("sec1", "Sec1Payload"), 12: ("sec2", "Sec2Payload")},
    "Sec1Payload": {1: ("msg", "enum"), 20: ("sc0", "SessionCmd0"), 21: ("sr0", "SessionResp0"),
                    22: ("sc1", "SessionCmd1"), 23: ("sr1", "SessionResp1")},
    "SessionCmd0": {1: ("client_pubkey", "bytes")},
    "SessionResp0": {1: ("status", "enum"), 2: ("device_pubkey", "bytes"), 3: ("device_random", "bytes")},
    "SessionCmd1": {2: ("client_verify_data", "bytes")},
    "SessionResp1": {1: ("status", "enum"), 3: ("device_verify_data", "bytes")},
    "Sec2Payload": {1: ("msg", "enum"), 20: ("sc0", "S2SessionCmd0"), 21: ("sr0", "S2SessionResp0"),
                    22: ("sc1", "S2SessionCmd1"), 23: ("sr1", "S2SessionResp1")},
    "S2SessionCmd0": {1: ("client_username", "bytes"), 2: ("client_pubkey", "bytes")},
    "S2SessionResp0": {1: ("status", "enum"), 2: ("device_pubkey", "bytes"), 3: ("device_salt", "bytes")},
    "S2SessionCmd1": {1: ("client_proof", "bytes")},
    "S2SessionResp1": {1: ("status", "enum"), 2: ("device_proof", "bytes"), 3: ("device_nonce", "bytes")},
}
ENUMS = {}
SCALARS = {"uint32", "uint64", "int32", "bool", "string", "bytes", "enum"}


def read_proto(path):
    """Adds the messages and enums of our .proto to SCHEMA / ENUMS (the subset the file uses)."""
    text = re.sub(r"//[^\n]*", "", open(path).read())
    for name, body in re.findall(r"enum\s+(\w+)\s*\{([^}]*)\}", text):
        ENUMS[name] = {int(v): k for k, v in re.findall(r"(\w+)\s*=\s*(\d+)\s*;", body)}
    for name, body in re.findall(r"message\s+(\w+)\s*\{((?:[^{}]|\{[^{}]*\})*)\}", text):
        fields = {}
        for ty, field, num in re.findall(r"([\w<>, ]+?)\s+(\w+)\s*=\s*(\d+)\s*;", body.replace("oneof payload {", "")):
            ty = ty.strip().split()[-1] if not ty.strip().startswith("map") else "map"
            fields[int(num)] = (field, "enum" if ty in ENUMS or ty == "Status" else ty)
        SCHEMA[name] = fields


def varint(data, i):
    value, shift = 0, 0
    while True:
        if i >= len(data):
            raise ValueError("truncated varint")
        b = data[i]
        i += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return value, i


def decode(message, data):
    """Strictly decodes `data` as `message` into a dict (a map becomes a dict)."""
    fields = SCHEMA[message]
    out, i = {}, 0
    while i < len(data):
        key, i = varint(data, i)
        number, wire = key >> 3, key & 7
        if number not in fields:
            raise ValueError(f"{message}: unknown field {number}")
        name, ty = fields[number]
        if ty in ("uint32", "uint64", "int32", "bool", "enum"):
            if wire != 0:
                raise ValueError(f"{message}.{name}: wire type {wire}, expected varint")
            value, i = varint(data, i)
            out[name] = bool(value) if ty == "bool" else value
        else:
            if wire != 2:
                raise ValueError(f"{message}.{name}: wire type {wire}, expected length-delimited")
            length, i = varint(data, i)
            if i + length > len(data):
                raise ValueError(f"{message}.{name}: truncated")
            chunk = data[i:i + length]
            i += length
            if ty == "bytes":
                out[name] = chunk
            elif ty == "string":
                out[name] = chunk.decode("utf-8")
            elif ty == "map":
                entry = {}
                j = 0
                while j < len(chunk):
                    k, j = varint(chunk, j)
                    n, j = varint(chunk, j)
                    entry[k >> 3] = chunk[j:j + n].decode("utf-8")
                    j += n
                out.setdefault(name, {})[entry.get(1, "")] = entry.get(2, "")
            else:
                out[name] = decode(ty, chunk)
    return out


def put_varint(value):
    out = bytearray()
    while True:
        b = value & 0x7F
        value >>= 7
        out.append(b | (0x80 if value else 0))
        if not value:
            return bytes(out)


def encode(message, values):
    """Canonical proto3 encoding: fields in number order, defaults (0, false, empty) omitted, a
    present sub-message always written (even empty)."""
    out = bytearray()
    for number in sorted(SCHEMA[message]):
        name, ty = SCHEMA[message][number]
        if name not in values:
            continue
        value = values[name]
        if ty in ("uint32", "uint64", "int32", "bool", "enum"):
            if value:
                out += put_varint(number << 3) + put_varint(int(value))
        elif ty in ("bytes", "string"):
            raw = value.encode() if ty == "string" else value
            if raw:
                out += put_varint(number << 3 | 2) + put_varint(len(raw)) + raw
        elif ty == "map":
            for k in sorted(value):
                entry = encode_kv(k, value[k])
                out += put_varint(number << 3 | 2) + put_varint(len(entry)) + entry
        else:
            raw = encode(ty, value)
            out += put_varint(number << 3 | 2) + put_varint(len(raw)) + raw
    return bytes(out)


def encode_kv(k, v):
    out = bytearray()
    for n, s in ((1, k), (2, v)):
        raw = s.encode()
        if raw:
            out += put_varint(n << 3 | 2) + put_varint(len(raw)) + raw
    return bytes(out)


def strict(message, data, what):
    """Decodes and checks the bytes are the canonical encoding; None when it does not decode."""
    try:
        values = decode(message, data)
    except (ValueError, KeyError, UnicodeDecodeError) as e:
        check(False, f"{what}: does not decode as {message}: {e}")
        return None
    check(encode(message, values) == data, f"{what}: not the canonical encoding of {message}")
    return values


# ---- Security 2 --------------------------------------------------------------------------------

N = int(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E3404DD"
    "EF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED"
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF0598DA48361C55D39A69163FA8FD24CF5F"
    "83655D23DCA3AD961C62F356208552BB9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B"
    "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF6955817183995497CEA956AE515D2261898FA0510"
    "15728E5A8AAAC42DAD33170D04507A33A85521ABDF1CBA64ECFB850458DBEF0A8AEA71575D060C7DB3970F85A6E1E4C7"
    "ABF5AE8CDB0933D71E8C94E04A25619DCEE3D2261AD2EE6BF12FFA06D98A0864D87602733EC86A64521F2B18177B200C"
    "BBE117577A615D6C770988C0BAD946E208E24FA074E5AB3143DB5BFCE0FD108E4B82D120A93AD2CAFFFFFFFFFFFFFFFF",
    16,
)
G = 5
N_LEN = 384


def H(*parts):
    return hashlib.sha512(b"".join(parts)).digest()


def num(b):
    return int.from_bytes(b, "big")


def minimal(n):
    return n.to_bytes(max(1, (n.bit_length() + 7) // 8), "big")


def pad(n):
    return n.to_bytes(N_LEN, "big")


def srp_x(salt, user, password):
    return num(H(salt, H(user, b":", password)))


def check_srp_known_answer():
    """ESP-IDF's own example salt / verifier for wifiprov / abcd1234 (protocomm's test_srp.c and
    network_provisioning's example): ties this SRP code to the firmware's, not to claimlink's."""
    salt = h("036ee0c7bcb9eda84c9eac97d93decf4")
    v = pad(pow(G, srp_x(salt, b"wifiprov", b"abcd1234"), N))
    check(v[:16].hex() == "7c7c85476508946dd636af37d7e89143", "SRP: ESP-IDF's example verifier (start)")
    check(v[-8:].hex() == "5040f762de36b2ba", "SRP: ESP-IDF's example verifier (end)")


def check_sec2(vec):
    i, d = vec["inputs"], vec["derived"]
    user, password = i["username"].encode(), i["password"].encode()
    salt, a, b, prefix = h(i["salt"]), num(h(i["a"])), num(h(i["b"])), h(i["nonce_prefix"])
    k = num(H(pad(N), pad(G)))
    x = srp_x(salt, user, password)
    v = pow(G, x, N)
    A = pad(pow(G, a, N))
    B = minimal((k * v + pow(G, b, N)) % N)
    u = num(H(pad(num(A)), pad(num(B))))
    S_client = pow((num(B) - k * v) % N, a + u * x, N)
    S_device = pow(num(A) * pow(v, u, N) % N, b, N)
    check(S_client == S_device, "Sec2: the client and device equations give the same S")
    K = H(minimal(S_client))
    hn, hg = H(minimal(N)), H(pad(G))
    M = H(bytes(p ^ q for p, q in zip(hn, hg)), H(user), salt, A, B, K)
    H_AMK = H(A, M, K)
    mine = {"k": minimal(k), "x": minimal(x), "verifier": minimal(v), "A": A, "B": B, "u": minimal(u),
            "S": minimal(S_client), "K": K, "M": M, "H_AMK": H_AMK, "aes_key": K[:32]}
    for name, value in mine.items():
        check(h(d[name]) == value, f"Sec2 derived {name}")
    (c0, r0), (c1, r1) = [(h(e["request"]), h(e["answer"])) for e in vec["handshake"]]
    m = strict("SessionData", c0, "Sec2 command 0")
    check(m == {"sec_ver": 2, "sec2": {"sc0": {"client_username": user, "client_pubkey": A}}},
          "Sec2 command 0: SessionData{sec_ver 2, sec2{msg 0, sc0{username, A}}}")
    m = strict("SessionData", r0, "Sec2 response 0")
    check(m == {"sec_ver": 2, "sec2": {"msg": 1, "sr0": {"device_pubkey": B, "device_salt": salt}}},
          "Sec2 response 0: {msg 1, sr0{status Success, B, salt}}")
    m = strict("SessionData", c1, "Sec2 command 1")
    check(m == {"sec_ver": 2, "sec2": {"msg": 2, "sc1": {"client_proof": M}}}, "Sec2 command 1: {msg 2, sc1{M}}")
    m = strict("SessionData", r1, "Sec2 response 1")
    nonce = prefix + (1).to_bytes(4, "big")
    check(m == {"sec_ver": 2, "sec2": {"msg": 3, "sr1": {"device_proof": H_AMK, "device_nonce": nonce}}},
          "Sec2 response 1: {msg 3, sr1{H_AMK, nonce = prefix || 00000001}}")
    gcm = AESGCM(K[:32])
    for n, msg in enumerate(vec["gcm"], start=1):
        iv = prefix + n.to_bytes(4, "big")
        check(h(msg["iv"]) == iv, f"Sec2 GCM message {n}: IV = prefix || counter {n}")
        try:
            plain = gcm.decrypt(iv, h(msg["ciphertext_and_tag"]), None)
        except InvalidTag:
            check(False, f"Sec2 GCM message {n}: the tag does not verify with K[0..32] and this IV")
            continue
        check(plain == h(msg["plaintext"]), f"Sec2 GCM message {n}: decrypts to the plaintext")
        check(gcm.encrypt(iv, plain, None) == h(msg["ciphertext_and_tag"]), f"Sec2 GCM message {n}: encrypts")
        payload = "AwsStatusPayload" if msg["endpoint"] == "aws-status" else "AwsClaimPayload"
        strict(payload, plain, f"Sec2 GCM message {n}")


def device_refuses(sec2, before, request):
    """Whether a Sec2 device must fail `request` after answering `before` (ESP-IDF's
    security2.c and esp_srp.c: A of 384 bytes and A mod N != 0, a username, command 1 only after
    command 0, a 64-byte proof equal to M)."""
    i = sec2["inputs"]
    salt, user = h(i["salt"]), i["username"].encode()
    m = strict("SessionData", request, "refused handshake message")
    payload = (m or {}).get("sec2", {})
    if "sc0" in payload:
        sc0 = payload["sc0"]
        A = sc0.get("client_pubkey", b"")
        return len(A) != N_LEN or num(A) % N == 0 or not sc0.get("client_username")
    if "sc1" in payload:
        if not before:
            return True
        sc0 = decode("SessionData", before[-1])["sec2"]["sc0"]
        A, username = sc0["client_pubkey"], sc0["client_username"]
        # The device's side: S = (A v^u)^b with its own verifier and b.
        v = pow(G, srp_x(salt, user, i["password"].encode()), N)
        k = num(H(pad(N), pad(G)))
        B = minimal((k * v + pow(G, num(h(i["b"])), N)) % N)
        u = num(H(pad(num(A)), pad(num(B))))
        K = H(minimal(pow(num(A) * pow(v, u, N) % N, num(h(i["b"])), N)))
        hn, hg = H(minimal(N)), H(pad(G))
        M = H(bytes(p ^ q for p, q in zip(hn, hg)), H(username), salt, A, B, K)
        return payload["sc1"].get("client_proof", b"") != M
    return True


def check_handshake_refusals(vec, sec2):
    for case in vec["cases"]:
        before = [h(m) for m in case["before"]]
        for n, message in enumerate(before):
            check(not device_refuses(sec2, before[:n], message), f"refused handshake '{case['case']}': step {n} is acceptable")
        check(device_refuses(sec2, before, h(case["request"])), f"refused handshake '{case['case']}': a device must refuse it")


# ---- Security 1 --------------------------------------------------------------------------------

def check_sec1(vec):
    i, d = vec["inputs"], vec["derived"]
    raw = lambda key: key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    client = X25519PrivateKey.from_private_bytes(h(i["client_secret"]))
    device = X25519PrivateKey.from_private_bytes(h(i["device_secret"]))
    shared = client.exchange(device.public_key())
    check(shared == device.exchange(client.public_key()), "Sec1: both sides agree on the shared secret")
    digest = hashlib.sha256(i["pop"].encode()).digest()
    key = bytes(s ^ p for s, p in zip(shared, digest))
    mine = {"client_pubkey": raw(client), "device_pubkey": raw(device), "shared_secret": shared,
            "sha256_pop": digest, "aes_key": key}
    for name, value in mine.items():
        check(h(d[name]) == value, f"Sec1 derived {name}")
    ctr = Cipher(algorithms.AES(key), modes.CTR(h(i["device_random"]))).encryptor()
    (c0, r0), (c1, r1) = [(h(e["request"]), h(e["answer"])) for e in vec["handshake"]]
    check(strict("SessionData", c0, "Sec1 command 0") == {"sec_ver": 1, "sec1": {"sc0": {"client_pubkey": raw(client)}}},
          "Sec1 command 0")
    check(strict("SessionData", r0, "Sec1 response 0") ==
          {"sec_ver": 1, "sec1": {"msg": 1, "sr0": {"device_pubkey": raw(device), "device_random": h(i["device_random"])}}},
          "Sec1 response 0")
    check(strict("SessionData", c1, "Sec1 command 1") ==
          {"sec_ver": 1, "sec1": {"msg": 2, "sc1": {"client_verify_data": ctr.update(raw(device))}}},
          "Sec1 command 1: client_verify_data = CTR(device_pubkey)")
    check(strict("SessionData", r1, "Sec1 response 1") ==
          {"sec_ver": 1, "sec1": {"msg": 3, "sr1": {"device_verify_data": ctr.update(raw(client))}}},
          "Sec1 response 1: device_verify_data = CTR(client_pubkey), same keystream")
    for n, msg in enumerate(vec["ctr"], start=1):
        check(ctr.update(h(msg["plaintext"])) == h(msg["ciphertext"]), f"Sec1 CTR message {n}")
        strict("AwsStatusPayload", h(msg["plaintext"]), f"Sec1 CTR message {n}")


# ---- aws-claim: a reference device -------------------------------------------------------------

E = None  # ClaimTransferError names -> numbers, filled from the .proto


class ReferenceDevice:
    """docs/protocol.md section 5.3, written again: the claim state of one device."""

    def __init__(self, max_bundle):
        self.max, self.pending, self.claim = max_bundle, None, None

    def bundle_valid(self, data):
        try:
            b = decode("ClaimBundle", data)
        except (ValueError, KeyError, UnicodeDecodeError):
            return False
        der, rsa = b.get("private_key_der", b""), b.get("rsa_key")
        if bool(der) == (rsa is not None):
            return False
        if rsa is not None:
            def plausible(raw, bits):
                n = num(raw or b"")
                return n >= 3 and n % 2 == 1 and n.bit_length() <= bits
            if not (plausible(rsa.get("p"), 4096) and plausible(rsa.get("q"), 4096) and plausible(rsa.get("e"), 64)):
                return False
        return bool(b.get("certificate_der")) and bool(b.get("iot_endpoint"))

    def commit(self):
        total, digest, data = self.pending
        self.pending = None
        if len(data) != total:
            return E["Incomplete"], False
        if hashlib.sha256(data).digest() != digest:
            return E["DigestMismatch"], False
        if not self.bundle_valid(data):
            return E["BundleInvalid"], False
        self.claim = data
        return 0, True

    def answer(self, msg, error, payload_name, payload):
        out = {"msg": msg, "status": 4 if error else 0, "error": error, payload_name: payload}
        return {k: v for k, v in out.items() if v != 0}

    def handle(self, req):
        if "cmd_begin" in req:
            b = req["cmd_begin"]
            self.claim = self.pending = None
            total, data = b.get("total_length", 0), b.get("data", b"")
            if total > self.max or len(data) > total:
                error = E["TooLarge"]
            elif len(b.get("sha256", b"")) != 32:
                error = E["BundleInvalid"]
            else:
                self.pending, error = (total, b["sha256"], data), 0
            committed = False
            if not error and b.get("commit"):
                error, committed = self.commit()
            received = total if committed else (len(self.pending[2]) if self.pending else 0)
            return self.answer(1, error, "resp_begin", {k: v for k, v in
                               {"received": received, "max_bundle_length": self.max, "committed": committed}.items() if v})
        if "cmd_chunk" in req:
            c = req["cmd_chunk"]
            data = c.get("data", b"")
            if self.pending is None:
                error = E["NotStarted"]
            elif c.get("offset", 0) != len(self.pending[2]):
                error = E["OutOfOrder"]
            elif len(self.pending[2]) + len(data) > self.pending[0]:
                error = E["TooLarge"]
            else:
                self.pending = (self.pending[0], self.pending[1], self.pending[2] + data)
                error = 0
            total = self.pending[0] if self.pending else 0
            committed = False
            if not error and c.get("commit"):
                error, committed = self.commit()
            received = total if committed else (len(self.pending[2]) if self.pending else 0)
            return self.answer(3, error, "resp_chunk",
                               {k: v for k, v in {"received": received, "committed": committed}.items() if v})
        if "cmd_abort" in req or req.get("msg") == 4:
            self.claim = self.pending = None
            return self.answer(5, 0, "resp_abort", {})
        raise ValueError("not a claim command")

    def status(self):
        return {"msg": 1, "resp_get": {"stage": 1} if self.claim else {}}


def replay(device, endpoint, request, answer, what):
    if endpoint == "aws-claim":
        req = strict("AwsClaimPayload", request, f"{what} request")
        got = strict("AwsClaimPayload", answer, f"{what} answer")
        if req is not None and got is not None:
            expected = device.handle(req)
            check(got == expected, f"{what}: the reference device's answer {expected}, recorded {got}")
    else:
        strict("AwsStatusPayload", request, f"{what} request")
        got = strict("AwsStatusPayload", answer, f"{what} answer")
        check(got == device.status(), f"{what}: the reference device's aws-status answer")


def check_claim(vec):
    bundle = h(vec["bundle"])
    check(hashlib.sha256(bundle).hexdigest() == vec["bundle_sha256"], "claim: bundle SHA-256")
    fields = strict("ClaimBundle", bundle, "claim bundle")
    f = vec["bundle_fields"]
    cert_der = h(f["certificate_der"])
    check(fields["certificate_der"] == cert_der, "claim bundle: certificate_der")
    check(fields["certificate_id"] == hashlib.sha256(cert_der).hexdigest() == f["certificate_id"],
          "claim bundle: certificate_id = hex SHA-256 of the DER")
    for name in ("expires_at_epoch", "seconds_left", "iot_endpoint", "template_name", "template_parameters"):
        check(fields.get(name) == f[name], f"claim bundle: {name}")
    check("private_key_der" not in fields, "claim bundle: RSA keys travel as primes")
    rsa = fields["rsa_key"]
    public = x509.load_der_x509_certificate(cert_der).public_key().public_numbers()
    check(num(rsa["p"]) * num(rsa["q"]) == public.n, "claim bundle: p * q is the certificate's modulus")
    check(num(rsa["e"]) == public.e, "claim bundle: e is the certificate's exponent")
    for name, transfer in vec["transfers"].items():
        device = ReferenceDevice(8192)
        data = b""
        for n, m in enumerate(transfer["messages"], start=1):
            request, answer = h(m["request"]), h(m["answer"])
            check(len(request) + 16 <= transfer["max_message_bytes"], f"{name} message {n} fits the cap")
            if m["endpoint"] == "aws-claim":
                req = decode("AwsClaimPayload", request)
                part = req.get("cmd_begin") or req.get("cmd_chunk") or {}
                data += part.get("data", b"")
            replay(device, m["endpoint"], request, answer, f"{name} message {n}")
        check(data == bundle, f"{name}: the begin and the chunks carry the bundle")


def check_negative(vec):
    for case in vec["cases"]:
        device = ReferenceDevice(vec["max_bundle_length"])
        for n, step in enumerate(case["steps"], start=1):
            what = f"refused case '{case['case']}' step {n}"
            replay(device, "aws-claim", h(step["request"]), h(step["answer"]), what)
            got = decode("AwsClaimPayload", h(step["answer"]))
            check(got.get("error", 0) == E[step["error"]], f"{what}: error {step['error']}")
        after = case["then_aws_status"]
        replay(device, "aws-status", h(after["request"]), h(after["answer"]), f"refused case '{case['case']}': nothing kept")
        check(device.claim is None, f"refused case '{case['case']}': the reference device kept nothing")


# ---- aws-status ----------------------------------------------------------------------------------

def check_status(vec):
    stages = ENUMS["CloudStage"]
    kinds = ENUMS["CloudFailureKind"]
    strict("AwsStatusPayload", h(vec["request"]), "aws-status request")
    by = {name: n for n, name in stages.items()}
    for a in vec["answers"]:
        m = strict("AwsStatusPayload", h(a["answer"]), f"aws-status {a['case']}")
        r = m.get("resp_get", {})
        stage = r.get("stage", 0)
        check(m.get("msg") == 1 and m.get("status", 0) == 0, f"aws-status {a['case']}: RespGetCloudStatus, Success")
        check(stages[stage] == a["case"].split("/")[0], f"aws-status {a['case']}: stage")
        failed = stage == by["Failed"]
        check(("ip4_addr" in r) == (stage >= by["WifiConnected"]), f"aws-status {a['case']}: ip4_addr from WifiConnected on")
        check(("certificate_id" in r) == (by["CertificateIssued"] <= stage < by["Failed"]),
              f"aws-status {a['case']}: certificate_id from CertificateIssued on")
        check(("thing_name" in r) == (by["ThingRegistered"] <= stage < by["Failed"]),
              f"aws-status {a['case']}: thing_name from ThingRegistered on")
        check(("failure" in r) == failed, f"aws-status {a['case']}: a failure exactly when Failed")
        s = a["sdk_reads"]
        check(s["accepted"] and s["stage"] == stages[stage], f"aws-status {a['case']}: the SDK reads the stage")
        if failed:
            check(s["failure"] == kinds[r["failure"]["kind"]], f"aws-status {a['case']}: the SDK reads the failure")
    for a in vec["must_refuse"]:
        m = decode("AwsStatusPayload", h(a["answer"]))
        r = m.get("resp_get", {})
        bad = (m.get("status", 0) != 0 or r.get("stage", 0) not in stages
               or (r.get("stage", 0) == by["Failed"] and "failure" not in r))
        check(bad, f"aws-status must-refuse '{a['case']}' is indeed malformed")
        check(not a["sdk_reads"]["accepted"], f"aws-status must-refuse '{a['case']}': the SDK refuses it")


FILES = ("sec2.json", "sec1.json", "claim.json", "negative.json", "aws_status.json", "handshake_refusals.json")


def run(vectors):
    """Runs every check on `vectors` (file name -> parsed JSON); returns the failures."""
    del FAILURES[:]
    check_srp_known_answer()
    check_sec2(vectors["sec2.json"])
    check_sec1(vectors["sec1.json"])
    check_claim(vectors["claim.json"])
    check_negative(vectors["negative.json"])
    check_status(vectors["aws_status.json"])
    check_handshake_refusals(vectors["handshake_refusals.json"], vectors["sec2.json"])
    return list(FAILURES)


def load_all():
    """Reads the .proto (schema and enums) and every vector file."""
    global E
    read_proto(os.path.join(HERE, "..", "claimlink_aws.proto"))
    E = {name: n for n, name in ENUMS["ClaimTransferError"].items()}
    return {name: load(name) for name in FILES}


def main():
    if run(load_all()):
        print(f"{len(FAILURES)} check(s) failed")
        return 1
    print("proto/vectors: every value re-derived and every message decoded; all checks pass")
    return 0


if __name__ == "__main__":
    sys.exit(main())
