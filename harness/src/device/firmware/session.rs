//! The `prov-session` endpoint (the handshakes are in [`super::security`]) and the envelope of every
//! secured endpoint: the request is decrypted with the session's cipher, handled, the answer encrypted.

use claimlink_core::internal::proto;

use super::security::{self, Handshake, Refused};
use super::{DeviceFailure, Inner, SimDevice};
use crate::device::broken::BrokenBehaviour;

impl SimDevice {
    /// Answers a `prov-session` request from the connection `session_id`. One session per device: a
    /// new connection replaces the old one, and a claim transfer the old one left unfinished is
    /// discarded (a committed claim stays: docs/protocol.md §9); a refused step ends the session.
    pub(super) fn session(
        &self,
        inner: &mut Inner,
        session_id: u64,
        req: proto::SessionData,
    ) -> Result<proto::SessionData, DeviceFailure> {
        let Inner {
            rng,
            session,
            pending_claim,
            firmware: inner_firmware,
            ..
        } = inner;
        if session.as_ref().map(|(id, _)| *id) != Some(session_id) {
            *session = Some((session_id, Handshake::Fresh));
            // A new session ends the old one: a claim half sent on it is gone (docs/protocol.md,
            // "Checking a device": a dropped session mid-claim leaves nothing).
            if !self
                .config
                .breaks(BrokenBehaviour::KeepsPartialClaimAfterDrop)
            {
                *pending_claim = None;
            }
            if let Some(firmware) = inner_firmware {
                // The component discards a partial transfer when its session ends (PIPE.md).
                let _ = firmware.session_ended();
            }
        }
        let Some((_, handshake)) = session.as_mut() else {
            return Err(DeviceFailure::Refused("no session".into()));
        };
        match security::handle_session(
            &self.config.security,
            self.sec2.as_ref(),
            handshake,
            req,
            rng,
            self.config.breaks(BrokenBehaviour::AcceptsWrongProof),
        ) {
            Ok(answer) => Ok(answer),
            Err(Refused(why)) => {
                *session = None;
                Err(DeviceFailure::Refused(why))
            }
        }
    }

    /// Runs `handler` on the decrypted `request` of the connection `session_id` and encrypts its
    /// answer. Without an established session of that connection the request is refused; one that does
    /// not decrypt also ends the session.
    pub(super) fn secured(
        &self,
        inner: &mut Inner,
        session_id: u64,
        request: &[u8],
        handler: impl FnOnce(&mut Inner, &[u8]) -> Result<Vec<u8>, DeviceFailure>,
    ) -> Result<Vec<u8>, DeviceFailure> {
        let plaintext = {
            let cipher = match inner.session.as_mut() {
                Some((id, Handshake::Done(cipher))) if *id == session_id => cipher,
                _ => return Err(DeviceFailure::Refused("no secure session".into())),
            };
            match cipher.decrypt(request) {
                Ok(p) => p,
                Err(e) => {
                    inner.session = None;
                    return Err(DeviceFailure::Refused(format!("decrypt: {e}")));
                }
            }
        };
        let answer = handler(inner, &plaintext)?;
        match inner.session.as_mut() {
            Some((_, Handshake::Done(cipher))) => cipher
                .encrypt(&answer)
                .map_err(|e| DeviceFailure::Refused(e.to_string())),
            _ => Err(DeviceFailure::Refused("session lost".into())),
        }
    }
}
