//! The binding, end to end: the SDK's `BackendClaimSource` → the backend → the emulator's
//! CreateProvisioningClaim (SigV4) → the simulated device → RegisterThing → the emulator calls the
//! backend's hook → the thing registered with the overrides → confirmed. And each way a claim must not
//! get through: another serial, twice, revoked, expired.

mod support;

use std::sync::Arc;

use async_trait::async_trait;
use claimlink_core::{
    BackendClaimSource, Claim, ClaimError, ClaimRequest, ClaimSource, NoListener, ProvisionError,
    ThingDescription, ThingDirectory, ThingName,
};
use claimlink_harness::testing::{self, lab_wifi, SimDeviceBuilder};
use serde_json::Value;
use support::{Rig, INSTALLER, SITE};

/// A claim source that asks the backend for `hint`'s claim whatever the app asked, keeps the first
/// claim and hands it out again, and can revoke each claim before handing it out.
struct Scripted {
    inner: Arc<BackendClaimSource>,
    hint: Option<String>,
    reuse: bool,
    revoke_with: Option<(String, String)>,
    kept: tokio::sync::Mutex<Option<Claim>>,
}

impl std::fmt::Debug for Scripted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Scripted")
    }
}

impl Scripted {
    fn new(inner: Arc<BackendClaimSource>) -> Self {
        Self {
            inner,
            hint: None,
            reuse: false,
            revoke_with: None,
            kept: tokio::sync::Mutex::new(None),
        }
    }
}

#[async_trait]
impl ClaimSource for Scripted {
    async fn request_claim(&self, request: &ClaimRequest) -> Result<Claim, ClaimError> {
        let mut kept = self.kept.lock().await;
        if self.reuse {
            if let Some(c) = kept.as_ref() {
                return Ok(c.clone());
            }
        }
        let mut request = request.clone();
        if let Some(h) = &self.hint {
            request.device_hint = Some(h.clone());
        }
        let claim = self.inner.request_claim(&request).await?;
        if let Some((base, token)) = &self.revoke_with {
            let r = support::http_client()
                .post(format!(
                    "{base}/v1/claims/{}/revoke",
                    claim.certificate_id()
                ))
                .bearer_auth(token)
                .send()
                .await
                .expect("revoke answers");
            assert_eq!(r.status(), 200, "revoked");
        }
        *kept = Some(claim.clone());
        Ok(claim)
    }
}

#[async_trait]
impl ThingDirectory for Scripted {
    async fn describe_thing(
        &self,
        thing: &ThingName,
    ) -> Result<Option<ThingDescription>, ClaimError> {
        self.inner.describe_thing(thing).await
    }
}

/// Provisions a fresh simulated device (`index`) with `source`, the device sending `serial`.
async fn provision(
    rig: &Rig,
    source: Arc<Scripted>,
    index: u8,
    serial: &str,
) -> Result<claimlink_core::ProvisionedDevice, ProvisionError> {
    let provisioner = rig.provisioner(source);
    let (_device, link) = SimDeviceBuilder::in_world(&rig.world, index).build();
    let session = testing::connect(&provisioner, link).await;
    session
        .provision(
            &lab_wifi(),
            &testing::expected_thing_options(serial),
            &NoListener,
        )
        .await
}

fn assert_access_denied(result: Result<claimlink_core::ProvisionedDevice, ProvisionError>) {
    match result {
        Ok(done) => panic!("provisioned despite the binding: {done:?}"),
        Err(ProvisionError::CloudRejected {
            status_code,
            error_code,
            error_message,
            thing_name,
            ..
        }) => {
            assert_eq!(
                (status_code, error_code.as_str()),
                (403, "ACCESS_DENIED"),
                "{error_message}"
            );
            assert_eq!(thing_name, None, "nothing registered");
        }
        Err(e) => panic!("expected AWS's ACCESS_DENIED, got {e:?}"),
    }
}

fn actions(audit: &[Value]) -> Vec<(String, String)> {
    audit
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap_or("").to_owned(),
                e["outcome"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_device_provisions_through_the_backend_and_is_confirmed() {
    let rig = Rig::start().await;
    let source = Arc::new(Scripted::new(rig.source("installer-1", &[INSTALLER])));
    let done = provision(&rig, source, 1, "SN-E2E-1")
        .await
        .expect("provisioned");
    assert_eq!(done.thing_name, "SN-E2E-1");
    let thing = rig
        .world
        .emulator
        .thing("SN-E2E-1")
        .expect("the thing is registered");
    assert_eq!(
        thing.attributes.get("installer").map(String::as_str),
        Some("installer-1")
    );
    assert_eq!(thing.attributes.get("site").map(String::as_str), Some(SITE));
    assert_eq!(
        thing.attributes.get("serial").map(String::as_str),
        Some("SN-E2E-1")
    );
    // The SDK confirmed with the backend, which marked the claim CONFIRMED.
    let claim_id = rig.world.emulator.issued_claims()[0].certificate_id.clone();
    let record = rig
        .state
        .store()
        .claim(&claim_id)
        .await
        .unwrap()
        .expect("record");
    assert_eq!(record.status, claimlink_backend::ClaimStatus::Confirmed);
    assert_eq!(
        (record.serial.as_str(), record.installer.as_str()),
        ("SN-E2E-1", "installer-1")
    );
    let audit = rig.audit().await;
    assert_eq!(
        actions(&audit),
        [
            ("claim.issue", "ok"),
            ("hook.allow", "ok"),
            ("thing.confirm", "ok")
        ]
        .map(|(a, o)| (a.to_owned(), o.to_owned()))
    );
    assert!(audit
        .iter()
        .all(|e| e["serial"] == "SN-E2E-1" && e["site"] == SITE));
}

#[tokio::test]
async fn a_claim_used_with_another_serial_is_denied() {
    let rig = Rig::start().await;
    let mut source = Scripted::new(rig.source("installer-1", &[INSTALLER]));
    source.hint = Some("SN-ISSUED-FOR".into());
    assert_access_denied(provision(&rig, Arc::new(source), 2, "SN-OTHER").await);
    assert!(rig.world.emulator.thing("SN-OTHER").is_none());
    let audit = rig.audit().await;
    let denial = audit
        .iter()
        .find(|e| e["action"] == "hook.deny")
        .expect("the denial is audited");
    assert!(
        denial["detail"].as_str().unwrap().contains("serial"),
        "{denial}"
    );
    assert_eq!(denial["serial"], "SN-ISSUED-FOR");
    // Still ISSUED: a refused attempt does not use the claim up.
    let claim_id = rig.world.emulator.issued_claims()[0].certificate_id.clone();
    let record = rig.state.store().claim(&claim_id).await.unwrap().unwrap();
    assert_eq!(record.status, claimlink_backend::ClaimStatus::Issued);
}

#[tokio::test]
async fn a_claim_used_twice_is_denied_the_second_time() {
    let rig = Rig::start().await;
    let mut source = Scripted::new(rig.source("installer-1", &[INSTALLER]));
    source.reuse = true;
    let source = Arc::new(source);
    provision(&rig, source.clone(), 3, "SN-TWICE")
        .await
        .expect("the first use provisions");
    assert_access_denied(provision(&rig, source, 4, "SN-TWICE").await);
    assert_eq!(
        rig.world.emulator.issued_claims().len(),
        1,
        "one claim, used twice"
    );
}

#[tokio::test]
async fn a_revoked_claim_is_denied() {
    let rig = Rig::start().await;
    let mut source = Scripted::new(rig.source("installer-1", &[INSTALLER]));
    source.revoke_with = Some((
        rig.base_url(),
        rig.issuer.token("installer-1", &[INSTALLER]),
    ));
    assert_access_denied(provision(&rig, Arc::new(source), 5, "SN-REVOKED").await);
    let claim_id = rig.world.emulator.issued_claims()[0].certificate_id.clone();
    let record = rig.state.store().claim(&claim_id).await.unwrap().unwrap();
    assert_eq!(record.status, claimlink_backend::ClaimStatus::Revoked);
}

#[tokio::test]
async fn an_expired_claim_is_denied_by_the_hook() {
    let rig = Rig::start().await;
    // AWS's claim was valid for a minute, two minutes ago.
    rig.world
        .emulator
        .set_claim_validity(std::time::Duration::from_secs(60));
    rig.world
        .emulator
        .set_claim_backdate(std::time::Duration::from_secs(120));
    let token = rig.issuer.token("installer-1", &[INSTALLER]);
    let answer = rig.claim(&token, "SN-EXPIRED").await;
    assert_eq!(answer.status(), 200);
    let body: Value = answer.json().await.unwrap();
    assert!(body["expiration"].as_i64().unwrap() < support::now());
    let id = body["certificateId"].as_str().unwrap();
    let hook = rig
        .call(
            reqwest::Method::POST,
            "/v1/hooks/pre-provisioning",
            None,
            Some(rig.hook_input(id, "SN-EXPIRED")),
        )
        .await;
    assert_eq!(hook.status(), 200);
    assert_eq!(
        hook.json::<Value>().await.unwrap(),
        serde_json::json!({"allowProvisioning": false})
    );
    let audit = rig.audit().await;
    assert!(
        audit
            .iter()
            .any(|e| e["action"] == "hook.deny" && e["detail"] == "the claim has expired"),
        "{audit:?}"
    );
}

#[tokio::test]
async fn of_two_concurrent_hook_calls_for_one_claim_exactly_one_is_allowed() {
    let rig = Rig::start().await;
    let token = rig.issuer.token("installer-1", &[INSTALLER]);
    for round in 0..5 {
        let serial = format!("SN-RACE-{round}");
        let body: Value = rig.claim(&token, &serial).await.json().await.unwrap();
        let id = body["certificateId"].as_str().unwrap().to_owned();
        let input = rig.hook_input(&id, &serial);
        let calls = (0..2).map(|_| {
            rig.call(
                reqwest::Method::POST,
                "/v1/hooks/pre-provisioning",
                None,
                Some(input.clone()),
            )
        });
        let answers = futures_join(calls).await;
        let mut allowed = 0;
        for a in answers {
            let v: Value = a.json().await.unwrap();
            if v["allowProvisioning"] == true {
                allowed += 1;
                assert_eq!(v["parameterOverrides"]["ThingName"], serial.as_str());
                assert_eq!(v["parameterOverrides"]["Installer"], "installer-1");
                assert_eq!(v["parameterOverrides"]["Site"], SITE);
            }
        }
        assert_eq!(allowed, 1, "round {round}");
    }
}

/// Awaits every future concurrently (both requests in flight at once).
async fn futures_join<F: std::future::Future>(futures: impl Iterator<Item = F>) -> Vec<F::Output> {
    let handles: Vec<_> = futures.map(Box::pin).collect();
    let mut outputs = Vec::new();
    let mut pending: Vec<_> = handles.into_iter().map(Some).collect();
    let mut results: Vec<Option<F::Output>> = pending.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut done = true;
        for (i, f) in pending.iter_mut().enumerate() {
            if let Some(fut) = f {
                match fut.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => {
                        results[i] = Some(v);
                        *f = None;
                    }
                    std::task::Poll::Pending => done = false,
                }
            }
        }
        if done {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    outputs.extend(results.into_iter().flatten());
    outputs
}

#[tokio::test]
async fn a_claim_for_an_unknown_certificate_or_without_a_serial_is_denied() {
    let rig = Rig::start().await;
    let hook = |input| {
        rig.call(
            reqwest::Method::POST,
            "/v1/hooks/pre-provisioning",
            None,
            Some(input),
        )
    };
    let v: Value = hook(rig.hook_input(&"a".repeat(64), "SN-1"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["allowProvisioning"], false);
    let mut no_serial = rig.hook_input(&"a".repeat(64), "SN-1");
    no_serial["parameters"] = serde_json::json!({});
    let v: Value = hook(no_serial).await.json().await.unwrap();
    assert_eq!(v["allowProvisioning"], false);
    let garbage = hook(serde_json::json!([1, 2])).await;
    assert_eq!(garbage.status(), 400);
}
