//! Twilio's REST API: send a message, update a live call, fetch recording media. Basic auth
//! with an API key (or the account SID and auth token for local use).

use callmesh_runtime::metrics::SendObserved;
use std::time::Duration;

use serde::Deserialize;

use super::ProviderError;

const PROVIDER: &str = "twilio";

#[derive(Clone)]
pub struct TwilioApi {
    http: reqwest::Client,
    base_url: String,
    account_sid: Option<String>,
    /// (username, password): API key SID and secret, or account SID and auth token.
    credentials: Option<(String, String)>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SentMessage {
    pub sid: Option<String>,
    pub status: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ErrorBody {
    #[serde(default)]
    code: Option<serde_json::Value>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    detail: Option<String>,
}

impl TwilioApi {
    pub fn new(
        base_url: &str,
        account_sid: Option<String>,
        credentials: Option<(String, String)>,
    ) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .build()
            .unwrap_or_default();
        TwilioApi {
            http,
            base_url: base_url.trim_end_matches('/').to_owned(),
            account_sid,
            credentials,
        }
    }

    /// Whether `url` is on the configured Twilio API host (credentials go nowhere else).
    pub fn owns(&self, url: &str) -> bool {
        url.starts_with(&format!("{}/", self.base_url))
    }

    fn account(&self) -> Result<(&str, &(String, String)), ProviderError> {
        let sid = self
            .account_sid
            .as_deref()
            .ok_or(ProviderError::NotConfigured("TWILIO_ACCOUNT_SID"))?;
        let credentials = self
            .credentials
            .as_ref()
            .ok_or(ProviderError::NotConfigured("TWILIO_AUTH_TOKEN"))?;
        Ok((sid, credentials))
    }

    /// `POST /2010-04-01/Accounts/{sid}/Messages.json`.
    pub async fn send_message(
        &self,
        to: &str,
        from: &str,
        body: &str,
        status_callback: Option<&str>,
    ) -> Result<SentMessage, ProviderError> {
        let (sid, (user, password)) = self.account()?;
        let mut form = vec![("To", to), ("From", from), ("Body", body)];
        if let Some(callback) = status_callback {
            form.push(("StatusCallback", callback));
        }
        let response = self
            .http
            .post(format!(
                "{}/2010-04-01/Accounts/{sid}/Messages.json",
                self.base_url
            ))
            .basic_auth(user, Some(password))
            .header("accept", "application/json")
            .form(&form)
            .send_observed("twilio", "messages")
            .await
            .map_err(|e| ProviderError::from_transport(PROVIDER, e))?;
        let response = rejected_unless_success(response).await?;
        response.json().await.map_err(|e| ProviderError::Unknown {
            provider: PROVIDER,
            message: format!("unreadable response: {e}"),
        })
    }

    /// `POST /2010-04-01/Accounts/{sid}/Calls/{call_sid}.json` with new TwiML for a live call.
    pub async fn redirect_call(&self, call_sid: &str, twiml: &str) -> Result<(), ProviderError> {
        let (sid, (user, password)) = self.account()?;
        let response = self
            .http
            .post(format!(
                "{}/2010-04-01/Accounts/{sid}/Calls/{call_sid}.json",
                self.base_url
            ))
            .basic_auth(user, Some(password))
            .header("accept", "application/json")
            .form(&[("Twiml", twiml)])
            .send_observed("twilio", "calls")
            .await
            .map_err(|e| ProviderError::from_transport(PROVIDER, e))?;
        rejected_unless_success(response).await?;
        Ok(())
    }

    /// Downloads media (a recording as `.mp3`), always with Basic auth. reqwest drops the
    /// `Authorization` header when a redirect leaves the host.
    pub async fn download(&self, url: &str) -> Result<(Vec<u8>, String), ProviderError> {
        let (_, (user, password)) = self.account()?;
        let response = self
            .http
            .get(url)
            .basic_auth(user, Some(password))
            .send_observed("twilio", "media")
            .await
            .map_err(|e| ProviderError::from_transport(PROVIDER, e))?;
        let response = rejected_unless_success(response).await?;
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("audio/mpeg")
            .to_owned();
        let bytes = response.bytes().await.map_err(|e| ProviderError::Unknown {
            provider: PROVIDER,
            message: e.to_string(),
        })?;
        Ok((bytes.to_vec(), content_type))
    }
}

/// Passes a success through; turns anything else into `Rejected` with Twilio's code and
/// message (legacy `{code, message}` or RFC 9457 `{code, detail}` bodies).
async fn rejected_unless_success(
    response: reqwest::Response,
) -> Result<reqwest::Response, ProviderError> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    if let Some(busy) = ProviderError::busy(PROVIDER, status, response.headers()) {
        return Err(busy);
    }
    let text = response.text().await.unwrap_or_default();
    let body: Option<ErrorBody> = serde_json::from_str(&text).ok();
    let code = body
        .as_ref()
        .and_then(|b| b.code.as_ref())
        .map(|c| c.to_string().trim_matches('"').to_owned())
        .unwrap_or_else(|| status.as_u16().to_string());
    let message = body
        .and_then(|b| b.message.or(b.detail))
        .unwrap_or_else(|| text.chars().take(300).collect());
    Err(ProviderError::Rejected {
        provider: PROVIDER,
        code,
        message,
        http_status: status.as_u16(),
    })
}
