#!/usr/bin/env python3
"""Writes the fuzz target's seed corpus from proto/vectors/: every claim transfer and refusal of
claim.json and negative.json as a session (mode byte 0), and the vector bundle and the refused
bundles as bundles (mode byte 1). Usage: make_corpus.py VECTORS_DIR OUT_DIR"""
import hashlib, json, os, struct, sys

vectors, out = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)
seeds = []

def record(kind, data):
    return bytes([kind]) + struct.pack("<H", len(data)) + data

def session(messages):
    body = b"\x00"
    for endpoint, request in messages:
        body += record(0 if endpoint == "aws-claim" else 1, bytes.fromhex(request))
    return body

claim = json.load(open(os.path.join(vectors, "claim.json")))
for name, t in claim["transfers"].items():
    seeds.append(session([(m["endpoint"], m["request"]) for m in t["messages"]]))
bundle = bytes.fromhex(claim["bundle"])
seeds.append(b"\x01" + bundle)
# A session with the bundle, Wi-Fi applied and an IP, then status.
seeds.append(b"\x00" + record(4, bundle) + record(2, b"\x00") + record(2, b"\x01\x0a\x00\x00\x02") + record(1, b"\x52\x00"))
neg = json.load(open(os.path.join(vectors, "negative.json")))
for case in neg["cases"]:
    seeds.append(session([("aws-claim", s["request"]) for s in case["steps"]]))
status = json.load(open(os.path.join(vectors, "aws_status.json")))
seeds.append(session([("aws-status", status["request"])]))
for i, seed in enumerate(seeds):
    name = hashlib.sha1(seed).hexdigest()
    with open(os.path.join(out, name), "wb") as f:
        f.write(seed)
print(f"{len(seeds)} seeds in {out}")
