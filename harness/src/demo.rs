//! `claimlink-harness demo`: the emulator, and a claim through each source, with the time left.

use std::sync::Arc;
use std::time::Duration;

use claimlink::claim::{
    AwsClaimSource, BackendClaimSource, ClaimRequest, ClaimSource, TemplateName,
};
use claimlink::time::{Clock, SkewedClock, SystemClock};

use crate::emulator::{Emulator, EmulatorConfig};
use crate::providers::{CredentialsSequence, TokenSequence};

/// Options of `demo`.
#[derive(Clone, Debug)]
pub struct DemoOptions {
    /// The phone's clock error, in seconds.
    pub clock_skew_secs: i64,
    /// How long claims are valid.
    pub claim_validity: Duration,
    /// The template to ask for.
    pub template: String,
}

impl Default for DemoOptions {
    fn default() -> Self {
        Self {
            clock_skew_secs: 0,
            claim_validity: Duration::from_secs(300),
            template: "claimlink-demo".to_owned(),
        }
    }
}

/// One line of the demo's result.
#[derive(Clone, Debug)]
pub struct DemoClaim {
    /// Which source it came through.
    pub source: &'static str,
    /// The claim certificate id.
    pub certificate_id: String,
    /// Seconds left on the claim when it arrived.
    pub seconds_left: f64,
    /// Server minus phone clock, as measured.
    pub clock_skew_secs: Option<i64>,
}

/// Starts the emulator and obtains one claim through each source.
pub async fn run(options: &DemoOptions) -> Result<Vec<DemoClaim>, String> {
    let emulator = Emulator::start(EmulatorConfig {
        claim_validity: options.claim_validity,
        ..EmulatorConfig::default()
    })
    .await
    .map_err(|e| format!("the emulator did not start: {e}"))?;
    let http = emulator.http_config();
    let clock: Arc<dyn Clock> = if options.clock_skew_secs == 0 {
        Arc::new(SystemClock)
    } else {
        Arc::new(SkewedClock::new(options.clock_skew_secs))
    };
    let tokens = Arc::new(TokenSequence::new(vec![emulator.issue_bearer_token()]));
    let backend = BackendClaimSource::builder(emulator.base_url(), tokens)
        .http_config(http.clone())
        .clock(clock.clone())
        .build()
        .map_err(|e| e.to_string())?;
    let credentials = Arc::new(CredentialsSequence::new(vec![emulator.issue_credentials()]));
    let aws = AwsClaimSource::builder(emulator.region(), credentials)
        .endpoint_url(emulator.base_url())
        .http_config(http)
        .clock(clock)
        .build()
        .map_err(|e| e.to_string())?;
    let template = TemplateName::new(options.template.clone()).map_err(|e| e.to_string())?;
    let request = ClaimRequest::new(template);
    let sources: [(&'static str, &dyn ClaimSource); 2] =
        [("app backend", &backend), ("AWS direct (SigV4)", &aws)];
    let mut out = Vec::new();
    for (name, source) in sources {
        let claim = source
            .request_claim(&request)
            .await
            .map_err(|e| format!("{name}: {e}"))?;
        out.push(DemoClaim {
            source: name,
            certificate_id: claim.certificate_id().to_owned(),
            seconds_left: claim.deadline().remaining().as_secs_f64(),
            clock_skew_secs: claim.deadline().clock_skew_secs(),
        });
    }
    Ok(out)
}
