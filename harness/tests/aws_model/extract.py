"""Writes iot-2015-05-28.json: the part of botocore's AWS IoT service model the emulator's SigV4 API
answers (four operations, the closure of their output and error shapes, documentation stripped).

Run with the Python that has botocore installed (scripts/test's venv, target/conformance-venv):
    target/conformance-venv/bin/python harness/tests/aws_model/extract.py
harness/tests/aws_shapes.rs checks the emulator's answers against the file.
"""

import gzip
import json
import pathlib

import botocore

OPERATIONS = ["CreateProvisioningClaim", "DescribeThing", "DescribeCertificate", "ListThingPrincipals"]
MODEL = "botocore/data/iot/2015-05-28/service-2.json"


def main():
    source = pathlib.Path(botocore.__file__).parent.parent / MODEL
    opener = gzip.open if not source.exists() else open
    model = json.load(opener(source if source.exists() else f"{source}.gz"))
    shapes = {}

    def walk(name):
        if name in shapes:
            return
        shape = {k: v for k, v in model["shapes"][name].items() if k != "documentation"}
        if "members" in shape:
            shape["members"] = {
                k: {kk: vv for kk, vv in v.items() if kk != "documentation"} for k, v in shape["members"].items()
            }
        shapes[name] = shape
        if shape["type"] == "structure":
            for member in shape["members"].values():
                walk(member["shape"])
        elif shape["type"] == "list":
            walk(shape["member"]["shape"])
        elif shape["type"] == "map":
            walk(shape["key"]["shape"])
            walk(shape["value"]["shape"])

    out = {
        "_source": f"botocore {botocore.__version__} (PyPI), {MODEL}: the operations below and the closure of "
        "their output and error shapes, documentation stripped. Regenerate with harness/tests/aws_model/extract.py.",
        "metadata": model["metadata"],
        "operations": {},
    }
    for name in OPERATIONS:
        op = model["operations"][name]
        out["operations"][name] = {
            "http": op["http"],
            "output": op["output"]["shape"],
            "errors": [e["shape"] for e in op["errors"]],
        }
        walk(op["output"]["shape"])
        for e in op["errors"]:
            walk(e["shape"])
    out["shapes"] = dict(sorted(shapes.items()))
    target = pathlib.Path(__file__).with_name("iot-2015-05-28.json")
    target.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {target} ({len(shapes)} shapes)")


if __name__ == "__main__":
    main()
