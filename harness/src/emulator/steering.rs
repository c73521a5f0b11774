//! How tests steer a running [`Emulator`]: bearer tokens and AWS credentials, templates and claim
//! validity, the clock, scripted faults, the thing registry, role aliases, policies, pre-provisioning
//! hooks, the MQTT endpoint's availability; and what they read back (claims issued, the request log,
//! things, certificate statuses, MQTT events).

use std::collections::VecDeque;
use std::time::Duration;

use super::state::random_token;
use super::{
    credentials, mqtt, random_credentials, Api, CertificateRecord, Emulator, Fault,
    IssuedCertificate, KnownCredentials, PreProvisioningHook, RequestRecord, Template,
    TemporaryCredentials, Thing,
};

impl Emulator {
    /// Creates a bearer token the backend contract accepts.
    pub fn issue_bearer_token(&self) -> String {
        let token = random_token("tok_", 32);
        self.shared.lock().bearer_tokens.insert(token.clone());
        token
    }

    /// Makes a bearer token stop working (as when a session expires).
    pub fn revoke_bearer_token(&self, token: &str) {
        self.shared.lock().bearer_tokens.remove(token);
    }

    /// Creates temporary AWS credentials the SigV4 API accepts (as Cognito would).
    pub fn issue_credentials(&self) -> TemporaryCredentials {
        let creds = random_credentials();
        self.shared.lock().credentials.insert(
            creds.access_key_id.clone(),
            KnownCredentials {
                secret_access_key: creds.secret_access_key.clone(),
                session_token: Some(creds.session_token.clone()),
            },
        );
        creds
    }

    /// Creates temporary AWS credentials that expire `lifetime` from now on the emulator's clock (as
    /// Cognito's or the credentials provider's do): after that, requests signed with them get 403
    /// `ExpiredTokenException`.
    pub fn issue_credentials_valid_for(&self, lifetime: Duration) -> TemporaryCredentials {
        let creds = self.issue_credentials();
        let expires = self.shared.now() + lifetime;
        self.shared
            .lock()
            .credential_expiry
            .insert(creds.access_key_id.clone(), expires);
        creds
    }

    /// Creates a long-term access key (an IAM user's `AKIA…` key and secret, no session token) the
    /// SigV4 API accepts: what `aws configure` and boto3 are given.
    pub fn issue_access_key(&self) -> (String, zeroize::Zeroizing<String>) {
        let access_key_id = random_token("AKIA", 16);
        let secret = random_token("", 40);
        self.shared.lock().credentials.insert(
            access_key_id.clone(),
            KnownCredentials {
                secret_access_key: secret.clone(),
                session_token: None,
            },
        );
        (access_key_id, zeroize::Zeroizing::new(secret))
    }

    /// Makes AWS credentials stop working (as when they expire).
    pub fn revoke_credentials(&self, access_key_id: &str) {
        self.shared.lock().credentials.remove(access_key_id);
    }

    /// Adds or replaces a template.
    pub fn put_template(&self, template: Template) {
        self.shared
            .lock()
            .templates
            .insert(template.name.clone(), template);
    }

    /// Enables or disables a template.
    pub fn set_template_enabled(&self, name: &str, enabled: bool) {
        if let Some(t) = self.shared.lock().templates.get_mut(name) {
            t.enabled = enabled;
        }
    }

    /// Sets how long new claims are valid.
    pub fn set_claim_validity(&self, validity: Duration) {
        self.shared.lock().claim_validity = validity;
    }

    /// Backdates new claims: their validity starts this long before the request.
    pub fn set_claim_backdate(&self, backdate: Duration) {
        self.shared.lock().claim_backdate = backdate;
    }

    /// Moves the emulator's clock (its `Date` headers, claim validity, SigV4 checks).
    pub fn set_clock_offset_secs(&self, offset: i64) {
        self.shared.lock().clock_offset_secs = offset;
    }

    /// Queues a fault for the next request to `api`.
    pub fn script(&self, api: Api, fault: Fault) {
        self.shared
            .lock()
            .faults
            .entry(api)
            .or_default()
            .push_back(fault);
    }

    /// Faults still queued for `api`.
    pub fn pending_faults(&self, api: Api) -> usize {
        self.shared.lock().faults.get(&api).map_or(0, VecDeque::len)
    }

    /// Claims issued so far, oldest first.
    pub fn issued_claims(&self) -> Vec<IssuedCertificate> {
        self.shared.lock().claims.clone()
    }

    /// Every request answered so far.
    pub fn request_log(&self) -> Vec<RequestRecord> {
        self.shared.lock().log.clone()
    }

    /// Registers a thing with an attached certificate (until the MQTT provisioning flow does it).
    pub fn register_thing(
        &self,
        thing: &str,
        certificate_id: &str,
        certificate_pem: &str,
        status: &str,
    ) {
        let now = self.shared.now();
        let mut state = self.shared.lock();
        state.certificates.insert(
            certificate_id.to_owned(),
            CertificateRecord::new(status, certificate_pem, now),
        );
        let entry = state
            .things
            .entry(thing.to_owned())
            .or_insert_with(|| Thing {
                name: thing.to_owned(),
                ..Thing::default()
            });
        if !entry.principals.iter().any(|p| p == certificate_id) {
            entry.principals.push(certificate_id.to_owned());
        }
    }

    /// Creates a role alias for the credentials provider. AWS allows credential durations of 900 to
    /// 43200 seconds; anything else is refused.
    pub fn create_role_alias(
        &self,
        alias: &str,
        role_arn: &str,
        duration_secs: u64,
    ) -> Result<(), String> {
        if !(900..=43_200).contains(&duration_secs) {
            return Err(format!(
                "credentialDurationSeconds must be between 900 and 43200, not {duration_secs}"
            ));
        }
        self.shared.lock().role_aliases.insert(
            alias.to_owned(),
            credentials::RoleAlias {
                role_arn: role_arn.to_owned(),
                credential_duration: Duration::from_secs(duration_secs),
            },
        );
        Ok(())
    }

    /// Creates or replaces an IoT policy (templates attach policies by name).
    pub fn put_policy(&self, name: &str, document: serde_json::Value) {
        self.shared
            .lock()
            .policies
            .insert(name.to_owned(), document);
    }

    /// Gives `template` a pre-provisioning hook (`None` removes it).
    pub fn set_pre_provisioning_hook(&self, template: &str, hook: Option<PreProvisioningHook>) {
        let mut state = self.shared.lock();
        match hook {
            Some(h) => state.hooks.insert(template.to_owned(), h),
            None => state.hooks.remove(template),
        };
    }

    /// How long a pre-provisioning hook may take (AWS: 5 seconds).
    pub fn set_hook_timeout(&self, timeout: Duration) {
        self.shared.lock().hook_timeout = timeout;
    }

    /// Sets how long a claim connection may take to obtain its certificate (AWS: 5 minutes).
    pub fn set_claim_connection_window(&self, window: Duration) {
        self.shared.lock().claim_connection_window = window;
    }

    /// Takes the MQTT endpoint down (connections are dropped right after TLS) or brings it back.
    pub fn set_mqtt_down(&self, down: bool) {
        let mut state = self.shared.lock();
        state.mqtt_down = down;
        if !down {
            state.down_at_claim_request = false;
        }
        drop(state);
        if down {
            for client in self.shared.broker().clients.values() {
                client.close();
            }
        }
    }

    /// At the next request a device publishes while connected with a claim, the broker drops that
    /// connection (no PUBACK, no answer) and goes down as [`set_mqtt_down`](Self::set_mqtt_down) does:
    /// the broker lost in the middle of fleet provisioning, at a point defined by the protocol.
    pub fn drop_mqtt_at_next_claim_request(&self) {
        self.shared.lock().down_at_claim_request = true;
    }

    /// Creates a thing group (templates may only add things to existing groups).
    pub fn create_thing_group(&self, name: &str) {
        self.shared.lock().thing_groups.insert(name.to_owned());
    }

    /// A thing in the registry.
    pub fn thing(&self, name: &str) -> Option<Thing> {
        self.shared.lock().things.get(name).cloned()
    }

    /// A certificate's status in the registry (`None`: no such certificate).
    pub fn certificate_status(&self, certificate_id: &str) -> Option<String> {
        self.shared
            .lock()
            .certificates
            .get(certificate_id)
            .map(|c| c.status.clone())
    }

    /// Sets how long certificate ownership tokens live (AWS: one hour).
    pub fn set_ownership_token_lifetime(&self, lifetime: Duration) {
        self.shared.lock().ownership_token_lifetime = lifetime;
    }

    /// MQTT connections and provisioning answers so far.
    pub fn mqtt_events(&self) -> Vec<mqtt::MqttEvent> {
        self.shared.mqtt_events()
    }

    /// Sets a thing attribute.
    pub fn set_thing_attribute(&self, thing: &str, key: &str, value: &str) {
        if let Some(t) = self.shared.lock().things.get_mut(thing) {
            t.attributes.insert(key.to_owned(), value.to_owned());
        }
    }
}
