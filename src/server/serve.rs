//! The accept loop of the gRPC port: at most `server.max_connections`
//! connections open at once, each served by its own task
//! ([`super::lifetime`]), and a stop that closes the listener, sends every
//! connection GOAWAY and waits for them to close.

use std::{future::Future, io, pin::pin, sync::Arc, time::Duration};

use tokio::{
    net::{TcpListener, TcpStream},
    sync::{OwnedSemaphorePermit, Semaphore, watch},
    task::JoinSet,
};

use super::{ServeError, lifetime::Connections};

/// Pause after a failed accept (out of file descriptors, say), so that the
/// loop does not spin while the condition lasts.
const ACCEPT_RETRY: Duration = Duration::from_millis(50);

/// Serves `listener` until `stop` completes; then closes it and waits until
/// every connection has closed. Dropping the future (the shutdown grace ran
/// out) drops every connection with it.
pub(super) async fn serve(
    listener: TcpListener,
    connections: Connections,
    stop: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    let connections = Arc::new(connections);
    let slots = Arc::new(Semaphore::new(connections.max_connections()));
    let (stopping_tx, stopping) = watch::channel(false);
    let mut open = JoinSet::new();
    let mut stop = pin!(stop);
    loop {
        // Finished connections leave the set here; at most
        // `max_connections` of them wait for it.
        while open.try_join_next().is_some() {}
        let (tcp, slot) = tokio::select! {
            () = &mut stop => break,
            accepted = accept(&listener, &slots) => accepted,
        };
        open.spawn(connections.clone().serve(tcp, slot, stopping.clone()));
    }
    // Closing the listener first: new clients are refused by the kernel
    // instead of waiting in a queue nobody reads.
    drop(listener);
    let _ = stopping_tx.send(true);
    while open.join_next().await.is_some() {}
    Ok(())
}

/// The next connection, once a slot is free: until then, clients wait in
/// the kernel's accept queue (their connect completes, nothing is served).
async fn accept(
    listener: &TcpListener,
    slots: &Arc<Semaphore>,
) -> (TcpStream, OwnedSemaphorePermit) {
    let Ok(slot) = slots.clone().acquire_owned().await else {
        // The semaphore is never closed.
        return std::future::pending().await;
    };
    loop {
        match listener.accept().await {
            Ok((tcp, _)) => {
                // Answers leave as soon as they are written (as tonic set it).
                if let Err(error) = tcp.set_nodelay(true) {
                    tracing::debug!(%error, "cannot set TCP_NODELAY");
                }
                return (tcp, slot);
            }
            // A client that gave up while queued: nothing to wait out.
            Err(error)
                if matches!(
                    error.kind(),
                    io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
                ) =>
            {
                tracing::debug!(%error, "accept failed");
            }
            Err(error) => {
                tracing::warn!(%error, "accept failed; retrying");
                tokio::time::sleep(ACCEPT_RETRY).await;
            }
        }
    }
}
