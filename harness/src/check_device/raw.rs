//! What the SDK never sends, for the hostile cases: `aws-claim` messages encoded with the internal
//! protobuf types and sent through the session's cipher, and an HTTP body over ESP-IDF's 4096-byte
//! limit.

use claimlink_core::internal::{endpoint, proto, DeviceSession};
use claimlink_core::CloudStage;
use prost::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use proto::aws_claim_payload::Payload as P;
use proto::{AwsClaimMsgType as T, ClaimTransferError as E};

/// A device's answer to one raw `aws-claim` message.
pub(super) struct ClaimAnswer {
    /// `status` (Success or InvalidArgument).
    pub status: proto::Status,
    /// `error`.
    pub error: E,
    /// The answer's payload.
    pub payload: Option<P>,
}

impl ClaimAnswer {
    /// Whether the device accepted the message (`Success`, no error).
    pub fn accepted(&self) -> bool {
        self.status == proto::Status::Success && self.error == E::None
    }

    /// `committed` of a begin or chunk answer.
    pub fn committed(&self) -> bool {
        match &self.payload {
            Some(P::RespBegin(r)) => r.committed,
            Some(P::RespChunk(r)) => r.committed,
            _ => false,
        }
    }

    /// `max_bundle_length` of a begin answer.
    pub fn max_bundle_length(&self) -> Option<u32> {
        match &self.payload {
            Some(P::RespBegin(r)) => Some(r.max_bundle_length),
            _ => None,
        }
    }

    /// For a case's line: `InvalidArgument / DigestMismatch`.
    pub fn describe(&self) -> String {
        format!("{:?} / {:?}", self.status, self.error)
    }
}

/// Sends one raw `aws-claim` message (a request the session encrypts) and decodes the answer.
pub(super) async fn claim_message(
    session: &DeviceSession,
    msg: T,
    payload: P,
) -> Result<ClaimAnswer, String> {
    let request = zeroize::Zeroizing::new(
        proto::AwsClaimPayload {
            msg: msg as i32,
            status: 0,
            error: 0,
            payload: Some(payload),
        }
        .encode_to_vec(),
    );
    let answer = session
        .request(endpoint::AWS_CLAIM, &request)
        .await
        .map_err(|e| format!("aws-claim exchange failed: {e}"))?;
    let answer = proto::AwsClaimPayload::decode(answer.as_slice())
        .map_err(|e| format!("aws-claim answer does not decode: {e}"))?;
    Ok(ClaimAnswer {
        status: proto::Status::try_from(answer.status)
            .map_err(|_| format!("aws-claim answer has unknown status {}", answer.status))?,
        error: E::try_from(answer.error)
            .map_err(|_| format!("aws-claim answer has unknown error {}", answer.error))?,
        payload: answer.payload,
    })
}

/// `CmdClaimBegin`.
pub(super) async fn begin(
    session: &DeviceSession,
    total_length: usize,
    sha256: &[u8],
    data: &[u8],
    commit: bool,
) -> Result<ClaimAnswer, String> {
    let begin = proto::CmdClaimBegin {
        total_length: u32::try_from(total_length).unwrap_or(u32::MAX),
        sha256: sha256.to_vec(),
        data: data.to_vec(),
        commit,
    };
    claim_message(session, T::TypeCmdBegin, P::CmdBegin(begin)).await
}

/// `CmdClaimChunk`.
pub(super) async fn chunk(
    session: &DeviceSession,
    offset: usize,
    data: &[u8],
    commit: bool,
) -> Result<ClaimAnswer, String> {
    let chunk = proto::CmdClaimChunk {
        offset: u32::try_from(offset).unwrap_or(u32::MAX),
        data: data.to_vec(),
        commit,
    };
    claim_message(session, T::TypeCmdChunk, P::CmdChunk(chunk)).await
}

/// `CmdClaimAbort`.
pub(super) async fn abort(session: &DeviceSession) -> Result<ClaimAnswer, String> {
    claim_message(
        session,
        T::TypeCmdAbort,
        P::CmdAbort(proto::CmdClaimAbort {}),
    )
    .await
}

/// Sends `bytes` of `bundle` as a begin (at most `first` bytes) and chunks of `per_chunk`, the last
/// one committing; returns the last answer, or the first one the device refused.
pub(super) async fn transfer(
    session: &DeviceSession,
    sha256: &[u8],
    bundle: &[u8],
    first: usize,
    per_chunk: usize,
) -> Result<ClaimAnswer, String> {
    let first = first.min(bundle.len());
    let mut answer = begin(
        session,
        bundle.len(),
        sha256,
        &bundle[..first],
        first == bundle.len(),
    )
    .await?;
    let mut offset = first;
    while answer.accepted() && offset < bundle.len() {
        let end = (offset + per_chunk).min(bundle.len());
        answer = chunk(session, offset, &bundle[offset..end], end == bundle.len()).await?;
        offset = end;
    }
    Ok(answer)
}

/// Checks that the device holds nothing: a chunk continuing the transfer at `offset` is refused with
/// `NotStarted`, and `aws-status` is `Idle`. The probe chunk carries one byte.
pub(super) async fn holds_nothing(session: &DeviceSession, offset: usize) -> Result<(), String> {
    let probe = chunk(session, offset, &[0], false).await?;
    if probe.error != E::NotStarted {
        return Err(format!(
            "a chunk continuing the transfer at offset {offset} was answered {} (expected NotStarted: the bytes received must be gone)",
            probe.describe()
        ));
    }
    let stage = stage(session).await?;
    if stage != CloudStage::Idle {
        return Err(format!(
            "aws-status says {stage:?} (expected Idle: no claim held)"
        ));
    }
    Ok(())
}

/// The stage `aws-status` reports.
pub(super) async fn stage(session: &DeviceSession) -> Result<CloudStage, String> {
    session
        .cloud_status()
        .await
        .map(|s| s.stage)
        .map_err(|e| format!("aws-status failed: {e}"))
}

/// What a device did with an HTTP body over 4096 bytes.
pub(super) enum OversizeAnswer {
    /// It answered with this status line's code.
    Status(u16),
    /// It closed the connection without an answer.
    Closed,
}

/// POSTs `len` bytes to `base`/`endpoint` on a new TCP connection and reads the status line.
pub(super) async fn post_oversize(
    base: &str,
    endpoint: &str,
    len: usize,
) -> Result<OversizeAnswer, String> {
    let authority = base
        .strip_prefix("http://")
        .ok_or_else(|| format!("{base} is not an http:// URL"))?
        .split('/')
        .next()
        .unwrap_or_default()
        .to_owned();
    let address = if authority.contains(':') {
        authority.clone()
    } else {
        format!("{authority}:80")
    };
    let io = async {
        let mut tcp = tokio::net::TcpStream::connect(&address).await?;
        let head = format!(
            "POST /{endpoint} HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n"
        );
        tcp.write_all(head.as_bytes()).await?;
        // The device may close before it has read the whole body: a failed write is an answer too.
        let _ = tcp.write_all(&vec![0x5a; len]).await;
        let mut answer = Vec::new();
        let _ = tcp.read_to_end(&mut answer).await;
        Ok::<_, std::io::Error>(answer)
    };
    let answer = tokio::time::timeout(std::time::Duration::from_secs(10), io)
        .await
        .map_err(|_| "the device neither answered nor closed within 10 s".to_owned())?
        .map_err(|e| format!("cannot reach {address}: {e}"))?;
    let status_line = String::from_utf8_lossy(&answer);
    Ok(
        match status_line
            .strip_prefix("HTTP/1.1 ")
            .or_else(|| status_line.strip_prefix("HTTP/1.0 "))
            .and_then(|rest| rest.get(..3))
            .and_then(|code| code.parse().ok())
        {
            Some(code) => OversizeAnswer::Status(code),
            None => OversizeAnswer::Closed,
        },
    )
}
