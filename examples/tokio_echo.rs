//! An async echo server: ustack's tokio sockets (the `tokio` feature).
//!
//! Each connection is a task that copies what it reads back to the peer
//! until the peer's FIN, then closes its side. A UDP echo runs on the same
//! port number.
//!
//! `tokio_echo [PORT]` (default 7008) on the stack the `USTACK_*`
//! variables describe; run it inside a network namespace of your own.

use std::io;
use std::net::{Ipv6Addr, SocketAddr};

use tokio::io::AsyncWriteExt;
use ustack::api::Stack;
use ustack::tokio::{TcpListener, TcpStream, UdpSocket};

async fn echo(stream: TcpStream) -> io::Result<u64> {
    let (rd, mut wr) = stream.into_split();
    // Reads of 64 KiB (tokio::io::copy's own buffer is 8 KiB): fewer
    // trips to the stack per byte.
    let mut rd = tokio::io::BufReader::with_capacity(64 * 1024, rd);
    let n = tokio::io::copy_buf(&mut rd, &mut wr).await?;
    wr.shutdown().await?; // FIN; dropping the halves then closes
    Ok(n)
}

async fn udp_echo(socket: UdpSocket) -> io::Result<()> {
    let mut buf = vec![0u8; 65536];
    loop {
        let (n, from) = socket.recv_from(&mut buf).await?;
        socket.send_to(&buf[..n], from).await?;
    }
}

async fn run(port: u16) -> io::Result<()> {
    let stack = Stack::from_env()?;
    let addr = SocketAddr::from((Ipv6Addr::UNSPECIFIED, port));
    let listener = TcpListener::bind(&stack, addr).await?;
    let udp = UdpSocket::bind(&stack, addr).await?;
    tokio::spawn(async move {
        if let Err(e) = udp_echo(udp).await {
            eprintln!("tokio_echo: udp: {e}");
        }
    });
    eprintln!("tokio_echo: listening on port {port} (TCP and UDP)");
    loop {
        let (stream, peer) = listener.accept().await?;
        tokio::spawn(async move {
            match echo(stream).await {
                Ok(n) => eprintln!("tokio_echo: {peer}: echoed {n} bytes"),
                Err(e) => eprintln!("tokio_echo: {peer}: {e}"),
            }
        });
    }
}

#[tokio::main]
async fn main() {
    let port = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(7008);
    if let Err(e) = run(port).await {
        eprintln!("tokio_echo: {e}");
        std::process::exit(1);
    }
}
