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

/// Asks the learner for weights newer than `version` (0: none held). An
/// answer that is not one (another body, or one that cannot be opened) is
/// an error: it means another run's learner, or a bug.
pub fn ask(client: &ParamsClient, actor_id: u32, version: u64) -> Result<Fetched> {
    let request = Body::ParamsRequest(ParamsRequest { actor_id, version });
    match client.request(&request, PATIENCE) {
        Ok(Ok(Body::Params(params))) => Ok(Fetched::Params(Box::new(params))),
        Ok(Ok(Body::UpToDate(_))) => Ok(Fetched::UpToDate),
        Ok(Ok(other)) => bail!("the learner answered a params request with {}", other.kind()),
        Ok(Err(ProtocolError::RefusedByPeer(why))) if why.worth_retrying() => {
            // Sealed before the learner started (it was resumed meanwhile),
            // or a copy it had taken: asked again a second later.
            tracing::warn!("the learner refused the params request ({why}); asking again in 1 s");
            std::thread::sleep(std::time::Duration::from_secs(1));
            Ok(Fetched::NoAnswer)
        }
        Ok(Err(ProtocolError::Unauthenticated)) => {
            // Not opened: damaged or forged on the way (another run's key
            // shows as the learner's `Unreadable` refusal instead). Asked again.
            tracing::warn!("the learner's answer could not be opened; asking again in 1 s");
            std::thread::sleep(std::time::Duration::from_secs(1));
            Ok(Fetched::NoAnswer)
        }
        Ok(Err(e)) => Err(e).context("the learner's answer was refused"),
        Err(TransportError::TimedOut) => Ok(Fetched::NoAnswer),
        Err(e) => Err(e.into()),
    }
}

/// Loads the learner's weights into `model`.
pub fn load(model: &mut Model, params: &Params) -> Result<()> {
    model
        .load_params(params)
        .context("loading the learner's weights (is the actor's --preset/--game the learner's?)")
}
