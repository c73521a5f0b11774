"""The emulator every conformance test talks to: one `claimlink-harness emulator --out DIR` process for
the whole session. The fixture yields its endpoints.json with `dir`, the directory of its files (the
README.md the command writes there says what each is)."""

import json
import os
import pathlib
import subprocess
import tempfile
import time

import pytest

HARNESS = os.environ.get("CLAIMLINK_HARNESS", "target/debug/claimlink-harness")
TIMEOUT = 20


@pytest.fixture(scope="session")
def emulator():
    out = pathlib.Path(tempfile.mkdtemp(prefix="claimlink-conformance-"))
    proc = subprocess.Popen([HARNESS, "emulator", "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        for _ in range(300):
            if (out / "endpoints.json").exists():
                break
            if proc.poll() is not None:
                raise RuntimeError(f"emulator exited: {proc.stdout.read().decode(errors='replace')}")
            time.sleep(0.1)
        else:
            raise RuntimeError("emulator did not start")
        info = json.loads((out / "endpoints.json").read_text())
        info["dir"] = out
        yield info
    finally:
        proc.terminate()
        proc.wait(timeout=10)
