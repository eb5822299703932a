//! The tonic adapter: validates each request once, calls `LeadBook`, maps the answer back.
//! Conversions destructure every proto field, so a new field fails to compile until handled.

use tonic::{Request, Response, Status};

use callmesh_proto::common::v1 as common;
use callmesh_proto::lead::v1 as pb;
use callmesh_proto::lead::v1::lead_service_server::LeadService;
use callmesh_runtime::batch;
use callmesh_runtime::durability::nothing_written;
use callmesh_runtime::errors::{optional, required};
use callmesh_runtime::paging::Page;
use callmesh_runtime::timestamps;

use crate::book::{LeadBook, LeadCount, LeadPage, OrganizationToken};
use crate::error::LeadError;
use crate::model::{
    AnalysisOutcome, Channel, ContactAttempt, ContactOutcome, HeardName, Lead, LeadChanges,
    LeadContact, LeadCursor, LeadFilter, LeadOrder, LeadStatus, LeadTier, NameSource,
    NewOrganization, Organization, OrganizationSettings,
};
use crate::phone::PhoneNumber;

pub struct LeadGrpc {
    book: LeadBook,
}

impl LeadGrpc {
    pub fn new(book: LeadBook) -> Self {
        LeadGrpc { book }
    }

    /// A `FindOrCreateLeadRequest` checked. Find-or-create is keyed by (organization, phone)
    /// in the database itself, not by the request's key.
    fn contact(&self, request: pb::FindOrCreateLeadRequest) -> Result<LeadContact, Status> {
        let pb::FindOrCreateLeadRequest {
            idempotency_key: _,
            organization_id,
            phone_number,
            name,
            email,
            source,
        } = request;
        Ok(LeadContact {
            organization_id: required("organization_id", organization_id)?,
            phone_number: self.phone("phone_number", &phone_number)?,
            name: name.trim().to_owned(),
            email: email.trim().to_owned(),
            source: source.trim().to_owned(),
        })
    }

    fn phone(&self, field: &str, raw: &str) -> Result<PhoneNumber, LeadError> {
        PhoneNumber::parse(raw, self.book.region()).map_err(|e| LeadError::invalid(field, e))
    }

    fn settings(
        &self,
        settings: pb::OrganizationSettings,
    ) -> Result<OrganizationSettings, LeadError> {
        let pb::OrganizationSettings {
            business_hours,
            sms_auto_reply,
            urgent_keywords,
            call_score_threshold,
            human_number,
            forward_number,
            agent_id,
            agent_phone_number_id,
            crm_webhook_url,
        } = settings;
        let crm_webhook_url = crm_webhook_url.trim().to_owned();
        // Refused here by name and address; notification checks the resolved addresses again
        // for every connection.
        if !crm_webhook_url.is_empty()
            && let Err(refused) = callmesh_runtime::egress::destination(&crm_webhook_url)
        {
            return Err(LeadError::invalid(
                "settings.crm_webhook_url",
                refused.to_string(),
            ));
        }
        let number = |field: &str, raw: String| match optional(raw) {
            Some(raw) => self.phone(field, &raw).map(Some),
            None => Ok(None),
        };
        Ok(OrganizationSettings {
            business_hours: business_hours.trim().to_owned(),
            sms_auto_reply,
            urgent_keywords: urgent_keywords
                .into_iter()
                .map(|k| k.trim().to_lowercase())
                .filter(|k| !k.is_empty())
                .collect(),
            call_score_threshold: u8::try_from(call_score_threshold)
                .ok()
                .filter(|t| *t <= 100)
                .ok_or_else(|| {
                    LeadError::invalid("settings.call_score_threshold", "must be between 0 and 100")
                })?,
            human_number: number("settings.human_number", human_number)?,
            forward_number: number("settings.forward_number", forward_number)?,
            agent_id: agent_id.trim().to_owned(),
            agent_phone_number_id: agent_phone_number_id.trim().to_owned(),
            crm_webhook_url,
        })
    }
}

#[tonic::async_trait]
impl LeadService for LeadGrpc {
    async fn create_organization(
        &self,
        request: Request<pb::CreateOrganizationRequest>,
    ) -> Result<Response<pb::CreateOrganizationResponse>, Status> {
        let pb::CreateOrganizationRequest {
            idempotency_key,
            name,
            timezone,
            phone_numbers,
            settings,
        } = request.into_inner();
        let name = required("name", name)?;
        let timezone = parse_timezone(&timezone)?;
        let phone_numbers = phone_numbers
            .iter()
            .enumerate()
            .map(|(i, raw)| self.phone(&format!("phone_numbers[{i}]"), raw))
            .collect::<Result<Vec<_>, _>>()?;
        let new = NewOrganization {
            name,
            timezone,
            phone_numbers,
            settings: self.settings(settings.unwrap_or_default())?,
        };
        let key = optional(idempotency_key);
        let (organization, created) = self.book.create_organization(key.as_deref(), new).await?;
        Ok(Response::new(pb::CreateOrganizationResponse {
            organization: Some(organization.into()),
            created,
        }))
    }

    async fn get_organization(
        &self,
        request: Request<pb::GetOrganizationRequest>,
    ) -> Result<Response<pb::GetOrganizationResponse>, Status> {
        let pb::GetOrganizationRequest { organization_id } = request.into_inner();
        let id = required("organization_id", organization_id)?;
        let organization = self.book.organization(&id).await?;
        Ok(Response::new(pb::GetOrganizationResponse {
            organization: Some(organization.into()),
        }))
    }

    async fn list_organizations(
        &self,
        request: Request<pb::ListOrganizationsRequest>,
    ) -> Result<Response<pb::ListOrganizationsResponse>, Status> {
        let pb::ListOrganizationsRequest { page } = request.into_inner();
        let page = page_of(page)?;
        let organizations = self.book.list_organizations(&page).await?;
        let next_page_token = page.next_token(
            organizations.iter().map(|o| o.id.as_str()),
            organizations.len(),
        );
        Ok(Response::new(pb::ListOrganizationsResponse {
            organizations: organizations.into_iter().map(Into::into).collect(),
            next_page_token,
        }))
    }

    async fn add_phone_number(
        &self,
        request: Request<pb::AddPhoneNumberRequest>,
    ) -> Result<Response<pb::AddPhoneNumberResponse>, Status> {
        // Claiming a number is idempotent by nature; the key needs no bookkeeping.
        let pb::AddPhoneNumberRequest {
            idempotency_key: _,
            organization_id,
            phone_number,
        } = request.into_inner();
        let organization_id = required("organization_id", organization_id)?;
        let number = self.phone("phone_number", &phone_number)?;
        let organization = self
            .book
            .add_phone_number(&organization_id, &number)
            .await?;
        Ok(Response::new(pb::AddPhoneNumberResponse {
            organization: Some(organization.into()),
        }))
    }

    async fn remove_phone_number(
        &self,
        request: Request<pb::RemovePhoneNumberRequest>,
    ) -> Result<Response<pb::RemovePhoneNumberResponse>, Status> {
        let pb::RemovePhoneNumberRequest {
            idempotency_key: _,
            organization_id,
            phone_number,
        } = request.into_inner();
        let organization_id = required("organization_id", organization_id)?;
        let number = self.phone("phone_number", &phone_number)?;
        let organization = self
            .book
            .remove_phone_number(&organization_id, &number)
            .await?;
        Ok(Response::new(pb::RemovePhoneNumberResponse {
            organization: Some(organization.into()),
        }))
    }

    async fn update_organization_settings(
        &self,
        request: Request<pb::UpdateOrganizationSettingsRequest>,
    ) -> Result<Response<pb::UpdateOrganizationSettingsResponse>, Status> {
        // Replacing settings is idempotent by nature; the key needs no bookkeeping.
        let pb::UpdateOrganizationSettingsRequest {
            idempotency_key: _,
            organization_id,
            settings,
        } = request.into_inner();
        let organization_id = required("organization_id", organization_id)?;
        let settings = self.settings(settings.unwrap_or_default())?;
        let organization = self
            .book
            .update_settings(&organization_id, &settings)
            .await?;
        Ok(Response::new(pb::UpdateOrganizationSettingsResponse {
            organization: Some(organization.into()),
        }))
    }

    async fn resolve_organization(
        &self,
        request: Request<pb::ResolveOrganizationRequest>,
    ) -> Result<Response<pb::ResolveOrganizationResponse>, Status> {
        let pb::ResolveOrganizationRequest { phone_number } = request.into_inner();
        let number = self.phone("phone_number", &phone_number)?;
        let organization = self.book.resolve_organization(&number).await?;
        Ok(Response::new(pb::ResolveOrganizationResponse {
            organization: Some(organization.into()),
        }))
    }

    async fn create_organization_token(
        &self,
        request: Request<pb::CreateOrganizationTokenRequest>,
    ) -> Result<Response<pb::CreateOrganizationTokenResponse>, Status> {
        let pb::CreateOrganizationTokenRequest {
            idempotency_key,
            organization_id,
            name,
        } = request.into_inner();
        let organization_id = required("organization_id", organization_id)?;
        let key = optional(idempotency_key);
        let (token, secret) = self
            .book
            .create_token(key.as_deref(), &organization_id, name.trim())
            .await?;
        Ok(Response::new(pb::CreateOrganizationTokenResponse {
            token: Some(token_to_proto(token)),
            secret: secret.unwrap_or_default(),
        }))
    }

    async fn list_organization_tokens(
        &self,
        request: Request<pb::ListOrganizationTokensRequest>,
    ) -> Result<Response<pb::ListOrganizationTokensResponse>, Status> {
        let pb::ListOrganizationTokensRequest { organization_id } = request.into_inner();
        let tokens = self
            .book
            .tokens(&required("organization_id", organization_id)?)
            .await?;
        Ok(Response::new(pb::ListOrganizationTokensResponse {
            tokens: tokens.into_iter().map(token_to_proto).collect(),
        }))
    }

    async fn revoke_organization_token(
        &self,
        request: Request<pb::RevokeOrganizationTokenRequest>,
    ) -> Result<Response<pb::RevokeOrganizationTokenResponse>, Status> {
        // Revoking is idempotent by nature.
        let pb::RevokeOrganizationTokenRequest {
            idempotency_key: _,
            token_id,
        } = request.into_inner();
        let token = self
            .book
            .revoke_token(&required("token_id", token_id)?)
            .await?;
        Ok(Response::new(pb::RevokeOrganizationTokenResponse {
            token: Some(token_to_proto(token)),
        }))
    }

    async fn authenticate_token(
        &self,
        request: Request<pb::AuthenticateTokenRequest>,
    ) -> Result<Response<pb::AuthenticateTokenResponse>, Status> {
        let pb::AuthenticateTokenRequest { secret } = request.into_inner();
        match self.book.authenticate(secret.trim()).await? {
            Some(token) => Ok(Response::new(pb::AuthenticateTokenResponse {
                token: Some(token_to_proto(token)),
            })),
            None => Err(Status::unauthenticated("unknown or revoked token")),
        }
    }

    async fn find_or_create_lead(
        &self,
        request: Request<pb::FindOrCreateLeadRequest>,
    ) -> Result<Response<pb::FindOrCreateLeadResponse>, Status> {
        let contact = self.contact(request.into_inner())?;
        let (lead, created) = self.book.find_or_create_lead(contact).await?;
        let response = Response::new(pb::FindOrCreateLeadResponse {
            lead: Some(lead.into()),
            created,
        });
        // Finding is a read: like GetLead, it need not wait for an fsync.
        Ok(if created {
            response
        } else {
            nothing_written(response)
        })
    }

    async fn batch_find_or_create_lead(
        &self,
        request: Request<pb::BatchFindOrCreateLeadRequest>,
    ) -> Result<Response<pb::BatchFindOrCreateLeadResponse>, Status> {
        let results = batch::answer(
            request.into_inner().items,
            |request| self.contact(request),
            async |contacts| self.book.find_or_create_leads(contacts).await,
            |(lead, created)| pb::FindOrCreateLeadResponse {
                lead: Some(lead.into()),
                created,
            },
        )
        .await?;
        let created = results.iter().any(|result: &pb::FindOrCreateLeadResult| {
            matches!(
                &result.result,
                Some(pb::find_or_create_lead_result::Result::Ok(found)) if found.created
            )
        });
        let response = Response::new(pb::BatchFindOrCreateLeadResponse { results });
        // Only found, nothing created: a read.
        Ok(if created {
            response
        } else {
            nothing_written(response)
        })
    }

    async fn get_lead(
        &self,
        request: Request<pb::GetLeadRequest>,
    ) -> Result<Response<pb::GetLeadResponse>, Status> {
        let pb::GetLeadRequest { lead_id } = request.into_inner();
        let lead = self.book.lead(&required("lead_id", lead_id)?).await?;
        Ok(Response::new(pb::GetLeadResponse {
            lead: Some(lead.into()),
        }))
    }

    async fn list_leads(
        &self,
        request: Request<pb::ListLeadsRequest>,
    ) -> Result<Response<pb::ListLeadsResponse>, Status> {
        let pb::ListLeadsRequest {
            organization_id,
            page,
            status,
            tier,
            query,
            order,
        } = request.into_inner();
        let organization_id = required("organization_id", organization_id)?;
        let order = match pb::LeadOrder::try_from(order) {
            Ok(pb::LeadOrder::Unspecified) => LeadOrder::Oldest,
            Ok(pb::LeadOrder::Score) => LeadOrder::Score,
            Ok(pb::LeadOrder::LastContact) => LeadOrder::LastContact,
            Err(_) => {
                return Err(LeadError::invalid("order", format!("unknown value {order}")).into());
            }
        };
        let page = lead_page(page, order)?;
        let filter = LeadFilter {
            status: lead_status("status", status)?,
            tier: match common::LeadTier::try_from(tier) {
                Ok(common::LeadTier::Unspecified) => None,
                Ok(common::LeadTier::Cold) => Some(LeadTier::Cold),
                Ok(common::LeadTier::Warm) => Some(LeadTier::Warm),
                Ok(common::LeadTier::Hot) => Some(LeadTier::Hot),
                Err(_) => {
                    return Err(LeadError::invalid("tier", format!("unknown value {tier}")).into());
                }
            },
            query: Some(query.trim().to_owned()).filter(|q| !q.is_empty()),
        };
        let leads = self
            .book
            .list_leads_by(&organization_id, &filter, order, &page)
            .await?;
        let next_page_token = match leads.last() {
            Some(last) if leads.len() as u64 >= page.size => {
                LeadCursor::after(order, last).to_token()
            }
            _ => String::new(),
        };
        Ok(Response::new(pb::ListLeadsResponse {
            leads: leads.into_iter().map(Into::into).collect(),
            next_page_token,
        }))
    }

    async fn count_leads(
        &self,
        request: Request<pb::CountLeadsRequest>,
    ) -> Result<Response<pb::CountLeadsResponse>, Status> {
        let pb::CountLeadsRequest { organization_id } = request.into_inner();
        let organization_id = required("organization_id", organization_id)?;
        let counts = self.book.count_leads(&organization_id).await?;
        Ok(Response::new(pb::CountLeadsResponse {
            counts: counts
                .into_iter()
                .map(|count| {
                    let LeadCount {
                        tier,
                        status,
                        leads,
                    } = count;
                    pb::LeadCount {
                        tier: tier_to_proto(tier).into(),
                        status: status_to_proto(status).into(),
                        leads,
                    }
                })
                .collect(),
        }))
    }

    async fn search_leads(
        &self,
        request: Request<pb::SearchLeadsRequest>,
    ) -> Result<Response<pb::SearchLeadsResponse>, Status> {
        let pb::SearchLeadsRequest {
            organization_id,
            query,
            page,
        } = request.into_inner();
        let organization_id = required("organization_id", organization_id)?;
        let query = required("query", query)?;
        let page = page_of(page)?;
        let leads = self
            .book
            .search_leads(&organization_id, &query, &page)
            .await?;
        let next_page_token = page.next_token(leads.iter().map(|l| l.id.as_str()), leads.len());
        Ok(Response::new(pb::SearchLeadsResponse {
            leads: leads.into_iter().map(Into::into).collect(),
            next_page_token,
        }))
    }

    async fn update_lead(
        &self,
        request: Request<pb::UpdateLeadRequest>,
    ) -> Result<Response<pb::UpdateLeadResponse>, Status> {
        // Setting fields is idempotent by nature; the key needs no bookkeeping.
        let pb::UpdateLeadRequest {
            idempotency_key: _,
            lead_id,
            name,
            email,
            status,
            notes,
        } = request.into_inner();
        let lead_id = required("lead_id", lead_id)?;
        let status = match status {
            Some(status) => Some(
                lead_status("status", status)?
                    .ok_or_else(|| LeadError::invalid("status", "must not be UNSPECIFIED"))?,
            ),
            None => None,
        };
        let changes = LeadChanges {
            name: name.map(|n| n.trim().to_owned()),
            email: email.map(|e| e.trim().to_owned()),
            status,
            notes,
        };
        let lead = self.book.update_lead(&lead_id, changes).await?;
        Ok(Response::new(pb::UpdateLeadResponse {
            lead: Some(lead.into()),
        }))
    }

    async fn apply_analysis(
        &self,
        request: Request<pb::ApplyAnalysisRequest>,
    ) -> Result<Response<pb::ApplyAnalysisResponse>, Status> {
        let (key, outcome) = analysis_request(request.into_inner())?;
        let (lead, applied) = self.book.apply_analysis(&key, outcome).await?;
        Ok(Response::new(pb::ApplyAnalysisResponse {
            lead: Some(lead.into()),
            applied,
        }))
    }

    async fn batch_apply_analysis(
        &self,
        request: Request<pb::BatchApplyAnalysisRequest>,
    ) -> Result<Response<pb::BatchApplyAnalysisResponse>, Status> {
        let results = batch::answer(
            request.into_inner().items,
            analysis_request,
            async |analyses| self.book.apply_analyses(&analyses).await,
            |(lead, applied)| pb::ApplyAnalysisResponse {
                lead: Some(lead.into()),
                applied,
            },
        )
        .await?;
        Ok(Response::new(pb::BatchApplyAnalysisResponse { results }))
    }

    async fn record_contact_attempt(
        &self,
        request: Request<pb::RecordContactAttemptRequest>,
    ) -> Result<Response<pb::RecordContactAttemptResponse>, Status> {
        // Recording the latest attempt sets fields; repeating it changes nothing.
        let pb::RecordContactAttemptRequest {
            idempotency_key: _,
            lead_id,
            channel,
            outcome,
            attempted_at,
            detail,
        } = request.into_inner();
        let channel = match common::Channel::try_from(channel) {
            Ok(common::Channel::Voice) => Channel::Voice,
            Ok(common::Channel::Sms) => Channel::Sms,
            _ => return Err(LeadError::invalid("channel", "must be VOICE or SMS").into()),
        };
        let outcome = match pb::ContactOutcome::try_from(outcome) {
            Ok(pb::ContactOutcome::Connected) => ContactOutcome::Connected,
            Ok(pb::ContactOutcome::NoAnswer) => ContactOutcome::NoAnswer,
            Ok(pb::ContactOutcome::Busy) => ContactOutcome::Busy,
            Ok(pb::ContactOutcome::Voicemail) => ContactOutcome::Voicemail,
            Ok(pb::ContactOutcome::Failed) => ContactOutcome::Failed,
            Ok(pb::ContactOutcome::Delivered) => ContactOutcome::Delivered,
            Ok(pb::ContactOutcome::Unspecified) | Err(_) => {
                return Err(LeadError::invalid("outcome", "must be set").into());
            }
        };
        let attempt = ContactAttempt {
            lead_id: required("lead_id", lead_id)?,
            channel,
            outcome,
            attempted_at: timestamps::from_proto(attempted_at).unwrap_or_else(chrono::Utc::now),
            detail,
        };
        let lead = self.book.record_contact_attempt(attempt).await?;
        Ok(Response::new(pb::RecordContactAttemptResponse {
            lead: Some(lead.into()),
        }))
    }
}

fn token_to_proto(token: OrganizationToken) -> pb::OrganizationToken {
    let OrganizationToken {
        id,
        organization_id,
        name,
        created_at,
        revoked_at,
    } = token;
    pb::OrganizationToken {
        id,
        organization_id,
        name,
        created_at: Some(timestamps::to_proto(created_at)),
        revoked_at: timestamps::to_proto_opt(revoked_at),
    }
}

fn page_of(page: Option<common::PageRequest>) -> Result<Page, LeadError> {
    Ok(Page::from_proto(page)?)
}

fn parse_timezone(raw: &str) -> Result<chrono_tz::Tz, LeadError> {
    if raw.trim().is_empty() {
        return Ok(chrono_tz::UTC);
    }
    raw.trim()
        .parse()
        .map_err(|_| LeadError::invalid("timezone", format!("{raw:?} is not an IANA time zone")))
}

/// `None` for UNSPECIFIED.
fn lead_status(field: &str, value: i32) -> Result<Option<LeadStatus>, LeadError> {
    let status = pb::LeadStatus::try_from(value)
        .map_err(|_| LeadError::invalid(field, format!("unknown value {value}")))?;
    Ok(match status {
        pb::LeadStatus::Unspecified => None,
        pb::LeadStatus::New => Some(LeadStatus::New),
        pb::LeadStatus::Contacted => Some(LeadStatus::Contacted),
        pb::LeadStatus::Qualified => Some(LeadStatus::Qualified),
        pb::LeadStatus::Converted => Some(LeadStatus::Converted),
        pb::LeadStatus::Lost => Some(LeadStatus::Lost),
        pb::LeadStatus::DoNotContact => Some(LeadStatus::DoNotContact),
    })
}

impl From<Organization> for pb::Organization {
    fn from(organization: Organization) -> Self {
        let Organization {
            id,
            name,
            timezone,
            phone_numbers,
            is_default,
            settings,
            created_at,
            updated_at,
        } = organization;
        let OrganizationSettings {
            business_hours,
            sms_auto_reply,
            urgent_keywords,
            call_score_threshold,
            human_number,
            forward_number,
            agent_id,
            agent_phone_number_id,
            crm_webhook_url,
        } = settings;
        pb::Organization {
            id,
            name,
            timezone: timezone.name().to_owned(),
            phone_numbers: phone_numbers.iter().map(ToString::to_string).collect(),
            is_default,
            created_at: Some(timestamps::to_proto(created_at)),
            updated_at: Some(timestamps::to_proto(updated_at)),
            settings: Some(pb::OrganizationSettings {
                business_hours,
                sms_auto_reply,
                urgent_keywords,
                call_score_threshold: i32::from(call_score_threshold),
                human_number: human_number.map(|n| n.to_string()).unwrap_or_default(),
                forward_number: forward_number.map(|n| n.to_string()).unwrap_or_default(),
                agent_id,
                agent_phone_number_id,
                crm_webhook_url,
            }),
        }
    }
}

impl From<Lead> for pb::Lead {
    fn from(lead: Lead) -> Self {
        let Lead {
            id,
            organization_id,
            phone_number,
            name,
            name_source,
            name_evidence,
            email,
            status,
            score,
            tier,
            summary,
            interaction_count,
            last_contact_at,
            last_attempt_at,
            last_attempt_outcome,
            source,
            notes,
            created_at,
            updated_at,
        } = lead;
        let status = status_to_proto(status);
        let tier = tier_to_proto(tier);
        let last_attempt_outcome = match last_attempt_outcome {
            None => pb::ContactOutcome::Unspecified,
            Some(ContactOutcome::Connected) => pb::ContactOutcome::Connected,
            Some(ContactOutcome::NoAnswer) => pb::ContactOutcome::NoAnswer,
            Some(ContactOutcome::Busy) => pb::ContactOutcome::Busy,
            Some(ContactOutcome::Voicemail) => pb::ContactOutcome::Voicemail,
            Some(ContactOutcome::Failed) => pb::ContactOutcome::Failed,
            Some(ContactOutcome::Delivered) => pb::ContactOutcome::Delivered,
        };
        pb::Lead {
            id,
            organization_id,
            phone_number: phone_number.to_string(),
            name,
            email,
            status: status.into(),
            score: i32::from(score),
            tier: tier.into(),
            summary,
            interaction_count: i32::try_from(interaction_count).unwrap_or(i32::MAX),
            last_contact_at: timestamps::to_proto_opt(last_contact_at),
            last_attempt_at: timestamps::to_proto_opt(last_attempt_at),
            last_attempt_outcome: last_attempt_outcome.into(),
            source,
            notes,
            created_at: Some(timestamps::to_proto(created_at)),
            updated_at: Some(timestamps::to_proto(updated_at)),
            name_source: match name_source {
                None => common::NameSource::Unspecified,
                Some(NameSource::Person) => common::NameSource::Person,
                Some(NameSource::Agent) => common::NameSource::Agent,
                Some(NameSource::Caller) => common::NameSource::Caller,
            }
            .into(),
            name_evidence,
        }
    }
}

/// A page of an ordered list: the size as every list takes it, the token as this order wrote it.
fn lead_page(page: Option<common::PageRequest>, order: LeadOrder) -> Result<LeadPage, LeadError> {
    let token = page
        .as_ref()
        .map(|p| p.page_token.clone())
        .unwrap_or_default();
    let size = page_of(page.map(|p| common::PageRequest {
        page_size: p.page_size,
        page_token: String::new(),
    }))?
    .size;
    let after = if token.is_empty() {
        None
    } else {
        Some(LeadCursor::parse(order, &token).ok_or_else(|| {
            LeadError::invalid(
                "page.page_token",
                "not a token from a previous response in this order",
            )
        })?)
    };
    Ok(LeadPage { size, after })
}

fn status_to_proto(status: LeadStatus) -> pb::LeadStatus {
    match status {
        LeadStatus::New => pb::LeadStatus::New,
        LeadStatus::Contacted => pb::LeadStatus::Contacted,
        LeadStatus::Qualified => pb::LeadStatus::Qualified,
        LeadStatus::Converted => pb::LeadStatus::Converted,
        LeadStatus::Lost => pb::LeadStatus::Lost,
        LeadStatus::DoNotContact => pb::LeadStatus::DoNotContact,
    }
}

fn tier_to_proto(tier: Option<LeadTier>) -> common::LeadTier {
    match tier {
        None => common::LeadTier::Unspecified,
        Some(LeadTier::Cold) => common::LeadTier::Cold,
        Some(LeadTier::Warm) => common::LeadTier::Warm,
        Some(LeadTier::Hot) => common::LeadTier::Hot,
    }
}

/// An `ApplyAnalysisRequest` checked: its key and the outcome.
fn analysis_request(
    request: pb::ApplyAnalysisRequest,
) -> Result<(String, AnalysisOutcome), Status> {
    let pb::ApplyAnalysisRequest {
        idempotency_key,
        lead_id,
        conversation_id,
        score,
        tier,
        summary,
        status,
        occurred_at,
        revision,
        name,
        name_source,
        name_evidence,
    } = request;
    let idempotency_key = required("idempotency_key", idempotency_key)?;
    let heard_name = match common::NameSource::try_from(name_source) {
        _ if name.trim().is_empty() => None,
        Ok(common::NameSource::Caller) => Some(NameSource::Caller),
        Ok(common::NameSource::Agent) => Some(NameSource::Agent),
        // A name an analysis heard is never a person's word.
        Ok(common::NameSource::Person | common::NameSource::Unspecified) => {
            return Err(LeadError::invalid("name_source", "must be AGENT or CALLER").into());
        }
        Err(_) => {
            return Err(
                LeadError::invalid("name_source", format!("unknown value {name_source}")).into(),
            );
        }
    }
    .map(|source| HeardName {
        name: name.trim().to_owned(),
        source,
        evidence: name_evidence,
    });
    let score = u8::try_from(score)
        .ok()
        .filter(|s| *s <= 100)
        .ok_or_else(|| LeadError::invalid("score", "must be between 0 and 100"))?;
    let tier = match common::LeadTier::try_from(tier) {
        Ok(common::LeadTier::Unspecified) => LeadTier::for_score(score),
        Ok(common::LeadTier::Cold) => LeadTier::Cold,
        Ok(common::LeadTier::Warm) => LeadTier::Warm,
        Ok(common::LeadTier::Hot) => LeadTier::Hot,
        Err(_) => {
            return Err(LeadError::invalid("tier", format!("unknown value {tier}")).into());
        }
    };
    let outcome = AnalysisOutcome {
        lead_id: required("lead_id", lead_id)?,
        conversation_id: required("conversation_id", conversation_id)?,
        score,
        tier,
        summary,
        status: lead_status("status", status)?,
        occurred_at: timestamps::from_proto(occurred_at).unwrap_or_else(chrono::Utc::now),
        revision,
        heard_name,
    };
    Ok((idempotency_key, outcome))
}
