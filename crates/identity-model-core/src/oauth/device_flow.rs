//! The device flow's polling rules (RFC 8628 section 3.5), without a clock: feed each token
//! response in, get back how long to wait, the tokens, or the end.

use std::time::Duration;

use crate::error::Error;
use crate::oauth::oauth_error::OAuthError;
use crate::oauth::token_response::{DeviceAuthorization, TokenResponse};

/// What to do after a poll.
#[derive(Debug)]
pub enum PollStep {
    /// Not yet: poll again after this long.
    Wait(Duration),
    /// The user approved.
    Done(Box<TokenResponse>),
    /// It is over: `access_denied`, `expired_token`, the code's lifetime passed, or another error.
    Failed(Error),
}

/// Polling state: the interval (grown by `slow_down`) and the deadline.
#[derive(Debug, Clone)]
pub struct DevicePoller {
    interval: Duration,
    lifetime: Duration,
}

/// `slow_down` adds this to the interval (RFC 8628 section 3.5).
pub const SLOW_DOWN_STEP: Duration = Duration::from_secs(5);

impl DevicePoller {
    /// Starts polling for `authorization`.
    pub fn new(authorization: &DeviceAuthorization) -> Self {
        DevicePoller {
            interval: Duration::from_secs(authorization.interval.max(1)),
            lifetime: Duration::from_secs(authorization.expires_in),
        }
    }

    /// The current interval.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// The step after a poll's result, `elapsed` since the device authorization.
    pub fn next(&mut self, result: Result<TokenResponse, Error>, elapsed: Duration) -> PollStep {
        let error = match result {
            Ok(tokens) => return PollStep::Done(Box::new(tokens)),
            Err(e) => e,
        };
        let code = error.oauth().map(|o| o.error.as_str());
        match code {
            Some("authorization_pending") => {}
            Some("slow_down") => {
                let most = Duration::from_secs(crate::oauth::token_response::MAX_INTERVAL_SECS);
                self.interval = self.interval.saturating_add(SLOW_DOWN_STEP).min(most);
            }
            _ => return PollStep::Failed(error),
        }
        if elapsed.saturating_add(self.interval) >= self.lifetime {
            // The provider would answer expired_token next; say so without asking.
            return PollStep::Failed(Error::from_oauth(OAuthError {
                status: 400,
                error: "expired_token".into(),
                error_description: Some(
                    "the device code's expires_in passed before the user finished".into(),
                ),
                error_uri: None,
                www_authenticate: None,
            }));
        }
        PollStep::Wait(self.interval)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oauth::token_response::EndpointResponse;

    fn oauth(code: &str) -> Result<TokenResponse, Error> {
        let body = format!("{{\"error\":\"{code}\"}}");
        Err(Error::from_oauth(OAuthError::from_response(400, body.as_bytes(), None).unwrap()))
    }

    #[test]
    fn pending_waits_slow_down_grows_denied_and_expired_end() {
        let auth = DeviceAuthorization::from_response(EndpointResponse {
            status: 200,
            content_type: Some("application/json"),
            www_authenticate: None,
            body: br#"{"device_code":"d","user_code":"u","verification_uri":"https://op/device","expires_in":30,"interval":2}"#,
        })
        .unwrap();
        let mut p = DevicePoller::new(&auth);
        let secs = |s| Duration::from_secs(s);
        assert!(matches!(p.next(oauth("authorization_pending"), secs(0)), PollStep::Wait(w) if w == secs(2)));
        assert!(matches!(p.next(oauth("slow_down"), secs(2)), PollStep::Wait(w) if w == secs(7)));
        assert!(matches!(p.next(oauth("authorization_pending"), secs(9)), PollStep::Wait(w) if w == secs(7)));
        let deadline = p.next(oauth("authorization_pending"), secs(25));
        assert!(
            matches!(deadline, PollStep::Failed(e) if e.oauth().is_some_and(|o| o.error == "expired_token"))
        );
        for end in ["access_denied", "expired_token", "invalid_grant"] {
            let step = DevicePoller::new(&auth).next(oauth(end), secs(0));
            assert!(
                matches!(step, PollStep::Failed(e) if e.oauth().is_some_and(|o| o.error == end)),
                "{end}"
            );
        }
    }
}
