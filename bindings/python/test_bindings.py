"""The Python binding, end to end: provisions simulated devices served by `claimlink-harness serve`
through the generated API with asyncio. Covers the glue only (the SDK's behaviour is tested in Rust):
progress events in order, the wrong-password paths and recovery, cancellation of a coroutine and of a
TaskHandle (the claim is wiped from the device), the app's token provider, the logger, secrets never
printed.

Run by scripts/test after bindings/generate; by hand:
    bindings/generate && cargo build -p claimlink-harness
    PYTHONPATH=target/bindings/python python -m pytest bindings/python
"""

import asyncio
import datetime
import json
import os
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.request

import pytest

import claimlink as cl

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
HARNESS = os.environ.get("CLAIMLINK_HARNESS", os.path.join(ROOT, "target", "debug", "claimlink-harness"))
WIFI_JOIN_MS = 1500


@pytest.fixture(scope="module")
def world():
    """The emulator and twelve simulated devices over HTTP on 127.0.0.1."""
    proc = subprocess.Popen(
        [HARNESS, "serve", "--json", "--devices", "12", "--wifi-join-ms", str(WIFI_JOIN_MS)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        assert line, "claimlink-harness serve printed nothing"
        yield json.loads(line)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


class Tokens(cl.TokenProvider):
    """The installer's sign-in: a stale token first, the real one on refresh."""

    def __init__(self, token, stale_first=False):
        self.token = token
        self.stale = stale_first
        self.calls = []

    async def bearer_token(self, refresh):
        self.calls.append(refresh)
        await asyncio.sleep(0)
        if self.stale and not refresh:
            return "stale-token"
        return self.token


class Events(cl.ProvisioningListener):
    def __init__(self, on_stage=None):
        self.events = []
        self.on_stage = on_stage

    def on_event(self, event):
        self.events.append(event)
        if self.on_stage:
            self.on_stage(event.stage)

    def stages(self):
        return [e.stage for e in self.events]


def provisioner(world, tokens=None):
    settings = cl.ProvisionerSettings(
        template=world["template"],
        iot_endpoint=world["iot_endpoint"],
        extra_root_certificates_pem=[world["ca_pem"]],
        poll_interval_millis=100,
    )
    return cl.Provisioner.with_backend(
        settings, world["control_plane"], tokens or Tokens(world["bearer_token"])
    )


def run(scenario):
    """asyncio.run, with the loop registered for the SDK's calls into Python async code (the token
    provider): those arrive on SDK threads, which have no running loop of their own."""

    async def main():
        cl.uniffi_set_event_loop(asyncio.get_running_loop())
        try:
            return await scenario()
        finally:
            cl.uniffi_set_event_loop(None)

    return asyncio.run(main())


def device_secret(device, password=None):
    return cl.DeviceSecret.password(device["username"], password or device["password"])


def wifi(device, passphrase=None):
    return cl.WifiSettings(device["wifi"]["ssid"], passphrase or device["wifi"]["passphrase"])


def options(device):
    return cl.ProvisionOptions(template_parameters=device["template_parameters"])


def sim_state(device):
    with urllib.request.urlopen(device["url"] + "/_sim/state", timeout=5) as r:
        return json.loads(r.read())


def wait_until_wiped(device, seconds=10.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not sim_state(device)["holds_claim"]:
            return True
        time.sleep(0.05)
    return False


ORDER = [
    cl.Stage.CONNECTING,
    cl.Stage.SECURING,
    cl.Stage.CLAIM_REQUESTED,
    cl.Stage.CLAIM_ISSUED,
    cl.Stage.CLAIM_SENT,
    cl.Stage.WIFI_APPLIED,
]


def test_provisions_a_device_after_a_wrong_wifi_passphrase(world):
    device = world["devices"][0]

    async def scenario():
        events = Events()
        p = provisioner(world)
        session = await p.connect(cl.http_device_link(device["url"]), device_secret(device), events)
        info = await session.device_info()
        assert info.security == cl.SecurityLevel.SEC2
        assert info.claim_extension_version is not None
        networks = await session.scan_wifi()
        assert device["wifi"]["ssid"] in [n.ssid for n in networks]

        with pytest.raises(cl.ProvisioningFailure.WifiPasswordRejected):
            await session.provision(wifi(device, "not the passphrase"), options(device), events)
        assert cl.Stage.WIFI_FAILED in events.stages()

        events = Events()
        done = await session.provision(wifi(device), options(device), events)
        report = json.loads(await session.support_report())
        await session.disconnect()
        return done, events, report

    done, events, report = run(scenario)
    # The support report: both runs, the first failing with its stable code, no secret.
    assert report["sdk_version"] == cl.claimlink_version()
    assert [r["outcome"]["result"] for r in report["runs"]] == ["failure", "success"]
    assert report["runs"][0]["outcome"]["code"] == "CL-201"
    assert report["outcome"]["thing_name"] == done.thing_name
    assert report["link"]["exchanges"] > 5
    text = json.dumps(report)
    assert device["password"] not in text and device["wifi"]["passphrase"] not in text
    assert done.thing_name == sim_state(device)["thing_name"]
    assert done.certificate_id
    stages = events.stages()
    assert stages[-1] == cl.Stage.CONFIRMED_BY_CLOUD
    # In order, each stage once.
    assert stages == sorted(stages, key=lambda s: list(cl.Stage).index(s))
    assert len(stages) == len(set(stages))
    for stage in (cl.Stage.WIFI_CONNECTED, cl.Stage.CERTIFICATE_ISSUED, cl.Stage.THING_REGISTERED):
        assert stage in stages
    # The claim's time left only goes down.
    left = [e.claim_time_left for e in events.events if e.claim_time_left is not None]
    assert left and left == sorted(left, reverse=True)
    assert 60 < left[0].total_seconds() <= 300
    # Typed fields, not text in `detail`: the device's address from WIFI_CONNECTED on, the thing and
    # certificate on the cloud's confirmation.
    on_wifi = stages.index(cl.Stage.WIFI_CONNECTED)
    assert all((e.device_ip is not None) == (i >= on_wifi) for i, e in enumerate(events.events))
    last = events.events[-1]
    assert last.device_ip.count(".") == 3
    assert (last.thing_name, last.certificate_id) == (done.thing_name, done.certificate_id)
    assert not sim_state(device)["holds_claim"]


def test_wrong_device_password_then_the_right_one(world):
    device = world["devices"][1]

    async def scenario():
        p = provisioner(world)
        with pytest.raises(cl.ProvisioningFailure.WrongDevicePassword) as refused:
            await p.connect(cl.http_device_link(device["url"]), device_secret(device, "wrong-pass"), None)
        # str() is the sentence (uniffi alone gives an empty string for a variant without fields),
        # with the stable code, and a report of the failure alone (there is no session).
        failure = refused.value
        assert str(failure) == "the device refused the password"
        assert failure.code() == "CL-101"
        assert failure.code_message() == next(
            m.message for m in cl.failure_messages() if m.code == "CL-101"
        )
        report = json.loads(failure.support_report())
        assert report["outcome"]["code"] == "CL-101"
        assert "wrong-pass" not in failure.support_report()
        session = await p.connect(cl.http_device_link(device["url"]), device_secret(device), None)
        done = await session.provision(wifi(device), options(device), None)
        # Provisioned now: a second provision is refused (it would register it again), and its Wi-Fi
        # is changed without a claim, keeping its thing and certificate.
        with pytest.raises(cl.ProvisioningFailure.AlreadyProvisioned) as already:
            await session.provision(wifi(device), options(device), None)
        assert (already.value.thing_name, already.value.certificate_id) == (done.thing_name, done.certificate_id)
        events = Events()
        moved = await session.reconfigure_wifi(wifi(device), events)
        assert (moved.thing_name, moved.certificate_id) == (done.thing_name, done.certificate_id)
        assert moved.device_ip and events.stages() == [cl.Stage.WIFI_APPLIED, cl.Stage.WIFI_CONNECTED]
        await session.disconnect()
        return done

    done = run(scenario)
    assert done.thing_name == sim_state(device)["thing_name"]


def test_cancelling_the_coroutine_stops_the_run_and_wipes_the_claim(world):
    device = world["devices"][2]

    async def scenario():
        loop = asyncio.get_running_loop()
        p = provisioner(world)
        session = await p.connect(cl.http_device_link(device["url"]), device_secret(device), None)
        holder = {}

        def on_stage(stage):
            if stage == cl.Stage.WIFI_APPLIED:
                loop.call_soon_threadsafe(holder["task"].cancel)

        events = Events(on_stage)
        holder["task"] = asyncio.ensure_future(session.provision(wifi(device), options(device), events))
        with pytest.raises(asyncio.CancelledError):
            await holder["task"]
        return events

    events = run(scenario)
    assert cl.Stage.CLAIM_SENT in events.stages()
    assert wait_until_wiped(device), "the device still holds the claim after cancellation"
    state = sim_state(device)
    assert state["thing_name"] is None
    assert cl.Stage.CONFIRMED_BY_CLOUD not in events.stages()


class Completion(cl.ProvisioningCompletion):
    """Where a started run's outcome lands: `outcome["ok"]` or `outcome["failure"]`, then `finished`."""

    def __init__(self):
        super().__init__()
        self.finished = threading.Event()
        self.outcome = {}

    def on_success(self, device):
        self.outcome["ok"] = device
        self.finished.set()

    def on_failure(self, failure):
        self.outcome["failure"] = failure
        self.finished.set()


def test_task_handle_cancel_reports_cancelled_and_wipes_the_claim(world):
    device = world["devices"][3]
    completion = Completion()
    finished, outcome = completion.finished, completion.outcome

    async def scenario():
        p = provisioner(world)
        session = await p.connect(cl.http_device_link(device["url"]), device_secret(device), None)
        sent = threading.Event()
        events = Events(lambda s: s == cl.Stage.WIFI_APPLIED and sent.set())
        handle = session.start_provision(wifi(device), options(device), events, completion)
        assert await asyncio.to_thread(sent.wait, 30)
        assert not handle.is_finished()
        handle.cancel()
        handle.cancel()  # idempotent
        assert handle.is_finished()
        return session

    run(scenario)
    assert finished.wait(10)
    assert isinstance(outcome.get("failure"), cl.ProvisioningFailure.Cancelled)
    assert wait_until_wiped(device)
    assert sim_state(device)["thing_name"] is None, "the run went on after cancel()"


def test_cancel_applies_to_the_run_in_progress_only_and_a_dropped_handle_does_not_cancel(world):
    """session.cancel() with no run in progress does nothing (it used to cancel the next run); a
    TaskHandle the app drops (and the garbage collector frees) leaves the run going to its outcome."""
    import gc

    device = world["devices"][7]
    completion = Completion()
    finished, outcome = completion.finished, completion.outcome

    async def scenario():
        p = provisioner(world)
        session = await p.connect(cl.http_device_link(device["url"]), device_secret(device), None)
        session.cancel()  # no run in progress: nothing to cancel, and nothing is remembered
        handle = session.start_provision(wifi(device), options(device), None, completion)
        del handle
        gc.collect()
        assert await asyncio.to_thread(finished.wait, 30)
        await session.disconnect()

    run(scenario)
    assert "ok" in outcome, outcome
    assert outcome["ok"].thing_name == sim_state(device)["thing_name"]


def test_session_cancel_stops_the_run_in_progress(world):
    device = world["devices"][8]

    async def scenario():
        p = provisioner(world)
        session = await p.connect(cl.http_device_link(device["url"]), device_secret(device), None)
        events = Events(lambda stage: stage == cl.Stage.WIFI_APPLIED and session.cancel())
        with pytest.raises(cl.ProvisioningFailure.Cancelled) as cancelled:
            await session.provision(wifi(device), options(device), events)
        assert cancelled.value.code() == "CL-601"
        return events

    events = run(scenario)
    assert cl.Stage.CLAIM_SENT in events.stages()
    assert wait_until_wiped(device)
    assert sim_state(device)["thing_name"] is None


def test_a_claim_prepared_before_the_session_is_handed_over_without_a_request(world):
    """SoftAP: prepare_claim before joining the device's access point; the run then asks nothing of
    the backend for its claim."""
    device = world["devices"][9]

    async def scenario():
        p = provisioner(world)
        left = await p.prepare_claim(options(device))
        assert left.total_seconds() > 90
        events = Events()
        session = await p.connect(cl.http_device_link(device["url"]), device_secret(device), events)
        done = await session.provision(wifi(device), options(device), events)
        await session.disconnect()
        return done, events

    done, events = run(scenario)
    assert done.thing_name == sim_state(device)["thing_name"]
    assert cl.Stage.CLAIM_REQUESTED not in events.stages()
    issued = next(e for e in events.events if e.stage == cl.Stage.CLAIM_ISSUED)
    assert "prepared" in issued.detail


def test_token_refresh_goes_through_the_apps_provider(world):
    device = world["devices"][4]
    tokens = Tokens(world["bearer_token"], stale_first=True)

    async def scenario():
        p = provisioner(world, tokens)
        session = await p.connect(cl.http_device_link(device["url"]), device_secret(device), None)
        return await session.provision(wifi(device), options(device), None)

    done = run(scenario)
    assert done.thing_name
    assert tokens.calls[:2] == [False, True], tokens.calls


@pytest.mark.parametrize(
    "thrown, expected, detail",
    [
        # A signed-out installer is asked to sign in again.
        (cl.ProviderFailure.NotSignedIn, cl.ProvisioningFailure.SignInRequired, "session expired"),
        # A provider that cannot reach its identity service means retry later, not sign in.
        (cl.ProviderFailure.Failed, cl.ProvisioningFailure.ServiceUnavailable, "identity provider unreachable"),
    ],
    ids=["signed-out-is-sign-in-required", "provider-failure-is-retry-later"],
)
def test_a_provider_failure_maps_to_the_action_it_calls_for(world, thrown, expected, detail):
    device = world["devices"][5]

    class Provider(cl.TokenProvider):
        async def bearer_token(self, refresh):
            raise thrown(detail=detail)

    async def scenario():
        p = provisioner(world, Provider())
        session = await p.connect(cl.http_device_link(device["url"]), device_secret(device), None)
        with pytest.raises(expected) as failure:
            await session.provision(wifi(device), options(device), None)
        await session.disconnect()
        return failure.value

    failure = run(scenario)
    assert detail in str(failure)
    assert not sim_state(device)["holds_claim"]


def test_logger_receives_the_sdk_log_and_secrets_are_never_printed(world):
    lines = []

    class Collect(cl.LogSink):
        def log(self, record):
            lines.append(record)

    cl.set_logger(Collect(), cl.LogLevel.TRACE)
    try:
        async def scenario():
            p = provisioner(world)
            device = world["devices"][0]  # provisioned already: a wrong password is enough
            with pytest.raises(cl.ProvisioningFailure.WrongDevicePassword):
                await p.connect(cl.http_device_link(device["url"]), device_secret(device, "hunter2-pw"), None)

        run(scenario)
    finally:
        cl.clear_logger()
    assert lines, "no log lines reached the app's logger"
    assert all(r.target.startswith("claimlink") for r in lines)
    text = "\n".join(r.message for r in lines)
    assert "hunter2-pw" not in text
    secret = cl.DeviceSecret.password("wifiprov", "hunter2-pw")
    settings = cl.WifiSettings("claimlink-lab", "correct horse battery")
    creds = cl.AwsCredentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG", "session-token-xyz")
    printed = " ".join([str(secret), repr(secret), str(settings), repr(settings), str(creds), repr(creds)])
    for s in ("hunter2-pw", "correct horse battery", "wJalrXUtnFEMI", "session-token-xyz"):
        assert s not in printed
    assert "claimlink-lab" in printed and "AKIDEXAMPLE" in printed


def test_input_errors_are_typed(world):
    with pytest.raises(cl.ProvisioningFailure.InvalidInput) as invalid:
        cl.WifiSettings("x" * 33, "correct horse battery")
    # str() of a failure with fields is its sentence too, not uniffi's "detail='…'".
    assert str(invalid.value).startswith("invalid input: "), str(invalid.value)
    assert invalid.value.code() == "CL-501"
    with pytest.raises(cl.ProvisioningFailure.InvalidInput):
        cl.http_device_link("ftp://192.168.4.1")
    with pytest.raises(cl.ProvisioningFailure.InvalidInput):
        cl.parse_provisioning_qr('{"ver":"v1","name":"PROV_1","transport":"carrier-pigeon"}')
    qr = cl.parse_provisioning_qr('{"ver":"v1","name":"PROV_1A2B","pop":"abcd1234","transport":"ble"}')
    assert (qr.name, qr.transport, qr.security) == ("PROV_1A2B", cl.DeviceTransport.BLE, cl.SecurityLevel.SEC2)
    assert "abcd1234" not in str(qr)
    with pytest.raises(cl.ProvisioningFailure.InvalidInput):
        settings = cl.ProvisionerSettings(template="no such template!", iot_endpoint="x")
        cl.Provisioner.with_backend(settings, world["control_plane"], Tokens("t"))


class AppCloud(cl.ClaimSource, cl.ThingDirectory):
    """An app's own claim source and thing directory in one object: it talks to its backend itself
    (here the emulator's backend contract, over urllib) and hands the SDK plain values."""

    def __init__(self, world):
        self.world = world
        self.requests = []
        self.described = []
        self.tls = ssl.create_default_context(cadata=world["ca_pem"])

    def _call(self, method, path, body=None):
        request = urllib.request.Request(
            self.world["control_plane"].rstrip("/") + path,
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": "Bearer " + self.world["bearer_token"], "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=10, context=self.tls) as r:
                return json.loads(r.read())
        except urllib.error.HTTPError as e:
            if e.code == 404:
                return None
            raise cl.ProviderFailure.Failed(detail=f"backend answered {e.code}")

    async def request_claim(self, request):
        self.requests.append(request)
        answer = await asyncio.to_thread(
            self._call, "POST", "/v1/provisioning-claims", {"templateName": request.template}
        )
        return cl.ProvisioningClaim(
            answer["certificatePem"],
            answer["keyPair"]["PrivateKey"],
            datetime.datetime.fromtimestamp(answer["expiration"], datetime.timezone.utc),
        )

    async def describe_thing(self, thing_name):
        self.described.append(thing_name)
        thing = await asyncio.to_thread(self._call, "GET", "/v1/things/" + thing_name)
        if thing is None:
            return None
        return cl.ThingDescription(
            thing_name=thing["thingName"],
            thing_arn=thing.get("thingArn"),
            attributes=thing.get("attributes", {}),
            certificates=[
                cl.ThingCertificate(
                    certificate_id=c["certificateId"],
                    status=cl.CertificateStatus.ACTIVE()
                    if c["status"] == "ACTIVE"
                    else cl.CertificateStatus.OTHER(status=c["status"]),
                )
                for c in thing["certificates"]
            ],
        )


def test_an_app_claim_source_and_thing_directory_provision_a_device(world):
    device = world["devices"][6]
    cloud = AppCloud(world)

    async def scenario():
        settings = cl.ProvisionerSettings(
            template=world["template"],
            iot_endpoint=world["iot_endpoint"],
            poll_interval_millis=100,
        )
        p = cl.Provisioner.with_claim_source(settings, cloud, cloud)
        session = await p.connect(cl.http_device_link(device["url"]), device_secret(device), None)
        done = await session.provision(wifi(device), options(device), None)
        # Provisioned now: a second provision is refused (it would register it again), and its Wi-Fi
        # is changed without a claim, keeping its thing and certificate.
        with pytest.raises(cl.ProvisioningFailure.AlreadyProvisioned) as already:
            await session.provision(wifi(device), options(device), None)
        assert (already.value.thing_name, already.value.certificate_id) == (done.thing_name, done.certificate_id)
        events = Events()
        moved = await session.reconfigure_wifi(wifi(device), events)
        assert (moved.thing_name, moved.certificate_id) == (done.thing_name, done.certificate_id)
        assert moved.device_ip and events.stages() == [cl.Stage.WIFI_APPLIED, cl.Stage.WIFI_CONNECTED]
        await session.disconnect()
        return done

    done = run(scenario)
    assert done.thing_name == sim_state(device)["thing_name"]
    assert [r.template for r in cloud.requests] == [world["template"]]
    assert done.thing_name in cloud.described, "the cloud's confirmation went through the app's directory"
    assert not sim_state(device)["holds_claim"]
    claim = cl.ProvisioningClaim("pem", "-----BEGIN PRIVATE KEY-----", datetime.datetime.now(datetime.timezone.utc))
    assert "PRIVATE KEY" not in str(claim) + repr(claim)


class PhoneOnAccessPoint(AppCloud):
    """The app's cloud reached through a phone that has no route out while it is on the device's
    access point: the provider then throws ProviderFailure.Unreachable, as an app's would."""

    def __init__(self, world):
        super().__init__(world)
        self.on_ap = False
        self.refused = 0

    def _route(self):
        if self.on_ap:
            self.refused += 1
            raise cl.ProviderFailure.Unreachable(detail="no route out of the device's access point")

    async def request_claim(self, request):
        self._route()
        return await super().request_claim(request)

    async def describe_thing(self, thing_name):
        self._route()
        return await super().describe_thing(thing_name)


def softap_provisioner(world, cloud, cloud_timeout_secs=60):
    settings = cl.ProvisionerSettings(
        template=world["template"],
        iot_endpoint=world["iot_endpoint"],
        poll_interval_millis=100,
        cloud_timeout_secs=cloud_timeout_secs,
        ap_join_budget_secs=20,
    )
    return cl.Provisioner.with_claim_source(settings, cloud, cloud)


def test_softap_confirmation_waits_until_the_phone_left_the_access_point(world):
    device = world["devices"][10]
    cloud = PhoneOnAccessPoint(world)

    def leave_on_wait(stage):
        # What a SoftAP app does: the SDK is done with the device, so leave its access point.
        if stage == cl.Stage.WAITING_FOR_NETWORK:
            cloud.on_ap = False

    async def scenario():
        p = softap_provisioner(world, cloud)
        left = await p.prepare_claim(options(device))
        assert left.total_seconds() > 80
        cloud.on_ap = True
        events = Events(leave_on_wait)
        session = await p.connect(cl.http_device_link(device["url"]), device_secret(device), events)
        done = await session.provision(wifi(device), options(device), events)
        await session.disconnect()
        return done, events

    done, events = run(scenario)
    stages = events.stages()
    assert cl.Stage.CLAIM_REQUESTED not in stages
    waiting = stages.index(cl.Stage.WAITING_FOR_NETWORK)
    assert stages[waiting + 1 :] == [cl.Stage.CONFIRMED_BY_CLOUD], stages
    wait = events.events[waiting]
    assert (wait.thing_name, wait.certificate_id) == (done.thing_name, done.certificate_id)
    assert cloud.refused >= 1
    assert done.thing_name == sim_state(device)["thing_name"]


def test_a_phone_still_on_the_access_point_at_the_deadline_is_phone_offline(world):
    device = world["devices"][11]
    cloud = PhoneOnAccessPoint(world)

    async def scenario():
        p = softap_provisioner(world, cloud, cloud_timeout_secs=1)
        await p.prepare_claim(options(device))
        cloud.on_ap = True
        events = Events()
        session = await p.connect(cl.http_device_link(device["url"]), device_secret(device), events)
        with pytest.raises(cl.ProvisioningFailure.PhoneOffline) as offline:
            await session.provision(wifi(device), options(device), events)
        await session.disconnect()
        return offline.value, events

    failure, events = run(scenario)
    assert failure.code() == "CL-405"
    assert failure.thing_name == sim_state(device)["thing_name"]
    assert "once the phone is online" in str(failure), str(failure)
    assert events.stages().count(cl.Stage.WAITING_FOR_NETWORK) == 1
    assert cl.Stage.CONFIRMED_BY_CLOUD not in events.stages()
    assert not sim_state(device)["holds_claim"]
