//! One batched policy for both inference modes (docs/architecture.md, One
//! batched policy): the actor runs it in its own process in the actors'
//! mode, the learner's serve thread under central inference. It owns
//!
//! - the recurrent state of every environment it acts for, one row each in
//!   a pool on the model's device ([`StatePool`]);
//! - the pass observations -> actions: one forward over the current step of
//!   every environment of the requests, the actions sampled next to the
//!   policy head from a seeded generator ([`Sampler`]), and the answers;
//! - the unrolls ([`UnrollStore`], the one place where turnover and step
//!   alignment are written): a pass returns the unrolls it completed.
//!
//! The callers keep what differs: the actor its environments and its
//! socket to the learner, the learner its streams, their admission and the
//! sockets. Requests and answers are the wire's [`Observations`] and
//! [`Actions`] in both modes, so the actor reads an answer the same way
//! whoever computed it. (SEED RL has the same shape: an inference function
//! over per-environment state, and an unroll store whose `append` returns
//! the unrolls it completed.)

mod sampler;
mod state_pool;
mod unroll_store;

pub use sampler::{Sampler, Sampling};
pub use state_pool::{Row, StatePool};
pub use unroll_store::{EnvId, UnrollStore};

use tch::{Device, Kind, Tensor};

use wire::protocol::{ActionSteps, Actions, Array, AttentionMaps, Observations, Trajectory};
use wire::unroll::Step;

use crate::model::{AgentState, Model, Unroll};

/// One group's current step, and the rows of its environments in order.
pub struct Request<'a> {
    pub observations: &'a Observations,
    pub rows: &'a [Row],
}

/// What one pass gives back.
pub struct Acted {
    /// One per request, in their order.
    pub answers: Vec<Actions>,
    /// The unrolls the pass completed.
    pub unrolls: Vec<Trajectory>,
}

pub struct BatchedPolicy {
    model: Model,
    version: u64,
    pool: StatePool,
    /// The action each row took last: its model input at the next step.
    last_action: Vec<i64>,
    sampler: Sampler,
    /// `None`: no unrolls are assembled (evaluation).
    unrolls: Option<UnrollStore>,
    device: Device,
}

impl BatchedPolicy {
    /// `model` holds the weights of `version`; `seed` seeds the sampler.
    pub fn new(model: Model, version: u64, unrolls: Option<UnrollStore>, seed: u64) -> Self {
        let device = model.vs.device();
        BatchedPolicy {
            pool: StatePool::new(&model.cfg, device),
            model,
            version,
            last_action: Vec::new(),
            sampler: Sampler::new(seed),
            unrolls,
            device,
        }
    }

    pub fn model(&self) -> &Model {
        &self.model
    }

    /// The params version of the weights acted with.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Acts with the weights `load` puts into the model, of `version`, from
    /// the next pass on; a failed load keeps the version held.
    pub fn load<E>(
        &mut self,
        version: u64,
        load: impl FnOnce(&mut Model) -> Result<(), E>,
    ) -> Result<(), E> {
        load(&mut self.model)?;
        self.version = version;
        Ok(())
    }

    /// Rows for `n` new environments, `first_env..first_env + n` of `actor`:
    /// zero state, last action 0, an empty unroll.
    pub fn add(&mut self, actor: u32, first_env: u32, n: usize) -> Vec<Row> {
        let rows = self.pool.allocate(n);
        for (k, &row) in rows.iter().enumerate() {
            if self.last_action.len() <= row.index() {
                self.last_action.resize(row.index() + 1, 0);
            }
            self.last_action[row.index()] = 0;
            if let Some(store) = &mut self.unrolls {
                store.start(row, EnvId { actor, env: first_env + k as u32 });
            }
        }
        rows
    }

    /// Frees rows; their unfinished unrolls are dropped.
    pub fn remove(&mut self, rows: &[Row]) {
        if let Some(store) = &mut self.unrolls {
            rows.iter().for_each(|&row| store.stop(row));
        }
        self.pool.release(rows);
    }

    /// Rows held by the state pool, in use or free.
    pub fn capacity(&self) -> i64 {
        self.pool.capacity()
    }

    /// One forward pass over the current step of every environment of the
    /// (validated) requests, their actions, the answers, and the unrolls
    /// completed.
    pub fn act(&mut self, requests: &[Request], sampling: Sampling) -> Acted {
        let batch = self.inputs(requests);
        let before = self.pool.gather(&batch.rows);
        let (out, after) = self.model.act(&batch.input, &before);
        self.pool.scatter(&batch.rows, &after);
        let outputs = Outputs {
            logits: to_f32(&out.policy_logits),
            baseline: to_f32(&out.baseline),
            maps: (!batch.recorded.is_empty()).then(|| {
                let index = Tensor::from_slice(&batch.recorded).to_device(self.device);
                let pick = |t: &Tensor| to_f32(&t.squeeze_dim(0).index_select(0, &index));
                [pick(&out.attention), pick(&out.attention_content), pick(&out.attention_place)]
            }),
        };
        let a = self.model.cfg.num_actions;
        let action: Vec<i64> = (0..batch.rows.len())
            .map(|j| self.sampler.choose(&outputs.logits[j * a..(j + 1) * a], sampling) as i64)
            .collect();
        let unrolls = self.assemble(requests, &batch, &before, &outputs.logits, &action);
        for (row, &action) in batch.rows.iter().zip(&action) {
            self.last_action[row.index()] = action;
        }
        Acted { answers: self.answers(requests, &action, &outputs), unrolls }
    }

    /// The requests stacked into one `[1, N, ...]` input on the device.
    fn inputs(&self, requests: &[Request]) -> Inputs {
        let cfg = &self.model.cfg;
        let total: usize = requests.iter().map(|r| r.observations.envs()).sum();
        let mut frames = Vec::with_capacity(total * cfg.frame_len());
        let (mut reward, mut done, mut last_action, mut rows) = (
            Vec::with_capacity(total),
            Vec::with_capacity(total),
            Vec::with_capacity(total),
            Vec::with_capacity(total),
        );
        let mut recorded = Vec::new();
        for request in requests {
            let o = request.observations;
            assert_eq!(o.envs(), request.rows.len(), "one row per environment");
            frames.extend_from_slice(&o.frame.data);
            reward.extend(o.reward.to_f32("reward").expect("validated"));
            for (e, &row) in request.rows.iter().enumerate() {
                if o.record.data[e] == 1 {
                    recorded.push(rows.len() as i64);
                }
                done.push(o.done.data[e] == 1);
                last_action.push(self.last_action[row.index()]);
                rows.push(row);
            }
        }
        let n = total as i64;
        let to_dev = |t: Tensor| t.to_device(self.device);
        let shape = [1, n, cfg.height as i64, cfg.width as i64, cfg.in_channels as i64];
        let input = Unroll {
            frame: to_dev(Tensor::from_slice(&frames).view(shape)),
            reward: to_dev(Tensor::from_slice(&reward).view([1, n])),
            done: to_dev(Tensor::from_slice(&done).view([1, n])),
            last_action: to_dev(Tensor::from_slice(&last_action).view([1, n])),
        };
        Inputs { input, rows, recorded, reward, done, last_action }
    }

    /// Appends every environment's step to its unroll; returns the unrolls
    /// completed. `before` holds the states before this step, in batch order.
    fn assemble(
        &mut self,
        requests: &[Request],
        batch: &Inputs,
        before: &AgentState,
        logits: &[f32],
        action: &[i64],
    ) -> Vec<Trajectory> {
        let Some(store) = &mut self.unrolls else { return Vec::new() };
        let cfg = &self.model.cfg;
        let rows = &batch.rows;
        // The state before this step, on the CPU, of only the rows whose
        // unroll starts or turns over here (a paper-sized state is half a
        // megabyte): one gather and one copy for the whole pass.
        let needs: Vec<i64> =
            (0..rows.len()).filter(|&j| store.needs_state(rows[j])).map(|j| j as i64).collect();
        let states = (!needs.is_empty()).then(|| {
            let index = Tensor::from_slice(&needs).to_device(self.device);
            before.map(|t| t.index_select(0, &index).to_device(Device::Cpu))
        });
        let state_before = |j: usize| {
            let states: &AgentState = states.as_ref().expect("some unroll needs a state");
            let at = needs.binary_search(&(j as i64)).expect("listed above");
            states.to_protocol(at as i64)
        };
        let (a, frame_len) = (cfg.num_actions, cfg.frame_len());
        let mut unrolls = Vec::new();
        let mut j = 0;
        for request in requests {
            let o = request.observations;
            let returns = o.episode_return.to_f32("episode_return").expect("validated");
            let lengths = o.episode_step.to_i64("episode_step").expect("validated");
            for e in 0..o.envs() {
                let step = Step {
                    frame: &o.frame.data[e * frame_len..(e + 1) * frame_len],
                    reward: batch.reward[j],
                    done: batch.done[j],
                    last_action: batch.last_action[j],
                    action: action[j],
                    policy_logits: &logits[j * a..(j + 1) * a],
                    episode_return: returns[e],
                    episode_step: lengths[e],
                };
                unrolls.extend(store.append(rows[j], &step, self.version, cfg, || state_before(j)));
                j += 1;
            }
        }
        unrolls
    }

    /// One answer per request: its environments' actions, logits and
    /// baselines, and the maps of those it records.
    fn answers(&self, requests: &[Request], action: &[i64], outputs: &Outputs) -> Vec<Actions> {
        let cfg = &self.model.cfg;
        let a = cfg.num_actions;
        let (gh, gw) = cfg.grid();
        let map_len = cfg.heads * gh * gw;
        let (mut j, mut r_at) = (0, 0);
        let mut answers = Vec::with_capacity(requests.len());
        for request in requests {
            let o = request.observations;
            let envs = o.envs();
            let steps = ActionSteps {
                action: Array::from_i64(vec![envs], &action[j..j + envs]),
                policy_logits: Array::from_f32(
                    vec![envs, a],
                    &outputs.logits[j * a..(j + envs) * a],
                ),
                baseline: Array::from_f32(vec![envs], &outputs.baseline[j..j + envs]),
            };
            let rows_recorded = o.record.data.iter().filter(|&&r| r == 1).count();
            let maps = (rows_recorded > 0).then(|| {
                let m = outputs.maps.as_ref().expect("recorded rows");
                let range = r_at * map_len..(r_at + rows_recorded) * map_len;
                let shape = vec![rows_recorded, cfg.heads, gh, gw];
                AttentionMaps {
                    attention: Array::from_f32(shape.clone(), &m[0][range.clone()]),
                    attention_content: Array::from_f32(shape.clone(), &m[1][range.clone()]),
                    attention_place: Array::from_f32(shape, &m[2][range]),
                }
            });
            r_at += rows_recorded;
            answers.push(Actions::from_parts(o.stream, o.seq, self.version, steps, maps));
            j += envs;
        }
        answers
    }
}

/// A pass's input, and what the unrolls need of it, in batch order.
struct Inputs {
    input: Unroll,
    rows: Vec<Row>,
    /// Batch positions of the recorded environments.
    recorded: Vec<i64>,
    reward: Vec<f32>,
    done: Vec<bool>,
    last_action: Vec<i64>,
}

/// A pass's outputs on the CPU: logits [N, A], baselines [N], and the maps
/// of the recorded environments [R, heads, h, w] (attention, content, place).
struct Outputs {
    logits: Vec<f32>,
    baseline: Vec<f32>,
    maps: Option<[Vec<f32>; 3]>,
}

/// A tensor's values as f32 on the CPU, flattened.
fn to_f32(t: &Tensor) -> Vec<f32> {
    Vec::<f32>::try_from(t.to_kind(Kind::Float).to_device(Device::Cpu).contiguous().view([-1]))
        .expect("f32")
}

#[doc(hidden)]
pub mod replay;

#[cfg(test)]
mod tests;
