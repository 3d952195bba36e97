//! Sending one request and waiting for its final response, over UDP (with RFC 3261
//! retransmissions) or TCP (framed by Content-Length), all bounded by one deadline.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::Instant;

use super::message::{self, Response, Transaction};
use super::registrar::Transport;

/// RFC 3261 timer T1 (first retransmission interval) and T2 (its cap).
const T1: Duration = Duration::from_millis(500);
const T2: Duration = Duration::from_secs(4);
/// The largest response siprot reads (a REGISTER answer is a few hundred bytes).
const MAX_RESPONSE: usize = 64 * 1024;

/// Why no final response arrived.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NoAnswer {
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("{0}")]
    Network(String),
    #[error("{0}")]
    Garbled(String),
}

/// A connection to the registrar.
#[derive(Debug)]
pub enum Connection {
    Udp(UdpSocket),
    Tcp { stream: TcpStream, buffer: Vec<u8> },
}

impl Connection {
    pub async fn open(
        transport: Transport,
        peer: SocketAddr,
        deadline: Instant,
        budget: Duration,
    ) -> Result<Self, NoAnswer> {
        match transport {
            Transport::Udp => {
                let local: SocketAddr = if peer.is_ipv4() {
                    ([0, 0, 0, 0], 0).into()
                } else {
                    (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
                };
                let socket = UdpSocket::bind(local)
                    .await
                    .map_err(|e| NoAnswer::Network(format!("cannot open a UDP socket: {e}")))?;
                socket
                    .connect(peer)
                    .await
                    .map_err(|e| NoAnswer::Network(format!("cannot reach {peer}: {e}")))?;
                Ok(Connection::Udp(socket))
            }
            Transport::Tcp => {
                let stream = tokio::time::timeout_at(deadline, TcpStream::connect(peer))
                    .await
                    .map_err(|_| NoAnswer::Timeout(budget))?
                    .map_err(|e| NoAnswer::Network(format!("cannot connect to {peer}: {e}")))?;
                Ok(Connection::Tcp {
                    stream,
                    buffer: Vec::new(),
                })
            }
        }
    }

    /// `host:port` of our end, for the Via header.
    pub fn local_address(&self) -> String {
        let local = match self {
            Connection::Udp(socket) => socket.local_addr(),
            Connection::Tcp { stream, .. } => stream.local_addr(),
        };
        local.map_or_else(|_| "0.0.0.0:0".to_owned(), |a| a.to_string())
    }

    /// Sends `request` and returns the first final (non-1xx) response to it: one that
    /// echoes its Call-ID, CSeq and top Via branch. Any other response is logged and
    /// ignored, and the wait goes on until the answer or the deadline.
    pub async fn exchange(
        &mut self,
        request: &[u8],
        transaction: &Transaction<'_>,
        deadline: Instant,
        budget: Duration,
    ) -> Result<Response, NoAnswer> {
        match self {
            Connection::Udp(socket) => {
                exchange_udp(socket, request, transaction, deadline, budget).await
            }
            Connection::Tcp { stream, buffer } => {
                exchange_tcp(stream, buffer, request, transaction, deadline, budget).await
            }
        }
    }
}

async fn exchange_udp(
    socket: &UdpSocket,
    request: &[u8],
    transaction: &Transaction<'_>,
    deadline: Instant,
    budget: Duration,
) -> Result<Response, NoAnswer> {
    let mut interval = T1;
    let mut datagram = vec![0u8; MAX_RESPONSE];
    loop {
        socket
            .send(request)
            .await
            .map_err(|e| NoAnswer::Network(format!("cannot send: {e}")))?;
        let resend_at = (Instant::now() + interval).min(deadline);
        loop {
            let received = tokio::time::timeout_at(resend_at, socket.recv(&mut datagram)).await;
            let n = match received {
                Err(_) if Instant::now() >= deadline => return Err(NoAnswer::Timeout(budget)),
                Err(_) => break,
                Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                    return Err(NoAnswer::Network(
                        "connection refused (nothing listens on that port)".into(),
                    ));
                }
                Ok(Err(e)) => return Err(NoAnswer::Network(format!("cannot receive: {e}"))),
                Ok(Ok(n)) => n,
            };
            // Anything else on the socket (a stray or garbled datagram, an answer to an
            // earlier request, a forged answer) is not our answer: keep waiting.
            match Response::parse(&datagram[..n]) {
                Ok(response) if is_final_for(&response, transaction) => return Ok(response),
                Ok(response) => log_ignored(&response, transaction),
                Err(e) => log::debug!("sip: ignored a datagram: {e}"),
            }
        }
        interval = (interval * 2).min(T2);
    }
}

async fn exchange_tcp(
    stream: &mut TcpStream,
    buffer: &mut Vec<u8>,
    request: &[u8],
    transaction: &Transaction<'_>,
    deadline: Instant,
    budget: Duration,
) -> Result<Response, NoAnswer> {
    tokio::time::timeout_at(deadline, stream.write_all(request))
        .await
        .map_err(|_| NoAnswer::Timeout(budget))?
        .map_err(|e| NoAnswer::Network(format!("cannot send: {e}")))?;
    loop {
        let message = tokio::time::timeout_at(deadline, read_message(stream, buffer))
            .await
            .map_err(|_| NoAnswer::Timeout(budget))??;
        let response = Response::parse(&message).map_err(|e| NoAnswer::Garbled(e.to_string()))?;
        if is_final_for(&response, transaction) {
            return Ok(response);
        }
        log_ignored(&response, transaction);
    }
}

/// Reads one whole message (headers and Content-Length bytes of body) from the stream.
async fn read_message(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> Result<Vec<u8>, NoAnswer> {
    loop {
        // Keep-alive CRLFs between messages (RFC 5626) are not a message.
        while buffer.starts_with(b"\r\n") {
            buffer.drain(..2);
        }
        if let Some(head_end) = message::find_head_end(buffer) {
            let body = message::content_length(&buffer[..head_end]).ok_or_else(|| {
                NoAnswer::Garbled("a response over TCP without Content-Length".into())
            })?;
            let total = head_end + 4 + body;
            if total > MAX_RESPONSE {
                return Err(NoAnswer::Garbled("the response is too large".into()));
            }
            if buffer.len() >= total {
                return Ok(buffer.drain(..total).collect());
            }
        } else if buffer.len() > MAX_RESPONSE {
            return Err(NoAnswer::Garbled(
                "the response headers are too large".into(),
            ));
        }
        let mut chunk = [0u8; 4096];
        let n = stream
            .read(&mut chunk)
            .await
            .map_err(|e| NoAnswer::Network(format!("cannot receive: {e}")))?;
        if n == 0 {
            return Err(NoAnswer::Network(
                "the registrar closed the connection without answering".into(),
            ));
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
}

fn is_final_for(response: &Response, transaction: &Transaction<'_>) -> bool {
    response.status >= 200 && response.mismatch(transaction).is_none()
}

fn log_ignored(response: &Response, transaction: &Transaction<'_>) {
    match response.mismatch(transaction) {
        Some(why) => log::debug!(
            "sip: ignored {} {}: not an answer to this request ({why})",
            response.status,
            response.reason
        ),
        None => log::debug!("sip: ignored {} {}", response.status, response.reason),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    /// The headers that make a response the answer to [`TRANSACTION`].
    macro_rules! ids {
        () => {
            "Via: SIP/2.0/UDP 127.0.0.1:40000;branch=z9hG4bKb1;rport=40000\r\n\
             Call-ID: c1@siprot\r\nCSeq: 1 REGISTER\r\n"
        };
    }

    const TRANSACTION: Transaction<'static> = Transaction {
        call_id: "c1@siprot",
        cseq: 1,
        method: "REGISTER",
        branch: "z9hG4bKb1",
    };

    const FINAL: &[u8] = concat!(
        "SIP/2.0 200 OK\r\n",
        ids!(),
        "Content-Length: 5\r\n\r\nhello"
    )
    .as_bytes();

    /// A TCP peer that reads the request, then writes `chunks` with a pause between.
    async fn tcp_peer(chunks: Vec<Vec<u8>>) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request).await.unwrap();
            for chunk in chunks {
                stream.write_all(&chunk).await.unwrap();
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
        address
    }

    async fn exchange_with(peer: SocketAddr, transport: Transport) -> Result<Response, NoAnswer> {
        let budget = Duration::from_secs(5);
        let deadline = Instant::now() + budget;
        let mut connection = Connection::open(transport, peer, deadline, budget).await?;
        connection
            .exchange(
                b"REGISTER sip:x SIP/2.0\r\n\r\n",
                &TRANSACTION,
                deadline,
                budget,
            )
            .await
    }

    #[tokio::test]
    async fn tcp_answers_split_across_reads_after_a_provisional_are_framed() {
        let mut chunks = vec![
            b"\r\n".to_vec(),
            concat!("SIP/2.0 100 Trying\r\n", ids!(), "l: 0\r\n\r\n")
                .as_bytes()
                .to_vec(),
        ];
        chunks.extend(FINAL.chunks(7).map(<[u8]>::to_vec));
        let response = exchange_with(tcp_peer(chunks).await, Transport::Tcp)
            .await
            .unwrap();
        assert_eq!(response.status, 200);
    }

    #[tokio::test]
    async fn tcp_answers_without_length_too_large_or_missing_fail_cleanly() {
        let no_length = concat!("SIP/2.0 200 OK\r\n", ids!(), "\r\n")
            .as_bytes()
            .to_vec();
        let error = exchange_with(tcp_peer(vec![no_length]).await, Transport::Tcp)
            .await
            .unwrap_err();
        assert!(matches!(error, NoAnswer::Garbled(ref m) if m.contains("Content-Length")));

        let endless = [
            b"SIP/2.0 200 OK\r\nX: ".to_vec(),
            vec![b'a'; MAX_RESPONSE + 10],
        ]
        .concat();
        let error = exchange_with(tcp_peer(vec![endless]).await, Transport::Tcp)
            .await
            .unwrap_err();
        assert!(matches!(error, NoAnswer::Garbled(ref m) if m.contains("too large")));

        let huge_body = b"SIP/2.0 200 OK\r\nCSeq: 1 REGISTER\r\nContent-Length: 999999\r\n\r\n";
        let error = exchange_with(tcp_peer(vec![huge_body.to_vec()]).await, Transport::Tcp)
            .await
            .unwrap_err();
        assert!(matches!(error, NoAnswer::Garbled(ref m) if m.contains("too large")));

        let error = exchange_with(tcp_peer(vec![]).await, Transport::Tcp)
            .await
            .unwrap_err();
        assert!(matches!(error, NoAnswer::Network(ref m) if m.contains("closed")));
    }

    #[tokio::test]
    async fn udp_retransmits_and_ignores_other_answers() {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let peer = socket.local_addr().unwrap();
        let received = tokio::spawn(async move {
            let mut buffer = [0u8; 4096];
            // The first request goes unanswered (lost); the retransmission gets junk,
            // an answer to another CSeq, then the final answer.
            let (_, from) = socket.recv_from(&mut buffer).await.unwrap();
            let (_, _) = socket.recv_from(&mut buffer).await.unwrap();
            for answer in [
                &b"garbage"[..],
                b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:40000;branch=z9hG4bKb1\r\n\
                  Call-ID: c1@siprot\r\nCSeq: 7 REGISTER\r\n\r\n",
                concat!("SIP/2.0 180 Ringing\r\n", ids!(), "\r\n").as_bytes(),
                FINAL,
            ] {
                socket.send_to(answer, from).await.unwrap();
            }
        });
        let response = exchange_with(peer, Transport::Udp).await.unwrap();
        assert_eq!(response.status, 200);
        assert_eq!(response.cseq(), Some((1, "REGISTER")));
        // Without the retransmission the peer would never have answered.
        received.await.unwrap();
    }

    #[tokio::test]
    async fn tcp_answers_to_another_call_id_or_branch_are_skipped() {
        let forged = [
            "SIP/2.0 403 Forbidden\r\n\
             Via: SIP/2.0/TCP 127.0.0.1:40000;branch=z9hG4bKb1\r\n\
             Call-ID: forged@elsewhere\r\nCSeq: 1 REGISTER\r\nContent-Length: 0\r\n\r\n",
            "SIP/2.0 403 Forbidden\r\n\
             Via: SIP/2.0/TCP 127.0.0.1:40000;branch=z9hG4bKforged\r\n\
             Call-ID: c1@siprot\r\nCSeq: 1 REGISTER\r\nContent-Length: 0\r\n\r\n",
            "SIP/2.0 403 Forbidden\r\nCall-ID: c1@siprot\r\nCSeq: 1 REGISTER\r\n\
             Content-Length: 0\r\n\r\n",
        ];
        let mut chunks: Vec<Vec<u8>> = forged.iter().map(|f| f.as_bytes().to_vec()).collect();
        chunks.push(FINAL.to_vec());
        let response = exchange_with(tcp_peer(chunks).await, Transport::Tcp)
            .await
            .unwrap();
        assert_eq!(response.status, 200);
    }
}
