//! Concurrent flows' calls of one RPC, sent as one `Batch…` call.
//!
//! Hundreds of flows run at once, and each makes the same few calls: find the lead, record the
//! call, store the transcript, analyse it, apply it, publish, forward to the CRM. Sent one by
//! one, every call pays for its own HTTP/2 request, its own transaction and (on SQLite) its own
//! wait for an fsync. A [`Batcher`] queues the calls of one RPC; whenever fewer than
//! `MAX_IN_FLIGHT` batches are under way it sends everything queued as one batch, whose items
//! the service applies in one transaction. Nothing waits for a batch to fill on a timer: the
//! batcher first lets the flows that are ready run (a few turns of the scheduler, for as long as
//! their calls keep arriving), so flows woken together (by one claim, or by one batch's answers)
//! travel together even when the service is idle; a call that arrives alone goes alone, and
//! batches grow beyond that only while the service is busy.
//! Each item is answered as it would have been alone, and a service without the batch RPC
//! (an older replica during a rollout) is called item by item instead.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use tokio::sync::{Semaphore, mpsc, oneshot};
use tonic::{Code, Status};
use tracing::Instrument;

/// Batches of one RPC under way at once.
const MAX_IN_FLIGHT: usize = 4;
/// Most times a batcher lets the flows run before sending, while their calls keep arriving.
const MAX_YIELDS: usize = 16;
/// Most items in one batch.
const MAX_ITEMS: usize = 128;
/// Most encoded bytes in one batch, well under the 4 MiB a gRPC server takes by default (the
/// lead and notification services keep it); an item larger than this goes alone, as the plain
/// RPC, which takes what it took before.
const MAX_BYTES: usize = 2 * 1024 * 1024;

type Answer<A> = Result<A, Status>;
/// A queued call: its request, where its answer goes, and the caller's span (so the call stays
/// part of the caller's trace).
type Job<Q, A> = (Q, oneshot::Sender<Answer<A>>, tracing::Span);
type Sent<T> = Pin<Box<dyn Future<Output = T> + Send>>;
type SendBatch<Q, A> = dyn Fn(Vec<Q>) -> Sent<Result<Vec<Answer<A>>, Status>> + Send + Sync;
type SendOne<Q, A> = dyn Fn(Q) -> Sent<Answer<A>> + Send + Sync;

/// Sends one RPC's calls in batches; cheap to clone.
pub struct Batcher<Q, A> {
    queue: mpsc::UnboundedSender<Job<Q, A>>,
}

/// What a batcher is called in traces: the RPC's name.
type Name = &'static str;

impl<Q, A> Clone for Batcher<Q, A> {
    fn clone(&self) -> Self {
        Batcher {
            queue: self.queue.clone(),
        }
    }
}

impl<Q, A> Batcher<Q, A>
where
    Q: prost::Message + Clone + 'static,
    A: Send + 'static,
{
    /// Starts the batcher: `batch` sends many requests in one call and answers each, in order;
    /// `one` sends a single request, for a service that does not know the batch RPC.
    pub fn spawn<B, BF, O, OF>(name: Name, batch: B, one: O) -> Self
    where
        B: Fn(Vec<Q>) -> BF + Send + Sync + 'static,
        BF: Future<Output = Result<Vec<Answer<A>>, Status>> + Send + 'static,
        O: Fn(Q) -> OF + Send + Sync + 'static,
        OF: Future<Output = Answer<A>> + Send + 'static,
    {
        let batch: Arc<SendBatch<Q, A>> = Arc::new(move |requests| Box::pin(batch(requests)));
        let one: Arc<SendOne<Q, A>> = Arc::new(move |request| Box::pin(one(request)));
        let (queue, jobs) = mpsc::unbounded_channel();
        tokio::spawn(run(name, jobs, batch, one));
        Batcher { queue }
    }

    /// Sends `request` with whatever else is queued, and answers it.
    pub async fn call(&self, request: Q) -> Answer<A> {
        let (done, answer) = oneshot::channel();
        self.queue
            .send((request, done, tracing::Span::current()))
            .map_err(|_| Status::unavailable("the gateway is shutting down"))?;
        answer
            .await
            .map_err(|_| Status::unavailable("the call was abandoned"))?
    }
}

async fn run<Q, A>(
    name: Name,
    mut jobs: mpsc::UnboundedReceiver<Job<Q, A>>,
    batch: Arc<SendBatch<Q, A>>,
    one: Arc<SendOne<Q, A>>,
) where
    Q: prost::Message + Clone + 'static,
    A: Send + 'static,
{
    let in_flight = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let mut carried: Option<Job<Q, A>> = None;
    loop {
        let Ok(permit) = in_flight.clone().acquire_owned().await else {
            return;
        };
        let first = match carried.take() {
            Some(job) => job,
            None => match jobs.recv().await {
                Some(job) => job,
                None => return,
            },
        };
        // The flows that are ready to run now (woken by the same claim, or by the same batch's
        // answers) reach their calls first: they join this batch instead of each going alone.
        let mut queued = jobs.len();
        for _ in 0..MAX_YIELDS {
            tokio::task::yield_now().await;
            let now = jobs.len();
            if now == queued {
                break;
            }
            queued = now;
        }
        let mut bytes = first.0.encoded_len();
        let mut taken = vec![first];
        while taken.len() < MAX_ITEMS {
            let Ok(job) = jobs.try_recv() else {
                break;
            };
            bytes += job.0.encoded_len();
            if bytes > MAX_BYTES {
                carried = Some(job);
                break;
            }
            taken.push(job);
        }
        let (batch, one) = (batch.clone(), one.clone());
        tokio::spawn(async move {
            let mut requests = Vec::with_capacity(taken.len());
            let mut replies = Vec::with_capacity(taken.len());
            let mut callers = Vec::with_capacity(taken.len());
            for (request, reply, caller) in taken {
                requests.push(request);
                replies.push(reply);
                callers.push(caller);
            }
            // A call alone is sent in its caller's span; a batch in one linked to every caller.
            let span = match callers.as_slice() {
                [caller] => caller.clone(),
                callers => callmesh_runtime::telemetry::span_for_all(name, callers),
            };
            let answers = send(requests, batch.as_ref(), one.as_ref())
                .instrument(span)
                .await;
            for (reply, answer) in replies.into_iter().zip(answers) {
                // A caller that gave up no longer listens.
                let _ = reply.send(answer);
            }
            drop(permit);
        });
    }
}

/// One answer per request, in order.
async fn send<Q: Clone, A>(
    mut requests: Vec<Q>,
    batch: &SendBatch<Q, A>,
    one: &SendOne<Q, A>,
) -> Vec<Answer<A>> {
    let count = requests.len();
    if count == 1
        && let Some(request) = requests.pop()
    {
        // Alone: the plain RPC, which every version of the service knows.
        return vec![one(request).await];
    }
    match batch(requests.clone()).await {
        Ok(answers) if answers.len() == count => answers,
        Ok(answers) => {
            let status = Status::internal(format!(
                "a batch of {count} was answered with {} results",
                answers.len()
            ));
            failed(&status, count)
        }
        Err(status) if status.code() == Code::Unimplemented => {
            futures_util::future::join_all(requests.into_iter().map(one)).await
        }
        Err(status) => failed(&status, count),
    }
}

fn failed<A>(status: &Status, count: usize) -> Vec<Answer<A>> {
    (0..count).map(|_| Err(status.clone())).collect()
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::Duration;

    use callmesh_proto::lead::v1::GetLeadRequest;

    use super::*;

    fn request(n: usize) -> GetLeadRequest {
        GetLeadRequest {
            lead_id: n.to_string(),
        }
    }

    #[tokio::test]
    async fn concurrent_calls_travel_together_and_each_gets_its_own_answer() {
        let sizes = Arc::new(Mutex::new(Vec::new()));
        let seen = sizes.clone();
        let batcher = Batcher::spawn(
            "GetLead",
            move |requests: Vec<GetLeadRequest>| {
                let seen = seen.clone();
                async move {
                    if let Ok(mut sizes) = seen.lock() {
                        sizes.push(requests.len());
                    }
                    // A busy service: the next calls queue meanwhile.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    Ok(requests
                        .into_iter()
                        .map(|r| match r.lead_id.as_str() {
                            "13" => Err(Status::not_found("lead 13")),
                            id => Ok(format!("lead {id}")),
                        })
                        .collect())
                }
            },
            |r: GetLeadRequest| async move {
                tokio::time::sleep(Duration::from_millis(20)).await;
                Ok(format!("lead {} alone", r.lead_id))
            },
        );
        let calls: Vec<_> = (0..200)
            .map(|n| {
                let batcher = batcher.clone();
                tokio::spawn(async move { (n, batcher.call(request(n)).await) })
            })
            .collect();
        for call in calls {
            let (n, answer) = call.await.expect("task");
            match answer {
                Ok(answer) => assert!(
                    answer == format!("lead {n}") || answer == format!("lead {n} alone"),
                    "{n}: {answer}"
                ),
                Err(status) => {
                    assert_eq!(n, 13);
                    assert_eq!(status.code(), Code::NotFound);
                }
            }
        }
        let sizes = sizes.lock().expect("sizes").clone();
        assert!(
            sizes.iter().any(|size| *size > 1),
            "calls made at once were batched: {sizes:?}"
        );
        assert!(sizes.iter().all(|size| *size <= MAX_ITEMS));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn calls_of_flows_woken_together_travel_together_though_the_service_is_idle() {
        let sends = Arc::new(Mutex::new(Vec::new()));
        let (batches, alone) = (sends.clone(), sends.clone());
        let batcher = Batcher::spawn(
            "GetLead",
            move |requests: Vec<GetLeadRequest>| {
                if let Ok(mut sends) = batches.lock() {
                    sends.push(requests.len());
                }
                // An idle service: answered at once, so nothing queues behind a busy one.
                async move { Ok(requests.into_iter().map(|r| Ok(r.lead_id)).collect()) }
            },
            move |r: GetLeadRequest| {
                if let Ok(mut sends) = alone.lock() {
                    sends.push(1);
                }
                async move { Ok(r.lead_id) }
            },
        );
        // Each round is up to the machine's scheduler as well (a worker descheduled at the
        // wrong moment sends a few calls alone), so most rounds must hold, not every one.
        let mut rounds = Vec::new();
        for _ in 0..10 {
            // Twenty flows woken at once (as by one claim, or one batch's answers).
            let woken = Arc::new(tokio::sync::Barrier::new(21));
            let calls: Vec<_> = (0..20)
                .map(|n| {
                    let (batcher, woken) = (batcher.clone(), woken.clone());
                    tokio::spawn(async move {
                        woken.wait().await;
                        batcher.call(request(n)).await
                    })
                })
                .collect();
            woken.wait().await;
            for (n, call) in calls.into_iter().enumerate() {
                let answer = call.await.expect("task").expect("answered");
                assert_eq!(answer, n.to_string());
            }
            let sent = std::mem::take(&mut *sends.lock().expect("sends"));
            assert_eq!(sent.iter().sum::<usize>(), 20);
            rounds.push(sent);
        }
        let together = rounds.iter().filter(|sent| sent.len() <= 3).count();
        assert!(
            together >= 7,
            "twenty calls made at once went in at most three sends in {together} rounds of 10: {rounds:?}"
        );
    }

    #[tokio::test]
    async fn a_service_without_the_batch_rpc_is_called_item_by_item() {
        let batcher = Batcher::spawn(
            "GetLead",
            |_: Vec<GetLeadRequest>| async {
                tokio::time::sleep(Duration::from_millis(5)).await;
                Err::<Vec<Answer<String>>, _>(Status::unimplemented("unknown method"))
            },
            |r: GetLeadRequest| async move { Ok(format!("lead {}", r.lead_id)) },
        );
        let calls: Vec<_> = (0..50)
            .map(|n| {
                let batcher = batcher.clone();
                tokio::spawn(async move { (n, batcher.call(request(n)).await) })
            })
            .collect();
        for call in calls {
            let (n, answer) = call.await.expect("task");
            assert_eq!(answer.expect("answered alone"), format!("lead {n}"));
        }
    }

    #[tokio::test]
    async fn a_batch_never_grows_past_its_byte_limit() {
        let sizes = Arc::new(Mutex::new(Vec::new()));
        let seen = sizes.clone();
        let busy = |answer: String| async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            Ok(answer)
        };
        let batcher = Batcher::spawn(
            "GetLead",
            move |requests: Vec<GetLeadRequest>| {
                let seen = seen.clone();
                async move {
                    let bytes: usize = requests.iter().map(prost::Message::encoded_len).sum();
                    if let Ok(mut sizes) = seen.lock() {
                        sizes.push(bytes);
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    Ok(requests.iter().map(|_| Ok("batched".to_owned())).collect())
                }
            },
            move |_: GetLeadRequest| busy("alone".to_owned()),
        );
        // 700 KiB each: at most two fit in a batch.
        let calls: Vec<_> = (0..12)
            .map(|_| {
                let batcher = batcher.clone();
                let big = GetLeadRequest {
                    lead_id: "x".repeat(700 * 1024),
                };
                tokio::spawn(async move { batcher.call(big).await })
            })
            .collect();
        for call in calls {
            call.await.expect("task").expect("answered");
        }
        let sizes = sizes.lock().expect("sizes").clone();
        assert!(!sizes.is_empty(), "some were batched");
        // What a gRPC server takes by default.
        let limit = 4 * 1024 * 1024;
        assert!(sizes.iter().all(|bytes| *bytes < limit), "{sizes:?}");
    }

    #[tokio::test]
    async fn a_failed_batch_fails_each_of_its_calls_with_its_status() {
        let batcher = Batcher::spawn(
            "GetLead",
            |_: Vec<GetLeadRequest>| async {
                Err::<Vec<Answer<String>>, _>(Status::unavailable("service down"))
            },
            |_: GetLeadRequest| async { Err(Status::unavailable("service down")) },
        );
        let calls: Vec<_> = (0..20)
            .map(|n| {
                let batcher = batcher.clone();
                tokio::spawn(async move { batcher.call(request(n)).await })
            })
            .collect();
        for call in calls {
            let status = call.await.expect("task").expect_err("failed");
            assert_eq!(status.code(), Code::Unavailable);
        }
    }
}
