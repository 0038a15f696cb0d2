//! The use cases of `ktp.v1.KtpService`, whatever protocol carried the
//! call: get a result (waiting or not), submit an image, extract (submit
//! and wait). Each takes the decoded request message and the [`Call`] and
//! returns a domain result; the edges (`grpc`, `connect`) decode, call one
//! of these through [`Call::answer`] (the caller's deadline, the error
//! table) and encode, nothing more.

use std::{sync::Arc, time::Duration};

use prost_types::FieldMask;
use tokio::time::Instant;

use crate::{
    call::Call,
    convert,
    error::{GatewayError, Scope},
    fields::{self, FieldSet, MaskError},
    image::{Image, ImageInput},
    proto::{
        ExtractKtpRequest, ExtractKtpResponse, GetKtpResultRequest, GetKtpResultResponse,
        SubmitKtpRequest, SubmitKtpResponse,
    },
    reference_id::ReferenceId,
    resilience::overload::{InFlight, InFlightLimit},
    upstream::{
        KtpResult, Upstream,
        submit::{SubmitJob, Submitted},
        wait::Waited,
    },
};

/// What the handlers need besides the upstream.
#[derive(Debug, Clone)]
pub struct Limits {
    /// `submit.max_image_bytes`.
    pub max_image_bytes: usize,
    /// `wait.max_wait`: the longest wait when the caller's deadline is later.
    pub max_wait: Duration,
    /// `wait.max_waiting`: the cap on calls waiting for their job.
    pub waiting: InFlightLimit,
}

/// The use cases; cheap to clone (the upstream client shares its pool).
#[derive(Debug, Clone)]
pub struct KtpApi {
    upstream: Upstream,
    limits: Limits,
}

impl KtpApi {
    /// The handlers hold the upstream and the two settings a call's own
    /// work needs; everything else about a call is the call layer's.
    pub fn new(upstream: Upstream, limits: Limits) -> Self {
        Self { upstream, limits }
    }

    /// `GetKtpResult`: the job's result now, or with `wait` once it has
    /// one (until the caller's deadline or `wait.max_wait`), cut to the
    /// fields the mask and the caller's allowance leave.
    pub async fn get_ktp_result(
        &self,
        call: Arc<Call>,
        request: GetKtpResultRequest,
    ) -> Result<GetKtpResultResponse, GatewayError> {
        let id = ReferenceId::parse(request.reference_id)?;
        call.set_reference_id(id.as_str());
        let fields = visible_fields(&call, request.read_mask)?;
        let result = if request.wait {
            let started = Instant::now();
            let place = self.waiting_place()?;
            match self.wait(&call, &id, started, place).await {
                Waited::Answered(answer) => answer?,
                // The pod is going away: the same call, as is, on another
                // pod waits on.
                Waited::HandedBack => {
                    return Err(GatewayError::ShuttingDown { retry_as_is: true });
                }
                Waited::NotYet(Some(error)) => {
                    return Err(GatewayError::NotFoundAfterWait {
                        error,
                        waited: started.elapsed(),
                    });
                }
                // No poll answered before the end: the caller's deadline
                // (DEADLINE_EXCEEDED stays the caller's own), or our
                // `wait.max_wait`, which the call outlived.
                Waited::NotYet(None) => {
                    if call.deadline().is_some_and(|d| d <= self.own_end(started)) {
                        return Err(GatewayError::DeadlineExceeded);
                    }
                    return Err(GatewayError::NoAnswerInWait {
                        waited: started.elapsed(),
                    });
                }
            }
        } else {
            // Boxed: its state is larger than a wait's, and the handler's
            // future is as large as its largest state, for as long as the
            // call lives (a waiting call's for seconds).
            Box::pin(self.upstream.fetch(&id, call.deadline(), call.trace())).await?
        };
        Ok(answer(&call, result, &id, fields))
    }

    /// `SubmitKtp`: the image checked here first (nothing billed for one
    /// the upstream would refuse), then submitted under its id.
    pub async fn submit_ktp(
        &self,
        call: Arc<Call>,
        request: SubmitKtpRequest,
    ) -> Result<SubmitKtpResponse, GatewayError> {
        let image = request.image_source.map(ImageInput::from);
        let job = self.job(&call, image, request.validate_quality, request.reference_id)?;
        let submitted = self.submit(&call, job).await?;
        Ok(SubmitKtpResponse {
            reference_id: submitted.reference_id,
            message: submitted.message,
        })
    }

    /// `ExtractKtp`: submit and wait in one call; the mask and the wait
    /// cap are checked before anything is billed.
    pub async fn extract_ktp(
        &self,
        call: Arc<Call>,
        request: ExtractKtpRequest,
    ) -> Result<ExtractKtpResponse, GatewayError> {
        let started = Instant::now();
        let fields = visible_fields(&call, request.read_mask)?;
        let image = request.image_source.map(ImageInput::from);
        let job = self.job(&call, image, request.validate_quality, request.reference_id)?;
        // Before the submit: a full wait cap refuses before anything is billed.
        let place = self.waiting_place()?;
        // Boxed, as `get_ktp_result`'s fetch: the wait that follows keeps
        // the future's size.
        let submitted = Box::pin(self.submit(&call, job)).await?;
        // Checked when the answer was read: an id the gateway could send.
        let id = ReferenceId::parse(submitted.reference_id.clone())
            .map_err(GatewayError::InvalidReferenceId)?;
        call.set_reference_id(id.as_str());
        let after = |error| GatewayError::ForJob {
            reference_id: submitted.reference_id.clone(),
            error: Box::new(error),
        };
        let result = match self.wait(&call, &id, started, place).await {
            Waited::Answered(answer) => answer.map_err(|e| after(e.into()))?,
            // Not as is: that would submit the image again; the client
            // resumes with GetKtpResult(wait = true) on the id.
            Waited::HandedBack => {
                return Err(after(GatewayError::ShuttingDown { retry_as_is: false }));
            }
            Waited::NotYet(_) => {
                return Err(after(GatewayError::ResultNotReady {
                    waited: started.elapsed(),
                }));
            }
        };
        Ok(ExtractKtpResponse {
            result: Some(answer(&call, result, &id, fields)),
        })
    }

    /// A submit job from a request's fields, checked locally first (no
    /// billed call for an image the upstream would refuse). An empty
    /// reference id gets a fresh UUID now, so every retry carries it.
    fn job(
        &self,
        call: &Call,
        image: Option<ImageInput>,
        validate_quality: bool,
        reference_id: String,
    ) -> Result<SubmitJob, GatewayError> {
        let image = Image::parse(image, self.limits.max_image_bytes)?;
        let id = if reference_id.is_empty() {
            ReferenceId::parse(uuid::Uuid::new_v4().to_string())?
        } else {
            ReferenceId::parse(reference_id)?
        };
        call.set_reference_id(id.as_str());
        Ok(SubmitJob::new(
            image,
            validate_quality,
            id,
            call.trace().cloned(),
        ))
    }

    /// Sends the job; its image is gone once this returns, and so is the
    /// call's image slot.
    async fn submit(&self, call: &Call, job: SubmitJob) -> Result<Submitted, GatewayError> {
        let reference_id = job.reference_id.as_str().to_owned();
        let image_field = job.image_field();
        let submitted = self.upstream.submit(job, call.deadline()).await;
        call.release_slot();
        submitted.map_err(|error| GatewayError::ForJob {
            reference_id,
            error: Box::new(GatewayError::Submit { error, image_field }),
        })
    }

    /// When a wait begun at `started` ends if the caller's deadline is
    /// later or unset: `wait.max_wait` after it.
    fn own_end(&self, started: Instant) -> Instant {
        started + self.limits.max_wait
    }

    /// A place among `wait.max_waiting`, or OVERLOADED (scope `waits`).
    fn waiting_place(&self) -> Result<InFlight, GatewayError> {
        self.limits
            .waiting
            .try_admit()
            .ok_or(GatewayError::Overloaded {
                scope: Scope::Waits,
                limit: self.limits.waiting.limit(),
            })
    }

    /// Waits for the job under `id`, in `place`, until the caller's deadline
    /// or `wait.max_wait` after `started`, whichever comes first;
    /// `HandedBack` when the server's shutdown ended the wait first (at the end of
    /// `server.drain_delay`, or at once after it): a waiting call must not
    /// hold the pod for its job.
    ///
    /// A plain function returning the wait: the future holds what the wait
    /// needs, not the place it was given or the time it started.
    fn wait<'a>(
        &'a self,
        call: &'a Call,
        id: &'a ReferenceId,
        started: Instant,
        place: InFlight,
    ) -> impl Future<Output = Waited> + 'a {
        call.start_waiting(place);
        let own_end = self.own_end(started);
        let until = call.deadline().map_or(own_end, |d| d.min(own_end));
        // The server's shutdown hands the wait back through the polls
        // (`Upstream::stop_waiting`): no signal held per waiting call.
        self.upstream.wait_for_result(id, until, call.trace())
    }
}

/// The fields the answer keeps: the read mask's, within the caller's
/// allowance. Checked before any upstream call, so a call that could not
/// be answered is not billed.
fn visible_fields(call: &Call, mask: Option<FieldMask>) -> Result<FieldSet, GatewayError> {
    let paths = mask.map(|m| m.paths).unwrap_or_default();
    fields::visible(&paths, call.caller().allowed).map_err(|e| match e {
        MaskError::Unknown(path) => GatewayError::invalid_read_mask(path),
        MaskError::NotAllowed(field) => GatewayError::FieldNotAllowed {
            field: field.name(),
        },
    })
}

/// The answer with its checks computed from the whole card (and counted),
/// then cut to `fields`.
fn answer(
    call: &Call,
    result: KtpResult,
    id: &ReferenceId,
    fields: FieldSet,
) -> GetKtpResultResponse {
    let mut response = convert::to_response(result, id);
    if let Some(checks) = response.checks {
        call.set_checks(checks);
    }
    convert::mask::retain(&mut response, fields);
    response
}

#[cfg(test)]
mod tests;
