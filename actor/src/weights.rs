//! Asking the learner for its newest weights, the same way for training
//! ([`crate::inference::Local`]) and evaluation ([`crate::evaluation`]).

use anyhow::{bail, Context, Result};

use agent::model::Model;
use wire::protocol::{Body, Params, ParamsRequest, ProtocolError};
use wire::transport::{ParamsClient, TransportError};

use crate::addresses::PATIENCE;

/// What the learner answered a params request with.
pub enum Fetched {
    /// Weights of a version other than the one held.
    Params(Box<Params>),
    /// The version held is the newest.
    UpToDate,
    /// No answer within [`PATIENCE`], or the learner refused the request.
    NoAnswer,
}

/// Asks the learner for weights newer than `version` (0: none held). A
/// request the learner refused as stale or replayed, and an answer that
/// cannot be opened (damaged or forged on the way), are asked for again a
/// second later. Any other answer that is not one (another body, a refusal
/// as unreadable or invalid) is an error: it means another run's learner, or
/// a bug.
pub fn ask(client: &ParamsClient, actor_id: u32, version: u64) -> Result<Fetched> {
    let request = Body::ParamsRequest(ParamsRequest { actor_id, version });
    match client.request(&request, PATIENCE) {
        Ok(Ok(Body::Params(params))) => Ok(Fetched::Params(Box::new(params))),
        Ok(Ok(Body::UpToDate(_))) => Ok(Fetched::UpToDate),
        Ok(Ok(other)) => bail!("the learner answered a params request with {}", other.kind()),
        // Sealed before the learner started (it was resumed meanwhile), a
        // copy it had taken, or an answer damaged on the way (another run's
        // key shows as the learner's `Unreadable` refusal instead).
        Ok(Err(e)) if worth_asking_again(&e) => {
            tracing::warn!("params request: {e}; asking again in 1 s");
            std::thread::sleep(std::time::Duration::from_secs(1));
            Ok(Fetched::NoAnswer)
        }
        Ok(Err(e)) => Err(e).context("the learner's answer was refused"),
        Err(TransportError::TimedOut) => Ok(Fetched::NoAnswer),
        Err(e) => Err(e.into()),
    }
}

fn worth_asking_again(e: &ProtocolError) -> bool {
    match e {
        ProtocolError::RefusedByPeer(why) => why.worth_retrying(),
        ProtocolError::Unauthenticated => true,
        _ => false,
    }
}

/// Loads the learner's weights into `model`.
pub fn load(model: &mut Model, params: &Params) -> Result<()> {
    model
        .load_params(params)
        .context("loading the learner's weights (is the actor's --preset/--game the learner's?)")
}
