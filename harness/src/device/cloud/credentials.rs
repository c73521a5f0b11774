//! The credentials provider: temporary AWS credentials for the device certificate, through a role
//! alias (what a provisioned device does to call AWS services).

use serde_json::Value;

use super::{tls_config, CloudEndpoint, CloudError, MqttIdentity};

/// Fetches temporary AWS credentials from the credentials provider at `endpoint` (`host:port`) with the
/// device certificate, naming the thing in `x-amzn-iot-thingname`. Returns the `credentials` object;
/// a refusal is [`CloudError::Rejected`] with AWS's status, error type (`x-amzn-ErrorType`) and message.
pub async fn fetch_role_credentials(
    endpoint: &CloudEndpoint,
    identity: MqttIdentity,
    role_alias: &str,
    thing_name: &str,
) -> Result<Value, CloudError> {
    let tls = tls_config(endpoint, identity)?;
    let client = reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .timeout(endpoint.timeout)
        .build()
        .map_err(|e| CloudError::Config(e.to_string()))?;
    let url = format!(
        "https://{}:{}/role-aliases/{role_alias}/credentials",
        endpoint.host, endpoint.port
    );
    let response = client
        .get(url)
        .header("x-amzn-iot-thingname", thing_name)
        .send()
        .await
        .map_err(|e| CloudError::Connection(e.to_string()))?;
    let status = response.status().as_u16();
    // AWS names the error in `x-amzn-ErrorType` (`AccessDeniedException`, ...), possibly followed by
    // `:` and a namespace.
    let error_type = response
        .headers()
        .get("x-amzn-ErrorType")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(':').next())
        .unwrap_or("")
        .to_owned();
    let body: Value = response
        .bytes()
        .await
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(Value::Null);
    if status != 200 {
        return Err(CloudError::Rejected {
            topic: "credentials provider".into(),
            status_code: u32::from(status),
            error_code: error_type,
            error_message: body
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned(),
        });
    }
    let credentials = body
        .get("credentials")
        .cloned()
        .ok_or_else(|| CloudError::Malformed("no credentials".into()))?;
    for f in [
        "accessKeyId",
        "secretAccessKey",
        "sessionToken",
        "expiration",
    ] {
        if credentials.get(f).and_then(Value::as_str).is_none() {
            return Err(CloudError::Malformed(format!("credentials without {f}")));
        }
    }
    Ok(credentials)
}
