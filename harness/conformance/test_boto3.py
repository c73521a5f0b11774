"""Conformance: AWS's own Python SDK (boto3/botocore, from PyPI) against the emulator's SigV4 API and
credentials provider.

boto3 is configured only by the files `claimlink-harness emulator --out DIR` writes (the profile in
`aws-config` and `aws-credentials`), signs with its own SigV4 signer, and parses the answers with
botocore's service model: CreateProvisioningClaim, DescribeThing, ListThingPrincipals and
DescribeCertificate must come back with every field AWS documents; wrong secrets, unknown templates and
things, and a stale clock must fail with AWS's error codes. The credentials provider is called as AWS's
guide calls it with curl (mutual TLS, `x-amzn-iot-thingname`), and the credentials it returns sign
requests boto3 sends.
"""

import datetime
import hashlib
import http.client
import importlib
import json
import ssl

import boto3
import botocore.auth
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from cryptography import x509

NO_RETRIES = Config(retries={"max_attempts": 1, "mode": "standard"})


@pytest.fixture
def profile(emulator, monkeypatch):
    """The emulator's AWS profile, as a person would use it: AWS_CONFIG_FILE and
    AWS_SHARED_CREDENTIALS_FILE pointed at the written files (an AWS_CA_BUNDLE in the environment
    would override the profile's ca_bundle)."""
    monkeypatch.setenv("AWS_CONFIG_FILE", str(emulator["dir"] / "aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(emulator["dir"] / "aws-credentials"))
    for name in ["AWS_CA_BUNDLE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"]:
        monkeypatch.delenv(name, raising=False)
    return emulator["aws_profile"]


def iot_client(profile):
    return boto3.Session(profile_name=profile).client("iot", config=NO_RETRIES)


def error_of(call):
    with pytest.raises(ClientError) as raised:
        call()
    return raised.value.response["Error"]["Code"], raised.value.response["ResponseMetadata"]["HTTPStatusCode"], str(raised.value)


def test_create_provisioning_claim_from_the_profile_alone(emulator, profile):
    iot = iot_client(profile)
    assert iot.meta.endpoint_url == emulator["control_plane"]
    before = datetime.datetime.now(datetime.timezone.utc)
    claim = iot.create_provisioning_claim(templateName=emulator["template"])
    assert claim["ResponseMetadata"]["HTTPStatusCode"] == 200
    certificate = x509.load_pem_x509_certificate(claim["certificatePem"].encode())
    assert claim["certificateId"] == hashlib.sha256(certificate.public_bytes(serialization_der())).hexdigest()
    assert "PRIVATE KEY" in claim["keyPair"]["PrivateKey"] and "PUBLIC KEY" in claim["keyPair"]["PublicKey"]
    # botocore parsed the timestamp: five minutes, as AWS's claims.
    lifetime = claim["expiration"] - before
    assert datetime.timedelta(minutes=4) < lifetime <= datetime.timedelta(minutes=5, seconds=5), lifetime
    # The claim is signed by the claim CA (claim-ca.pem), not by the servers' CA (ca.pem).
    claim_ca = x509.load_pem_x509_certificate((emulator["dir"] / "claim-ca.pem").read_bytes())
    certificate.verify_directly_issued_by(claim_ca)
    server_ca = x509.load_pem_x509_certificate((emulator["dir"] / "ca.pem").read_bytes())
    with pytest.raises(Exception):
        certificate.verify_directly_issued_by(server_ca)


def serialization_der():
    from cryptography.hazmat.primitives.serialization import Encoding

    return Encoding.DER


def test_describe_the_sample_device_its_principal_and_certificate(emulator, profile):
    iot = iot_client(profile)
    thing = iot.describe_thing(thingName=emulator["sample_thing"])
    assert thing["thingName"] == thing["defaultClientId"] == emulator["sample_thing"]
    assert thing["thingArn"] == f"arn:aws:iot:{emulator['region']}:{emulator['account_id']}:thing/{emulator['sample_thing']}"
    assert thing["attributes"] == {} and isinstance(thing["version"], int)
    assert "thingTypeName" not in thing, "absent, not null"
    principals = iot.list_thing_principals(thingName=emulator["sample_thing"])["principals"]
    assert len(principals) == 1
    certificate_id = principals[0].rsplit("/", 1)[1]
    description = iot.describe_certificate(certificateId=certificate_id)["certificateDescription"]
    assert description["status"] == "ACTIVE"
    assert description["certificatePem"] == (emulator["dir"] / "device.pem").read_text()
    assert description["ownedBy"] == emulator["account_id"]
    assert description["certificateMode"] == "DEFAULT"
    validity = description["validity"]
    assert validity["notBefore"] < description["creationDate"] < validity["notAfter"]
    assert isinstance(description["lastModifiedDate"], datetime.datetime)


def test_errors_in_aws_words(emulator, profile):
    iot = iot_client(profile)
    code, status, _ = error_of(lambda: iot.create_provisioning_claim(templateName="no-such-template"))
    assert (code, status) == ("ResourceNotFoundException", 404)
    code, status, _ = error_of(lambda: iot.describe_thing(thingName="no-such-thing"))
    assert (code, status) == ("ResourceNotFoundException", 404)
    code, status, _ = error_of(lambda: iot.describe_certificate(certificateId="0" * 64))
    assert (code, status) == ("ResourceNotFoundException", 404)

    credentials = boto3.Session(profile_name=profile).get_credentials()
    wrong = boto3.Session(
        aws_access_key_id=credentials.access_key,
        aws_secret_access_key="x" * 40,
        region_name=emulator["region"],
    ).client("iot", endpoint_url=emulator["control_plane"], verify=str(emulator["dir"] / "ca.pem"), config=NO_RETRIES)
    code, status, message = error_of(lambda: wrong.describe_thing(thingName=emulator["sample_thing"]))
    assert (code, status) == ("InvalidSignatureException", 403)
    assert "does not match" in message

    stranger = boto3.Session(
        aws_access_key_id="AKIAUNKNOWNUNKNOWN00", aws_secret_access_key="x" * 40, region_name=emulator["region"]
    ).client("iot", endpoint_url=emulator["control_plane"], verify=str(emulator["dir"] / "ca.pem"), config=NO_RETRIES)
    code, status, _ = error_of(lambda: stranger.describe_thing(thingName=emulator["sample_thing"]))
    assert (code, status) == ("UnrecognizedClientException", 403)


def test_a_stale_clock_is_refused(emulator, profile, monkeypatch):
    iot = iot_client(profile)
    # botocore's signers read the time from get_current_datetime: twenty minutes slow. With awscrt
    # installed (awsiotsdk needs it) botocore signs with the CRT's SigV4 signer, botocore.crt.auth.
    real = botocore.auth.get_current_datetime

    def slow(*args, **kwargs):
        return real(*args, **kwargs) - datetime.timedelta(minutes=20)

    monkeypatch.setattr(botocore.auth, "get_current_datetime", slow)
    if botocore.auth.HAS_CRT:
        monkeypatch.setattr(importlib.import_module("botocore.crt.auth"), "get_current_datetime", slow)
    code, status, message = error_of(lambda: iot.create_provisioning_claim(templateName=emulator["template"]))
    assert (code, status) == ("InvalidSignatureException", 403)
    assert "Signature expired" in message


def fetch_role_credentials(emulator, thing_name):
    """What AWS's guide does with curl: GET /role-aliases/<alias>/credentials over mutual TLS."""
    directory = emulator["dir"]
    context = ssl.create_default_context(cafile=str(directory / "ca.pem"))
    context.load_cert_chain(str(directory / "device.pem"), str(directory / "device.key"))
    conn = http.client.HTTPSConnection("localhost", emulator["credentials_port"], context=context, timeout=20)
    try:
        conn.request("GET", f"/role-aliases/{emulator['role_alias']}/credentials", headers={"x-amzn-iot-thingname": thing_name})
        response = conn.getresponse()
        return response.status, response.getheader("x-amzn-ErrorType"), json.loads(response.read())
    finally:
        conn.close()


def test_credentials_provider_credentials_sign_boto3_requests(emulator):
    status, _, body = fetch_role_credentials(emulator, emulator["sample_thing"])
    assert status == 200, body
    credentials = body["credentials"]
    assert credentials["accessKeyId"].startswith("ASIA")
    expiration = datetime.datetime.strptime(credentials["expiration"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)
    assert datetime.timedelta(minutes=59) < expiration - datetime.datetime.now(datetime.timezone.utc) <= datetime.timedelta(hours=1)
    iot = boto3.Session(
        aws_access_key_id=credentials["accessKeyId"],
        aws_secret_access_key=credentials["secretAccessKey"],
        aws_session_token=credentials["sessionToken"],
        region_name=emulator["region"],
    ).client("iot", endpoint_url=emulator["control_plane"], verify=str(emulator["dir"] / "ca.pem"), config=NO_RETRIES)
    assert iot.describe_thing(thingName=emulator["sample_thing"])["thingName"] == emulator["sample_thing"]

    status, error_type, body = fetch_role_credentials(emulator, "someone-else")
    assert (status, error_type, body) == (403, "AccessDeniedException", {"message": "Invalid thing name passed"})


def test_the_written_files(emulator):
    directory = emulator["dir"]
    for secret in ["claim.key", "device.key", "aws-credentials"]:
        assert (directory / secret).stat().st_mode & 0o777 == 0o600, secret
    readme = (directory / "README.md").read_text()
    for name in ["ca.pem", "claim-ca.pem", "device-ca.pem", "aws-config", "templates.json", "device-policy.json", "role-alias.json"]:
        assert (directory / name).exists() and f"`{name}`" in readme, name
    assert "aws iot create-provisioning-claim" in readme and "curl --cert" in readme
    templates = json.loads((directory / "templates.json").read_text())
    assert templates[0]["templateName"] == emulator["template"]
    assert templates[0]["parameters"] == {"SerialNumber": {"Type": "String"}}
    policy = json.loads((directory / "device-policy.json").read_text())["policyDocument"]
    alias = json.loads((directory / "role-alias.json").read_text())
    assert any(s["Action"] == "iot:AssumeRoleWithCertificate" and s["Resource"] == alias["roleAliasArn"] for s in policy["Statement"])
