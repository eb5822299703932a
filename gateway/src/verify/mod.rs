//! Webhook verification. Handlers take a `Verified<…>` body, which only the verifiers in this
//! module can build, from the raw headers and raw body bytes, before anything is parsed.

pub mod elevenlabs;
pub mod twilio;

use std::net::IpAddr;

use axum::http::{HeaderMap, HeaderName};
use bytes::Bytes;

use crate::secret::Secret;

/// A request body whose signature checked out. Only this module can make one.
#[derive(Debug, Clone)]
pub struct Verified<T> {
    body: T,
}

impl<T> Verified<T> {
    fn new(body: T) -> Self {
        Verified { body }
    }

    pub fn body(&self) -> &T {
        &self.body
    }

    pub fn into_body(self) -> T {
        self.body
    }
}

/// Accepts `body` when header `name` carries `secret` (compared in constant time): how the
/// conversation-initiation webhook, which ElevenLabs does not sign, is authenticated.
pub fn header_secret(
    headers: &HeaderMap,
    name: &HeaderName,
    secret: &Secret,
    body: Bytes,
) -> Result<Verified<Bytes>, VerifyError> {
    let presented = headers
        .get(name)
        .ok_or(VerifyError::MissingHeader("authentication"))?;
    let presented = presented.as_bytes();
    // Accept both the bare secret and "Bearer <secret>".
    let bare = presented.strip_prefix(b"Bearer ").unwrap_or(presented);
    if secret.matches(bare) {
        Ok(Verified::new(body))
    } else {
        Err(VerifyError::Mismatch)
    }
}

/// Accepts `body` when the peer's address is on the allow-list.
pub fn allowed_address(
    peer: IpAddr,
    allowed: &[IpAddr],
    body: Bytes,
) -> Result<Verified<Bytes>, VerifyError> {
    if allowed.contains(&peer) {
        Ok(Verified::new(body))
    } else {
        Err(VerifyError::AddressNotAllowed(peer))
    }
}

/// Why a request was refused. The message is safe to send back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("missing {0} header")]
    MissingHeader(&'static str),
    #[error("malformed {0} header")]
    MalformedHeader(&'static str),
    #[error("signature timestamp is outside the allowed window")]
    OutsideWindow,
    #[error("signature does not match")]
    Mismatch,
    #[error("requests from {0} are not allowed")]
    AddressNotAllowed(IpAddr),
}
