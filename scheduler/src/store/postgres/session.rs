//! The store's own thread: a current-thread tokio runtime that owns one
//! `tokio-postgres` connection and serves the store's calls one at a time,
//! in the order they were made (see the module doc of [`super`] for why).
//!
//! - [`StoreThread::call`] sends a job (an async closure over the
//!   [`Session`]) and blocks the caller until its answer comes back.
//! - [`Session`] (re)connects when the connection was lost and keeps the
//!   statements it prepared on it, so a statement is parsed once per
//!   connection and later flights carry only its executions.
//! - [`flight`] sends a list of requests in one flight (pipelined: each
//!   one is written before any answer is awaited) and collects every
//!   answer, so a commit costs one round trip whatever it writes.

use futures_util::future::BoxFuture;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::mpsc::SyncSender;
use std::task::Poll;
use tokio_postgres::{Client, Error, NoTls, Row, Statement};

/// One call, run on the store thread with the session.
type Job = Box<dyn for<'s> FnOnce(&'s mut Session) -> BoxFuture<'s, ()> + Send>;

/// The connection and what was prepared on it.
pub(crate) struct Session {
    url: String,
    client: Option<Client>,
    /// Statements prepared on `client`, by their SQL (a fixed set: every
    /// SQL the store runs is written in its source).
    statements: HashMap<String, Statement>,
    /// Drives the connection's I/O; ends when the client is dropped.
    connection: Option<tokio::task::JoinHandle<()>>,
}

impl Session {
    fn new(url: &str) -> Self {
        Session {
            url: url.to_owned(),
            client: None,
            statements: HashMap::new(),
            connection: None,
        }
    }

    /// Connects if there is no connection or the last one was lost.
    async fn connect(&mut self) -> Result<(), Error> {
        if self.client.as_ref().is_some_and(|c| !c.is_closed()) {
            return Ok(());
        }
        self.client = None;
        self.statements.clear();
        let (client, connection) = tokio_postgres::connect(&self.url, NoTls).await?;
        self.connection = Some(tokio::spawn(async move {
            // Its error is the next call's: the client reports itself
            // closed, and that call reconnects.
            let _ = connection.await;
        }));
        self.client = Some(client);
        Ok(())
    }

    /// The client, connected.
    pub async fn client(&mut self) -> Result<&mut Client, Error> {
        self.connect().await?;
        Ok(self.client.as_mut().expect("connected just above"))
    }

    /// The client and `sqls` prepared on it (those not yet prepared on
    /// this connection are prepared in one flight).
    pub async fn prepared(&mut self, sqls: &[&str]) -> Result<(&Client, Vec<Statement>), Error> {
        self.connect().await?;
        let client = self.client.as_ref().expect("connected just above");
        let mut missing: Vec<&str> = sqls
            .iter()
            .copied()
            .filter(|sql| !self.statements.contains_key(*sql))
            .collect();
        missing.sort_unstable();
        missing.dedup();
        let prepared = flight(missing.iter().map(|sql| client.prepare(sql)).collect()).await;
        for (sql, statement) in missing.iter().zip(prepared) {
            self.statements.insert((*sql).to_owned(), statement?);
        }
        let statements = sqls
            .iter()
            .map(|sql| self.statements[*sql].clone())
            .collect();
        Ok((client, statements))
    }

    /// Runs one query (prepared once per connection) and returns its rows.
    pub async fn query(
        &mut self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<Row>, Error> {
        let (client, statements) = self.prepared(&[sql]).await?;
        client.query(&statements[0], params).await
    }

    /// Drops the client and lets the connection say goodbye to the server.
    async fn close(&mut self) {
        self.client = None;
        if let Some(connection) = self.connection.take() {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(1), connection).await;
        }
    }
}

/// Polls `requests` together until all are answered, each first polled in
/// the list's order: a `tokio-postgres` request is written to the
/// connection on its first poll, so they leave in that order, in one flight,
/// and the server runs them in that order. Answers come back in order too.
pub(crate) async fn flight<F: Future>(requests: Vec<F>) -> Vec<F::Output> {
    let mut requests: Vec<Pin<Box<F>>> = requests.into_iter().map(Box::pin).collect();
    let mut answers: Vec<Option<F::Output>> = requests.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut waiting = false;
        for (request, answer) in requests.iter_mut().zip(answers.iter_mut()) {
            if answer.is_none() {
                match request.as_mut().poll(cx) {
                    Poll::Ready(out) => *answer = Some(out),
                    Poll::Pending => waiting = true,
                }
            }
        }
        if waiting {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    answers.into_iter().flatten().collect()
}

/// The thread, and the queue of calls it serves.
pub(crate) struct StoreThread {
    jobs: Option<tokio::sync::mpsc::UnboundedSender<Job>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl StoreThread {
    /// Starts the thread `name` (as `ps -L` and `/proc/PID/task` show it)
    /// for the database at `url`; it connects on the first call.
    pub fn start(url: &str, name: &str) -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (jobs, mut queue) = tokio::sync::mpsc::unbounded_channel::<Job>();
        let mut session = Session::new(url);
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                runtime.block_on(async move {
                    while let Some(job) = queue.recv().await {
                        job(&mut session).await;
                    }
                    session.close().await;
                });
            })?;
        Ok(StoreThread {
            jobs: Some(jobs),
            thread: Some(thread),
        })
    }

    /// Runs `f` on the store thread and waits for its answer; None if the
    /// thread is gone (a job panicked).
    pub fn call<R, F>(&self, f: F) -> Option<R>
    where
        R: Send + 'static,
        F: for<'s> FnOnce(&'s mut Session) -> BoxFuture<'s, R> + Send + 'static,
    {
        let (reply, answer) = std::sync::mpsc::sync_channel(1);
        self.jobs.as_ref()?.send(job(f, reply)).ok()?;
        answer.recv().ok()
    }
}

fn job<R, F>(f: F, reply: SyncSender<R>) -> Job
where
    R: Send + 'static,
    F: for<'s> FnOnce(&'s mut Session) -> BoxFuture<'s, R> + Send + 'static,
{
    Box::new(move |session| {
        Box::pin(async move {
            let _ = reply.send(f(session).await);
        })
    })
}

impl Drop for StoreThread {
    fn drop(&mut self) {
        // Closing the queue ends the thread's loop; it closes the
        // connection and returns.
        self.jobs = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[test]
    fn a_flight_first_polls_its_requests_in_order_and_answers_in_order() {
        let polled = Arc::new(Mutex::new(Vec::new()));
        let requests: Vec<_> = (0..40)
            .map(|i| {
                let polled = polled.clone();
                async move {
                    polled.lock().unwrap_or_else(|p| p.into_inner()).push(i);
                    // Later requests answer first.
                    tokio::time::sleep(std::time::Duration::from_millis(40 - i)).await;
                    i
                }
            })
            .collect();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let answers = runtime.block_on(flight(requests));
        assert_eq!(answers, (0..40).collect::<Vec<_>>());
        let order = polled.lock().unwrap_or_else(|p| p.into_inner()).clone();
        assert_eq!(order, (0..40).collect::<Vec<_>>());
    }
}
