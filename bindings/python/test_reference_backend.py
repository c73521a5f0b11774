"""The Python binding through claimlink's reference backend (backend/, issue 18), end to end: the
app's Provisioner.with_backend → the backend over HTTPS (an OIDC installer's token, the claim bound to
the deviceHint) → the emulator's CreateProvisioningClaim → the simulated device → RegisterThing → the
emulator calls the backend's pre-provisioning hook → the thing named and attributed from the backend's
record → confirmed through the backend's GET /v1/things. And the binding holding: a claim issued for
another serial is refused by the hook, which the app sees as AWS's ACCESS_DENIED (CL-403).

On SQLite always; on PostgreSQL too when CLAIMLINK_TEST_POSTGRES_URL names a server (scripts/test's
throwaway cluster). Run by scripts/test after bindings/generate; by hand:
    bindings/generate && cargo build -p claimlink-harness -p claimlink-backend
    PYTHONPATH=target/bindings/python python -m pytest bindings/python/test_reference_backend.py
"""

import json
import os
import ssl
import subprocess
import urllib.error
import urllib.parse
import urllib.request
import uuid

import pytest

import claimlink as cl
from test_bindings import HARNESS, Events, Tokens, device_secret, run, sim_state, wait_until_wiped, wifi

POSTGRES_URL = os.environ.get("CLAIMLINK_TEST_POSTGRES_URL", "")


@pytest.fixture(
    scope="module",
    params=[
        "sqlite",
        pytest.param(
            "postgresql",
            marks=pytest.mark.skipif(not POSTGRES_URL, reason="CLAIMLINK_TEST_POSTGRES_URL is not set"),
        ),
    ],
)
def world(request):
    """The emulator, two simulated devices and the reference backend in front of them, its records
    in a SQLite file or in PostgreSQL."""
    command = [HARNESS, "serve", "--json", "--devices", "2", "--backend", "reference"]
    if request.param == "postgresql":
        command += ["--backend-database", POSTGRES_URL]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line, "claimlink-harness serve --backend reference printed nothing (see its errors above)"
        info = json.loads(line)
        assert info["backend"] == "reference"
        records = info["reference_backend"]
        assert records["database"] == request.param
        assert records["records"].startswith({"sqlite": "SQLite file ", "postgresql": "PostgreSQL at "}[request.param])
        yield info
    finally:
        proc.terminate()
        # serve stops its backend's process on SIGTERM and exits cleanly.
        assert proc.wait(timeout=10) == 0


def fresh_serial():
    """A serial no run has used: the backend refuses a claim for a serial already provisioned, and
    the PostgreSQL database outlives one run of this test."""
    return "py-" + uuid.uuid4().hex[:16]


def provisioner(world):
    settings = cl.ProvisionerSettings(
        template=world["template"],
        iot_endpoint=world["iot_endpoint"],
        # The emulator's CA: it signed the backend's HTTPS certificate too.
        extra_root_certificates_pem=[world["ca_pem"]],
        poll_interval_millis=100,
    )
    return cl.Provisioner.with_backend(settings, world["control_plane"], Tokens(world["bearer_token"]))


def backend_thing(world, thing_name):
    """The backend's GET /v1/things/{name} (DescribeThing and the thing's certificates), as the app's
    installer: (status, body)."""
    context = ssl.create_default_context(cadata=world["ca_pem"])
    request = urllib.request.Request(
        world["control_plane"] + "/v1/things/" + urllib.parse.quote(thing_name),
        headers={"Authorization": "Bearer " + world["bearer_token"]},
    )
    try:
        with urllib.request.urlopen(request, timeout=10, context=context) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def provision(world, device, serial, device_hint):
    """One run on `device`: RegisterThing with SerialNumber=`serial`, the claim asked for `device_hint`."""

    async def scenario():
        events = Events()
        session = await provisioner(world).connect(
            cl.http_device_link(device["url"]), device_secret(device), events
        )
        try:
            options = cl.ProvisionOptions(
                template_parameters={"SerialNumber": serial}, device_hint=device_hint
            )
            return await session.provision(wifi(device), options, events), events
        finally:
            await session.disconnect()

    return run(scenario)


def test_a_device_is_registered_with_the_backends_overrides_and_confirmed(world):
    device = world["devices"][0]
    serial = fresh_serial()
    done, events = provision(world, device, serial, device_hint=serial)

    stages = events.stages()
    assert stages[-1] == cl.Stage.CONFIRMED_BY_CLOUD
    assert cl.Stage.THING_REGISTERED in stages
    # The hook named the thing from the record (ThingName = the bound serial) and the device
    # registered it under that name.
    assert done.thing_name == serial
    assert sim_state(device)["thing_name"] == serial
    assert not sim_state(device)["holds_claim"]
    # The registry, read back through the backend: attributes from the hook's overrides.
    status, thing = backend_thing(world, serial)
    assert status == 200, thing
    assert thing["thingName"] == serial
    installer = world["reference_backend"]
    assert thing["attributes"] == {
        "serial": serial,
        "installer": installer["installer"],
        "site": installer["site"],
    }
    assert {"certificateId": done.certificate_id, "status": "ACTIVE"} in thing["certificates"]


def test_a_claim_bound_to_another_serial_is_refused_by_the_hook(world):
    device = world["devices"][1]
    serial = fresh_serial()
    other = fresh_serial()
    with pytest.raises(cl.ProvisioningFailure.CloudRejected) as refused:
        provision(world, device, serial, device_hint=other)

    failure = refused.value
    # AWS's words for a hook that does not allow provisioning, and the SDK's stable code.
    assert (failure.status_code, failure.error_code) == (403, "ACCESS_DENIED")
    assert failure.step == cl.CloudStep.REGISTER_THING_REJECTED
    assert failure.thing_name is None
    assert failure.code() == "CL-403"
    # Nothing registered under either serial; the device dropped the claim.
    assert wait_until_wiped(device)
    assert sim_state(device)["thing_name"] is None
    for name in (serial, other):
        status, _ = backend_thing(world, name)
        assert status == 404
