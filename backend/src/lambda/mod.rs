//! The backend on AWS Lambda (`backend/deploy/template.yaml`, docs/backend.md): the same binary,
//! started by Lambda as a custom runtime's `bootstrap`, runs one of two functions, chosen by
//! `CLAIMLINK_LAMBDA` (the template sets it):
//! - `hook`: the pre-provisioning hook, with `lambda_runtime`: AWS IoT's hook input in ([`HookInput`]),
//!   [`decide_hook`]'s answer out (`allowProvisioning`, `parameterOverrides`);
//! - `api`: the installers' API, with `lambda_http`: API Gateway (HTTP API, payload 2.0) events through
//!   the same [`router`] as `claimlink-backend serve`.
//!
//! Configuration on Lambda ([`lambda_config`]): the TOML of `claimlink-backend serve --config` kept in
//! an SSM parameter (`CLAIMLINK_CONFIG_PARAMETER`), the `CLAIMLINK_*` environment overrides, and the
//! database URL read from an AWS Secrets Manager secret (`CLAIMLINK_DATABASE_SECRET_ARN`) at start, so
//! that the connection string is in neither the template nor the function's environment.

mod aws_json;

use std::convert::Infallible;

use lambda_runtime::{service_fn, LambdaEvent};
use zeroize::Zeroizing;

use crate::{decide_hook, router, AppState, BackendError, Config, HookInput, HookOutput};

pub use aws_json::database_url_from_secret;

/// Which function Lambda started this binary as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LambdaFunction {
    /// The pre-provisioning hook (`CLAIMLINK_LAMBDA=hook`).
    Hook,
    /// The installers' API behind API Gateway (`CLAIMLINK_LAMBDA=api`).
    Api,
}

impl LambdaFunction {
    /// `None` when this process was not started by Lambda (no `AWS_LAMBDA_RUNTIME_API`); the function
    /// `CLAIMLINK_LAMBDA` names otherwise, an error when it names none.
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<Option<Self>, BackendError> {
        if var("AWS_LAMBDA_RUNTIME_API").is_none_or(|v| v.is_empty()) {
            return Ok(None);
        }
        match var("CLAIMLINK_LAMBDA").as_deref() {
            Some("hook") => Ok(Some(Self::Hook)),
            Some("api") => Ok(Some(Self::Api)),
            other => Err(BackendError::Config(format!(
                "started by AWS Lambda (AWS_LAMBDA_RUNTIME_API is set) with CLAIMLINK_LAMBDA={}: \
                 set it to `hook` (the pre-provisioning hook) or `api` (the HTTP API)",
                other.unwrap_or("<unset>")
            ))),
        }
    }
}

/// Runs `function` until Lambda stops the process: the configuration ([`lambda_config`]), the state,
/// then the Runtime API loop.
pub async fn run(function: LambdaFunction) -> Result<(), BackendError> {
    let config = lambda_config(|k| std::env::var(k).ok()).await?;
    let state = AppState::new(config).await?;
    tracing::info!(?function, database = ?state.store().dialect(), "serving on AWS Lambda");
    match function {
        LambdaFunction::Hook => run_hook(state).await,
        LambdaFunction::Api => run_api(state).await,
    }
}

/// The pre-provisioning hook on the Lambda Runtime API. An event that is not AWS's hook input is
/// answered with an invocation error (AWS IoT then refuses the registration with `ACCESS_DENIED`);
/// every decision, a refusal included, is a response.
pub async fn run_hook(state: AppState) -> Result<(), BackendError> {
    lambda_runtime::run(service_fn(move |event: LambdaEvent<HookInput>| {
        let state = state.clone();
        async move { Ok::<HookOutput, Infallible>(decide_hook(&state, event.payload).await) }
    }))
    .await
    .map_err(|e| BackendError::Server(format!("Lambda runtime: {e}")))
}

/// The installers' API on the Lambda Runtime API: each API Gateway event becomes a request to
/// [`router`], its response the event's answer — except the HTTP hook route, which is not served
/// there ([`without_http_hook`]).
pub async fn run_api(state: AppState) -> Result<(), BackendError> {
    lambda_http::run(without_http_hook(router(state)))
        .await
        .map_err(|e| BackendError::Server(format!("Lambda runtime: {e}")))
}

/// The HTTP hook's path in [`router`] (for servers and the emulator).
const HTTP_HOOK_PATH: &str = "/v1/hooks/pre-provisioning";

/// `app` answering 404 on the HTTP hook's path, however it is spelled. On Lambda, AWS IoT calls the
/// hook function itself; the same route behind the public API Gateway would let anyone who learnt a
/// claim's id and serial spend it before its device registers.
pub fn without_http_hook(app: axum::Router) -> axum::Router {
    app.layer(axum::middleware::from_fn(refuse_http_hook))
}

async fn refuse_http_hook(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let path = percent_encoding::percent_decode_str(request.uri().path()).decode_utf8_lossy();
    if path
        .trim_end_matches('/')
        .eq_ignore_ascii_case(HTTP_HOOK_PATH)
    {
        return crate::api::error(
            http::StatusCode::NOT_FOUND,
            "NotFound",
            "no such route (the pre-provisioning hook is its own Lambda function)",
        );
    }
    next.run(request).await
}

/// The configuration of a Lambda function, read through `var` (the environment):
/// 1. the TOML in the SSM parameter `CLAIMLINK_CONFIG_PARAMETER` (a `SecureString` is decrypted), or
///    the defaults without it;
/// 2. the `CLAIMLINK_*` overrides of [`Config::apply_env`], and `CLAIMLINK_OIDC_ROLES_CLAIM`,
///    `CLAIMLINK_THING_NAME_PREFIX`;
/// 3. the database URL from the Secrets Manager secret `CLAIMLINK_DATABASE_SECRET_ARN`
///    ([`database_url_from_secret`]), which wins over any other.
pub async fn lambda_config(var: impl Fn(&str) -> Option<String>) -> Result<Config, BackendError> {
    let mut config = Config::default();
    config.apply_env(&var)?;
    let aws = aws_json::AwsJsonClient::new(&config, &var)?;
    if let Some(name) = var("CLAIMLINK_CONFIG_PARAMETER").filter(|v| !v.is_empty()) {
        let text = aws.ssm_parameter(&name).await?;
        config = toml::from_str(&text)
            .map_err(|e| BackendError::Config(format!("SSM parameter {name}: {e}")))?;
        config.apply_env(&var)?;
    }
    if let Some(v) = var("CLAIMLINK_OIDC_ROLES_CLAIM") {
        config.oidc.roles_claim = v;
    }
    if let Some(v) = var("CLAIMLINK_THING_NAME_PREFIX") {
        config.claims.thing_name_prefix = v;
    }
    if let Some(arn) = var("CLAIMLINK_DATABASE_SECRET_ARN").filter(|v| !v.is_empty()) {
        let secret: Zeroizing<String> = aws.secret_string(&arn).await?;
        let url = database_url_from_secret(&secret)
            .map_err(|why| BackendError::Config(format!("secret {arn}: {why}")))?;
        config.database_url = url.as_str().to_owned();
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: std::collections::BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn the_function_is_chosen_only_when_lambda_started_the_process() {
        assert_eq!(
            LambdaFunction::from_env(env(&[("CLAIMLINK_LAMBDA", "hook")])).ok(),
            Some(None)
        );
        let hook = env(&[
            ("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9001"),
            ("CLAIMLINK_LAMBDA", "hook"),
        ]);
        assert_eq!(
            LambdaFunction::from_env(hook).ok(),
            Some(Some(LambdaFunction::Hook))
        );
        let api = env(&[
            ("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9001"),
            ("CLAIMLINK_LAMBDA", "api"),
        ]);
        assert_eq!(
            LambdaFunction::from_env(api).ok(),
            Some(Some(LambdaFunction::Api))
        );
        for bad in [None, Some("Hook"), Some("serve"), Some("")] {
            let mut pairs = vec![("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9001")];
            if let Some(b) = bad {
                pairs.push(("CLAIMLINK_LAMBDA", b));
            }
            let err = LambdaFunction::from_env(env(&pairs)).expect_err("no function named");
            assert!(err.to_string().contains("CLAIMLINK_LAMBDA"), "{err}");
        }
    }
}
