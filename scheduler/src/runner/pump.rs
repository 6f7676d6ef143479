//! Carrying out the engine's actions, without I/O of its own: changes go to
//! a [`Store`] (and back to the engine, as its contract asks), calls and
//! replies to an [`Outbox`]. The tokio runner pumps through this, and so do
//! tests and the whole-system simulation, with outboxes of their own.

use crate::engine::{Action, Call, Engine, EngineError, Now, OperatorCall, Reply, RequestId};
use crate::model::change::Change;
use crate::model::job::Revision;
use crate::store::{Store, StoreError};

/// Where the engine's calls and replies go.
pub trait Outbox {
    /// A call for the master.
    fn send(&mut self, call: Call);
    /// The answer to API request `request`.
    fn reply(&mut self, request: RequestId, result: Result<Reply, EngineError>);
    /// A call for the master's operator API; its outcome goes back to
    /// [`Engine::on_operator_result`]. Dropped by default (with a warning):
    /// an outbox without an operator client cannot take hosts DOWN, and
    /// they stay DRAINED.
    fn operator(&mut self, call: OperatorCall) {
        tracing::warn!(?call, "no operator API client: maintenance call dropped");
    }
    /// How a write went, just before the engine hears it (for health and
    /// metrics); nothing by default.
    fn stored(&mut self, _result: &Result<Revision, StoreError>) {}
    /// The store refused a commit because a newer leader claimed it
    /// ([`StoreError::Fenced`]): this replica is deposed. Nothing more is
    /// carried out (the engine does not hear of it, so it sends nothing
    /// more); the runner's outbox ends the process.
    fn fenced(&mut self, mine: crate::store::Epoch, current: crate::store::Epoch) {
        tracing::error!(mine, current, "fenced by a newer leader: stopping");
    }
    /// `change` was committed as `revision` and the engine has taken it
    /// in (its registry is what the revision left), for the watch log;
    /// nothing by default.
    fn committed(&mut self, _change: &Change, _revision: Revision, _engine: &Engine) {}
}

/// Carries out `actions` in order: a change is written in one transaction
/// and reported to the engine, whose answer is carried out before anything
/// else; `now` is read for each report.
pub fn carry_out(
    engine: &mut Engine,
    store: &mut dyn Store,
    mut actions: Vec<Action>,
    now: &mut dyn FnMut() -> Now,
    out: &mut dyn Outbox,
) {
    loop {
        let mut change = None;
        for action in actions {
            match action {
                Action::Persist(c) => change = Some(c),
                Action::Send(call) => out.send(call),
                Action::Operator(call) => out.operator(call),
                Action::Reply { request, result } => out.reply(request, result),
            }
        }
        let Some(change) = change else {
            return;
        };
        let result = store.commit(&change);
        if let Err(StoreError::Fenced { mine, current }) = result {
            out.fenced(mine, current);
            return;
        }
        out.stored(&result);
        let committed = result.as_ref().ok().copied();
        actions = engine.on_persisted(&change, result, now());
        if let Some(revision) = committed {
            out.committed(&change, revision, engine);
        }
    }
}
