//! A TCP proxy that can be cut: what a database outage looks like to the server. Cutting it
//! closes the listener (new connections are refused) and resets every open connection;
//! restoring it listens on the same port again.

use std::sync::{Arc, Mutex};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

pub struct TcpProxy {
    pub port: u16,
    upstream: String,
    /// The accept loop, and every connection's copy task (aborted on cut).
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl TcpProxy {
    /// Forwards 127.0.0.1:<free port> to `upstream` (`host:port`).
    pub async fn start(upstream: &str) -> TcpProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let proxy = TcpProxy {
            port,
            upstream: upstream.to_owned(),
            tasks: Arc::new(Mutex::new(Vec::new())),
        };
        proxy.serve(listener);
        proxy
    }

    fn serve(&self, listener: TcpListener) {
        let upstream = self.upstream.clone();
        let tasks = self.tasks.clone();
        let accept = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let upstream = upstream.clone();
                let copy = tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                tasks.lock().unwrap().push(copy);
            }
        });
        self.tasks.lock().unwrap().push(accept);
    }

    /// The outage: no new connection is accepted, and the open ones are dropped.
    pub fn cut(&self) {
        for task in self.tasks.lock().unwrap().drain(..) {
            task.abort();
        }
    }

    /// The database is back, on the same port.
    pub async fn restore(&self) {
        let listener =
            TcpListener::bind(("127.0.0.1", self.port)).await.expect("listen on the same port");
        self.serve(listener);
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.cut();
    }
}
