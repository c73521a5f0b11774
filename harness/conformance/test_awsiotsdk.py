"""Conformance: AWS's own Python device SDK (awsiotsdk, its iotidentity client) against the emulator.

It must complete CreateKeysAndCertificate, CreateCertificateFromCsr and RegisterThing (accepted and
rejected) and reconnect with the new certificate, over MQTT 3.1.1 (IotIdentityClient) and MQTT 5
(IotIdentityClientV2 on awscrt's MQTT 5 client); over MQTT 5 the CBOR topics and the "Not authorized"
reason codes are checked with the client's raw publish and subscribe (awsiotsdk's identity clients
speak JSON only). The emulator runs as `claimlink-harness emulator`
(the `emulator` fixture of conftest.py), which writes the endpoints, the CA and a fresh claim into a
temporary directory.
"""

import concurrent.futures
import queue
import time
import uuid

import awsiot
import pytest

from awscrt import mqtt, mqtt5, mqtt_request_response
from awsiot import iotidentity, mqtt5_client_builder, mqtt_connection_builder
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from conftest import TIMEOUT


def connect(info, cert_path, key_path, client_id):
    conn = mqtt_connection_builder.mtls_from_path(
        endpoint=info["mqtt_host"],
        port=info["mqtt_port"],
        cert_filepath=str(cert_path),
        pri_key_filepath=str(key_path),
        ca_filepath=str(info["dir"] / "ca.pem"),
        client_id=client_id,
        clean_session=True,
        keep_alive_secs=30,
    )
    conn.connect().result(TIMEOUT)
    return conn


class Replies:
    """Collects accepted/rejected replies for one API."""

    def __init__(self):
        self.accepted = []
        self.rejected = []

    def on_accepted(self, response):
        self.accepted.append(response)

    def on_rejected(self, error):
        self.rejected.append(error)

    def wait(self):
        for _ in range(TIMEOUT * 20):
            if self.accepted or self.rejected:
                return
            time.sleep(0.05)
        raise TimeoutError("no reply")


def register(client, template, token, parameters):
    replies = Replies()
    req = iotidentity.RegisterThingSubscriptionRequest(template_name=template)
    f, _ = client.subscribe_to_register_thing_accepted(req, mqtt.QoS.AT_LEAST_ONCE, replies.on_accepted)
    f.result(TIMEOUT)
    f, _ = client.subscribe_to_register_thing_rejected(req, mqtt.QoS.AT_LEAST_ONCE, replies.on_rejected)
    f.result(TIMEOUT)
    client.publish_register_thing(
        iotidentity.RegisterThingRequest(template_name=template, certificate_ownership_token=token, parameters=parameters),
        mqtt.QoS.AT_LEAST_ONCE,
    ).result(TIMEOUT)
    replies.wait()
    return replies


def reconnect_with(info, tmp, name, cert_pem, key_pem):
    cert = tmp / f"{name}.pem"
    key = tmp / f"{name}.key"
    cert.write_text(cert_pem)
    key.write_text(key_pem)
    conn = connect(info, cert, key, name)
    conn.disconnect().result(TIMEOUT)


def test_create_keys_and_certificate_then_register_thing(emulator, tmp_path):
    name = f"py-keys-{uuid.uuid4().hex[:8]}"
    conn = connect(emulator, emulator["dir"] / "claim.pem", emulator["dir"] / "claim.key", name)
    client = iotidentity.IotIdentityClient(conn)
    replies = Replies()
    f, _ = client.subscribe_to_create_keys_and_certificate_accepted(
        iotidentity.CreateKeysAndCertificateSubscriptionRequest(), mqtt.QoS.AT_LEAST_ONCE, replies.on_accepted
    )
    f.result(TIMEOUT)
    f, _ = client.subscribe_to_create_keys_and_certificate_rejected(
        iotidentity.CreateKeysAndCertificateSubscriptionRequest(), mqtt.QoS.AT_LEAST_ONCE, replies.on_rejected
    )
    f.result(TIMEOUT)
    client.publish_create_keys_and_certificate(iotidentity.CreateKeysAndCertificateRequest(), mqtt.QoS.AT_LEAST_ONCE).result(TIMEOUT)
    replies.wait()
    assert not replies.rejected, replies.rejected
    created = replies.accepted[0]
    assert len(created.certificate_id) == 64 and "BEGIN CERTIFICATE" in created.certificate_pem
    assert "PRIVATE KEY" in created.private_key

    registered = register(client, emulator["template"], created.certificate_ownership_token, {"SerialNumber": name})
    assert not registered.rejected, registered.rejected
    assert registered.accepted[0].thing_name == name
    conn.disconnect().result(TIMEOUT)
    reconnect_with(emulator, tmp_path, name, created.certificate_pem, created.private_key)


def test_create_certificate_from_csr_then_register_thing(emulator, tmp_path):
    name = f"py-csr-{uuid.uuid4().hex[:8]}"
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .sign(key, hashes.SHA256())
        .public_bytes(serialization.Encoding.PEM)
        .decode()
    )
    conn = connect(emulator, emulator["dir"] / "claim.pem", emulator["dir"] / "claim.key", name)
    client = iotidentity.IotIdentityClient(conn)
    replies = Replies()
    f, _ = client.subscribe_to_create_certificate_from_csr_accepted(
        iotidentity.CreateCertificateFromCsrSubscriptionRequest(), mqtt.QoS.AT_LEAST_ONCE, replies.on_accepted
    )
    f.result(TIMEOUT)
    f, _ = client.subscribe_to_create_certificate_from_csr_rejected(
        iotidentity.CreateCertificateFromCsrSubscriptionRequest(), mqtt.QoS.AT_LEAST_ONCE, replies.on_rejected
    )
    f.result(TIMEOUT)
    client.publish_create_certificate_from_csr(
        iotidentity.CreateCertificateFromCsrRequest(certificate_signing_request=csr), mqtt.QoS.AT_LEAST_ONCE
    ).result(TIMEOUT)
    replies.wait()
    assert not replies.rejected, replies.rejected
    created = replies.accepted[0]

    # Rejected first: a parameter the template needs is missing.
    rejected = register(client, emulator["template"], created.certificate_ownership_token, {})
    assert rejected.rejected and not rejected.accepted
    assert rejected.rejected[0].status_code == 400
    assert rejected.rejected[0].error_code == "InvalidParameters"

    accepted = register(client, emulator["template"], created.certificate_ownership_token, {"SerialNumber": name})
    assert not accepted.rejected, accepted.rejected
    assert accepted.accepted[0].thing_name == name
    conn.disconnect().result(TIMEOUT)
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    reconnect_with(emulator, tmp_path, name, created.certificate_pem, key_pem)


def test_register_thing_with_a_bad_token_is_rejected(emulator):
    name = f"py-bad-{uuid.uuid4().hex[:8]}"
    conn = connect(emulator, emulator["dir"] / "claim.pem", emulator["dir"] / "claim.key", name)
    client = iotidentity.IotIdentityClient(conn)
    replies = register(client, emulator["template"], "not-a-real-token", {"SerialNumber": name})
    assert replies.rejected and not replies.accepted
    assert replies.rejected[0].error_code == "InvalidCertificateOwnershipToken"
    conn.disconnect().result(TIMEOUT)


# ---- MQTT 5: awsiotsdk's MQTT 5 client (awscrt.mqtt5), as AWS's current device SDKs default to it ----


def connect5(info, cert_path, key_path, client_id, on_publish=None):
    """An awscrt MQTT 5 client connected with mutual TLS (awsiotsdk's mqtt5_client_builder)."""
    connected = concurrent.futures.Future()

    def failed(data):
        if not connected.done():
            connected.set_exception(data.exception)

    client = mqtt5_client_builder.mtls_from_path(
        endpoint=info["mqtt_host"],
        port=info["mqtt_port"],
        cert_filepath=str(cert_path),
        pri_key_filepath=str(key_path),
        ca_filepath=str(info["dir"] / "ca.pem"),
        client_id=client_id,
        on_publish_received=on_publish,
        on_lifecycle_connection_success=lambda data: connected.done() or connected.set_result(data),
        on_lifecycle_connection_failure=failed,
    )
    client.start()
    connected.result(TIMEOUT)
    return client


def test_mqtt5_identity_client_v2_provisions_and_the_new_certificate_connects(emulator, tmp_path):
    name = f"py5-keys-{uuid.uuid4().hex[:8]}"
    client = connect5(emulator, emulator["dir"] / "claim.pem", emulator["dir"] / "claim.key", name)
    try:
        identity = iotidentity.IotIdentityClientV2(
            client,
            mqtt_request_response.ClientOptions(
                max_request_response_subscriptions=2, max_streaming_subscriptions=1, operation_timeout_in_seconds=TIMEOUT
            ),
        )
        created = identity.create_keys_and_certificate(iotidentity.CreateKeysAndCertificateRequest()).result(TIMEOUT)
        assert len(created.certificate_id) == 64 and "PRIVATE KEY" in created.private_key
        with pytest.raises(awsiot.V2ServiceException) as rejected:
            identity.register_thing(
                iotidentity.RegisterThingRequest(template_name=emulator["template"], certificate_ownership_token="bad-token", parameters={"SerialNumber": name})
            ).result(TIMEOUT)
        assert rejected.value.modeled_error.error_code == "InvalidCertificateOwnershipToken"
        registered = identity.register_thing(
            iotidentity.RegisterThingRequest(
                template_name=emulator["template"], certificate_ownership_token=created.certificate_ownership_token, parameters={"SerialNumber": name}
            )
        ).result(TIMEOUT)
        assert registered.thing_name == name
    finally:
        client.stop()
    cert, key = tmp_path / "d.pem", tmp_path / "d.key"
    cert.write_text(created.certificate_pem)
    key.write_text(created.private_key)
    connect5(emulator, cert, key, name).stop()


def test_mqtt5_cbor_payloads_and_not_authorized_reason_codes(emulator):
    received = queue.Queue()
    client = connect5(
        emulator,
        emulator["dir"] / "claim.pem",
        emulator["dir"] / "claim.key",
        f"py5-cbor-{uuid.uuid4().hex[:8]}",
        on_publish=lambda data: received.put(data.publish_packet),
    )
    try:
        suback = client.subscribe(
            mqtt5.SubscribePacket(
                subscriptions=[
                    mqtt5.Subscription("$aws/certificates/create/cbor/accepted", mqtt5.QoS.AT_LEAST_ONCE),
                    mqtt5.Subscription("$aws/certificates/create/cbor/rejected", mqtt5.QoS.AT_LEAST_ONCE),
                    # Another template's topics: not in the claim's policy.
                    mqtt5.Subscription("$aws/provisioning-templates/other/provision/json/accepted", mqtt5.QoS.AT_LEAST_ONCE),
                ]
            )
        ).result(TIMEOUT)
        assert suback.reason_codes == [
            mqtt5.SubackReasonCode.GRANTED_QOS_1,
            mqtt5.SubackReasonCode.GRANTED_QOS_1,
            mqtt5.SubackReasonCode.NOT_AUTHORIZED,
        ]
        # CreateKeysAndCertificate in CBOR: the request is the empty CBOR map (0xa0).
        done = client.publish(mqtt5.PublishPacket(topic="$aws/certificates/create/cbor", payload=b"\xa0", qos=mqtt5.QoS.AT_LEAST_ONCE)).result(TIMEOUT)
        assert done.puback.reason_code == mqtt5.PubackReasonCode.SUCCESS
        answer = received.get(timeout=TIMEOUT)
        assert answer.topic == "$aws/certificates/create/cbor/accepted"
        # A CBOR map of four entries (0xa4) whose keys are CBOR text strings.
        assert answer.payload[0] == 0xA4, answer.payload[:8]
        assert b"\x78\x19certificateOwnershipToken" in answer.payload
        # A forbidden publish at QoS 1: PUBACK 0x87, and the session goes on.
        done = client.publish(
            mqtt5.PublishPacket(topic="$aws/provisioning-templates/other/provision/json", payload=b"{}", qos=mqtt5.QoS.AT_LEAST_ONCE)
        ).result(TIMEOUT)
        assert done.puback.reason_code == mqtt5.PubackReasonCode.NOT_AUTHORIZED
        done = client.publish(mqtt5.PublishPacket(topic="$aws/certificates/create/cbor", payload=b"\xa0", qos=mqtt5.QoS.AT_LEAST_ONCE)).result(TIMEOUT)
        assert done.puback.reason_code == mqtt5.PubackReasonCode.SUCCESS
        assert received.get(timeout=TIMEOUT).topic == "$aws/certificates/create/cbor/accepted"
    finally:
        client.stop()
