//! The recurrent states of every environment a policy acts for, on the
//! model's device, one row per environment: a pass gathers the rows of its
//! batch and scatters the new states back, one indexed copy per tensor
//! however many groups the batch mixes. A batch of every row in order (an
//! actor playing its environments in lockstep) takes the pool as it is.

use tch::{Device, Tensor};

use wire::config::ModelConfig;

use crate::model::AgentState;

/// One environment's row in the pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Row(pub(crate) i64);

impl Row {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

pub struct StatePool {
    state: AgentState,
    free: Vec<i64>,
    cfg: ModelConfig,
    device: Device,
}

impl StatePool {
    pub fn new(cfg: &ModelConfig, device: Device) -> Self {
        StatePool {
            state: AgentState::zeros(cfg, 0, device),
            free: Vec::new(),
            cfg: cfg.clone(),
            device,
        }
    }

    /// Rows held, in use or free.
    pub fn capacity(&self) -> i64 {
        self.state.batch()
    }

    /// `n` rows holding the zero state, the lowest free ones first; the pool
    /// grows when it has too few, by at least its size (so growing is rare),
    /// and to exactly `n` rows the first time (an actor's pool is its envs).
    pub fn allocate(&mut self, n: usize) -> Vec<Row> {
        if self.free.len() < n {
            let old = self.capacity();
            let grow = old.max((n - self.free.len()) as i64);
            let extra = AgentState::zeros(&self.cfg, grow, self.device);
            for (t, more) in self.state.tensors_mut().into_iter().zip(extra.tensors()) {
                *t = Tensor::cat(&[&*t, more], 0);
            }
            self.free.extend(old..old + grow);
            // Lowest last: `pop` hands them out first.
            self.free.sort_unstable_by(|a, b| b.cmp(a));
        }
        let rows: Vec<i64> = (0..n).map(|_| self.free.pop().expect("grown above")).collect();
        let index = Tensor::from_slice(&rows).to_device(self.device);
        for t in self.state.tensors_mut() {
            let _ = t.index_fill_(0, &index, 0.0);
        }
        rows.into_iter().map(Row).collect()
    }

    pub fn release(&mut self, rows: &[Row]) {
        self.free.extend(rows.iter().map(|r| r.0));
        self.free.sort_unstable_by(|a, b| b.cmp(a));
    }

    /// True when `rows` are every row of the pool, in order.
    fn is_everything(&self, rows: &[Row]) -> bool {
        rows.len() as i64 == self.capacity()
            && rows.iter().enumerate().all(|(i, r)| r.0 == i as i64)
    }

    /// The states of `rows`, in their order.
    pub fn gather(&self, rows: &[Row]) -> AgentState {
        if self.is_everything(rows) {
            return self.state.shallow_clone();
        }
        let index = self.index(rows);
        self.state.map(|t| t.index_select(0, &index))
    }

    /// Stores `update` (one state per row of `rows`, in their order).
    pub fn scatter(&mut self, rows: &[Row], update: &AgentState) {
        if self.is_everything(rows) {
            self.state = update.shallow_clone();
            return;
        }
        let index = self.index(rows);
        for (t, new) in self.state.tensors_mut().into_iter().zip(update.tensors()) {
            let _ = t.index_copy_(0, &index, new);
        }
    }

    fn index(&self, rows: &[Row]) -> Tensor {
        let rows: Vec<i64> = rows.iter().map(|r| r.0).collect();
        Tensor::from_slice(&rows).to_device(self.device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn first_value(state: &AgentState, row: i64) -> f64 {
        state.tensors()[0].get(row).flatten(0, -1).double_value(&[0])
    }

    /// Rows come back zeroed and are reused after release; a scatter to some
    /// rows leaves the others alone, whether the batch is part of the pool
    /// or all of it.
    #[test]
    fn rows_are_zeroed_reused_and_written_only_where_asked() {
        let cfg = ModelConfig::small(3);
        let mut pool = StatePool::new(&cfg, Device::Cpu);
        let a = pool.allocate(3);
        assert_eq!(a, vec![Row(0), Row(1), Row(2)]);
        let capacity = pool.capacity();
        let ones = |n| AgentState::zeros(&cfg, n, Device::Cpu).map(|t| t.ones_like());
        pool.scatter(&a[1..2], &ones(1));
        let all: Vec<Row> = (0..capacity).map(Row).collect();
        let state = pool.gather(&all);
        assert_eq!((first_value(&state, 0), first_value(&state, 1)), (0.0, 1.0));
        pool.scatter(&all, &ones(capacity));
        assert_eq!(first_value(&pool.gather(&[Row(2)]), 0), 1.0);
        pool.release(&a[1..2]);
        let again = pool.allocate(1);
        assert_eq!(again, vec![Row(1)], "the freed row is reused");
        assert_eq!(first_value(&pool.gather(&again), 0), 0.0, "and starts from zero");
        assert_eq!(pool.capacity(), capacity);
    }
}
