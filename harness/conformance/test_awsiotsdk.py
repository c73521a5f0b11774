"""Conformance: AWS's own Python device SDK (awsiotsdk, its iotidentity client) against the emulator.

It must complete CreateKeysAndCertificate, CreateCertificateFromCsr and RegisterThing (accepted and
rejected) and reconnect with the new certificate. The emulator runs as `claimlink-harness emulator`
(the `emulator` fixture of conftest.py), which writes the endpoints, the CA and a fresh claim into a
temporary directory.
"""

import time
import uuid

from awscrt import mqtt
from awsiot import iotidentity, mqtt_connection_builder
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
