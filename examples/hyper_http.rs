//! An HTTP/1.1 server with hyper 1.x on ustack's tokio sockets (the
//! `tokio` feature), through hyper-util's `TokioIo` adapter.
//!
//! `GET` of any path answers a fixed body; `POST` answers with the body it
//! was sent; other methods get 405.
//!
//! `hyper_http [PORT]` (default 8080) on the stack the `USTACK_*`
//! variables describe; run it inside a network namespace of your own.

use std::convert::Infallible;
use std::io;
use std::net::{Ipv6Addr, SocketAddr};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use ustack::api::Stack;
use ustack::tokio::TcpListener;

/// What `GET` serves.
const BODY: &str = "hello from hyper on ustack\n";

async fn handle(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let reply = |status: StatusCode, body: Bytes| {
        let mut r = Response::new(Full::new(body));
        *r.status_mut() = status;
        Ok(r)
    };
    match *req.method() {
        Method::GET => reply(StatusCode::OK, Bytes::from_static(BODY.as_bytes())),
        Method::POST => match req.into_body().collect().await {
            Ok(body) => reply(StatusCode::OK, body.to_bytes()),
            Err(e) => reply(StatusCode::BAD_REQUEST, Bytes::from(format!("{e}\n"))),
        },
        _ => reply(StatusCode::METHOD_NOT_ALLOWED, Bytes::new()),
    }
}

async fn run(port: u16) -> io::Result<()> {
    let stack = Stack::from_env()?;
    let listener =
        TcpListener::bind(&stack, SocketAddr::from((Ipv6Addr::UNSPECIFIED, port))).await?;
    eprintln!("hyper_http: listening on port {port}");
    loop {
        let (stream, peer) = listener.accept().await?;
        tokio::spawn(async move {
            let conn =
                http1::Builder::new().serve_connection(TokioIo::new(stream), service_fn(handle));
            if let Err(e) = conn.await {
                eprintln!("hyper_http: {peer}: {e}");
            }
        });
    }
}

#[tokio::main]
async fn main() {
    let port = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(8080);
    if let Err(e) = run(port).await {
        eprintln!("hyper_http: {e}");
        std::process::exit(1);
    }
}
