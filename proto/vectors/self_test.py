#!/usr/bin/env python3
"""Proves that proto/vectors/check.py can fail: breaks the vectors in memory in ways its checks must
catch (a wrong key, an IV off by one, a claim kept after a refusal, a non-canonical encoding, ...)
and exits with status 1 unless every one is caught.

Usage: python3 proto/vectors/self_test.py
"""

import json
import sys

import check
from check import h

def flip(hex_text, at=0):
    raw = bytearray(h(hex_text))
    raw[at] ^= 0x01
    return raw.hex()


# Mutations the checks must catch: (what, file, edit of the parsed JSON).
MUTATIONS = [
    ("a wrong session key K", "sec2.json", lambda v: v["derived"].update(K=flip(v["derived"]["K"]))),
    ("a wrong verifier", "sec2.json", lambda v: v["derived"].update(verifier=flip(v["derived"]["verifier"], 5))),
    ("another b than B was made with", "sec2.json", lambda v: v["inputs"].update(b=flip(v["inputs"]["b"], 31))),
    ("a GCM IV off by one", "sec2.json", lambda v: v["gcm"][1].update(iv=v["gcm"][2]["iv"])),
    ("a tampered GCM tag", "sec2.json", lambda v: v["gcm"][0].update(ciphertext_and_tag=flip(v["gcm"][0]["ciphertext_and_tag"], -1))),
    ("a wrong device proof", "sec2.json", lambda v: v["handshake"][1].update(answer=flip(v["handshake"][1]["answer"], -20))),
    ("a Sec1 verify with a fresh keystream", "sec1.json", lambda v: v["handshake"][1].update(answer=v["handshake"][0]["request"])),
    ("a wrong PoP", "sec1.json", lambda v: v["inputs"].update(pop="abcd1235")),
    ("a wrong bundle digest", "claim.json", lambda v: v.update(bundle_sha256=flip(v["bundle_sha256"]))),
    ("a chunk acknowledged short", "claim.json",
     lambda v: v["transfers"]["cap_480"]["messages"][1].update(answer=v["transfers"]["cap_480"]["messages"][0]["answer"])),
    ("a refused case answered Success", "negative.json",
     lambda v: v["cases"][1]["steps"][1].update(answer=v["cases"][1]["steps"][0]["answer"])),
    ("a claim kept after a refusal", "negative.json",
     lambda v: v["cases"][1]["then_aws_status"].update(answer=v["cases"][1]["then_aws_status"]["answer"] + "0801")),
    ("Failed without a failure taken for a good answer", "aws_status.json",
     lambda v: v["must_refuse"][0].update(answer=v["answers"][0]["answer"])),
    ("the right password's proof listed as refused", "handshake_refusals.json",
     lambda v: v["cases"][5].update(request=check.load("sec2.json")["handshake"][1]["request"])),
    ("a non-canonical encoding (explicit default)", "aws_status.json",
     lambda v: v["answers"][0].update(answer="1000" + v["answers"][0]["answer"])),
]



def main():
    vectors = check.load_all()
    check.QUIET = True
    caught = 0
    for what, name, edit in MUTATIONS:
        mutated = json.loads(json.dumps(vectors))
        edit(mutated[name])
        failures = check.run(mutated)
        caught += bool(failures)
        print(("caught" if failures else "MISSED"), what, f"({len(failures)} failures)")
    print(f"{caught} of {len(MUTATIONS)} mutations caught")
    return 0 if caught == len(MUTATIONS) else 1


if __name__ == "__main__":
    sys.exit(main())
