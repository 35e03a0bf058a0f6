//! A lean HTTP/1.1 client for the load generators: one kept-alive
//! connection per client task, each request written in one piece and its
//! answer read by its length.
//!
//! The generators share the machine's two cores with the server they
//! measure. Through reqwest a request cost the generator about 19 us of
//! CPU (its pool, a task per connection, the channel between them), a
//! third of what one inclusion proof cost both processes together, so the
//! server was measured with the CPU the generator left it (BENCHMARKS.md,
//! issue 18). Here a request is a write and a read on the caller's own
//! connection. Plain `http://` only: an `https://` log is driven through
//! reqwest ([`Client`]).

use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// Longest one attempt at a request may take, connection included (as
/// reqwest's timeout was); a GET sent again gets a second.
const TIMEOUT: Duration = Duration::from_secs(30);

/// Largest body read (the largest page or tile is far smaller).
const MAX_BODY: usize = 64 * 1024 * 1024;

/// Most bytes of headers read before giving up on a response.
const MAX_HEAD: usize = 64 * 1024;

/// What went wrong with one request. The connection is closed after any of
/// them; the next request opens a new one.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HttpError {
    #[error("connecting to {0}: {1}")]
    Connect(String, std::io::Error),
    #[error("reading or writing: {0}")]
    Io(#[from] std::io::Error),
    #[error("the server closed the connection before its answer was complete")]
    Closed,
    #[error("the connection failed before any answer: {0}")]
    NoAnswer(String),
    #[error("the answer is not HTTP/1.1 the client understands: {0}")]
    Malformed(String),
    #[error("no answer within {TIMEOUT:?}")]
    Timeout,
}

/// An answer: its status and its body.
pub(crate) struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Answer {
    /// A 2xx status.
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// One request: method, path and (content type, body).
#[derive(Clone, Copy)]
struct Request<'a> {
    method: &'a str,
    path: &'a str,
    body: Option<(&'a str, &'a [u8])>,
}

/// One kept-alive connection to `host:port`, opened on first use.
pub(crate) struct Conn {
    /// As the request's `Host` header says it.
    host: String,
    /// Where to connect: `host`, with port 80 if it names none.
    addr: String,
    stream: Option<TcpStream>,
    /// The answer being read (empty between answers: bytes past an
    /// answer's end are an error, as requests are not pipelined).
    buf: Vec<u8>,
    request: Vec<u8>,
}

impl Conn {
    /// A connection to the `host:port` of `url` (`http://host:port`, no
    /// path); None for other schemes.
    pub fn for_url(url: &str) -> Option<Conn> {
        let rest = url.strip_prefix("http://")?;
        let host = rest.trim_end_matches('/');
        if host.is_empty() || host.contains('/') {
            return None;
        }
        // As reqwest would: port 80 unless the URL names one.
        let has_port = host
            .rsplit_once(':')
            .is_some_and(|(_, p)| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
        let addr = if has_port {
            host.to_owned()
        } else {
            format!("{host}:80")
        };
        Some(Conn {
            host: host.to_owned(),
            addr,
            stream: None,
            buf: Vec::with_capacity(8 * 1024),
            request: Vec::with_capacity(2 * 1024),
        })
    }

    /// `GET path`.
    pub async fn get(&mut self, path: &str) -> Result<Answer, HttpError> {
        self.send(Request {
            method: "GET",
            path,
            body: None,
        })
        .await
    }

    /// `POST path` with `body` of `content_type`.
    pub async fn post(
        &mut self,
        path: &str,
        content_type: &str,
        body: &[u8],
    ) -> Result<Answer, HttpError> {
        self.send(Request {
            method: "POST",
            path,
            body: Some((content_type, body)),
        })
        .await
    }

    async fn send(&mut self, req: Request<'_>) -> Result<Answer, HttpError> {
        let reused = self.stream.is_some();
        let mut answer = self.exchange_in_time(req).await;
        // A kept-alive connection the server closed while it was idle
        // fails the next request before any byte of an answer: a GET is
        // sent again once, on a new connection (as hyper does for requests
        // that are safe to repeat). A cut answer is an error, never resent.
        if reused && req.method == "GET" && matches!(answer, Err(HttpError::NoAnswer(_))) {
            answer = self.exchange_in_time(req).await;
        }
        answer
    }

    /// One exchange within [`TIMEOUT`]; the connection is dropped after
    /// any error.
    async fn exchange_in_time(&mut self, req: Request<'_>) -> Result<Answer, HttpError> {
        let answer = tokio::time::timeout(TIMEOUT, self.exchange(req))
            .await
            .unwrap_or(Err(HttpError::Timeout));
        if answer.is_err() {
            self.stream = None;
            self.buf.clear();
        }
        answer
    }

    async fn exchange(&mut self, req: Request<'_>) -> Result<Answer, HttpError> {
        let r = &mut self.request;
        r.clear();
        r.extend_from_slice(req.method.as_bytes());
        r.push(b' ');
        r.extend_from_slice(req.path.as_bytes());
        r.extend_from_slice(b" HTTP/1.1\r\nHost: ");
        r.extend_from_slice(self.host.as_bytes());
        r.extend_from_slice(b"\r\n");
        if let Some((content_type, body)) = req.body {
            r.extend_from_slice(b"Content-Type: ");
            r.extend_from_slice(content_type.as_bytes());
            r.extend_from_slice(format!("\r\nContent-Length: {}\r\n\r\n", body.len()).as_bytes());
            r.extend_from_slice(body);
        } else {
            r.extend_from_slice(b"\r\n");
        }
        let stream = match &mut self.stream {
            Some(s) => s,
            None => {
                let s = TcpStream::connect(&self.addr)
                    .await
                    .map_err(|e| HttpError::Connect(self.addr.clone(), e))?;
                s.set_nodelay(true)?;
                self.stream.insert(s)
            }
        };
        let mut received = false;
        let exchanged = match stream.write_all(&self.request).await {
            Ok(()) => read_answer(stream, &mut self.buf, &mut received).await,
            Err(e) => Err(e.into()),
        };
        let (answer, close) = exchanged.map_err(|e| match e {
            HttpError::Closed | HttpError::Io(_) if !received => HttpError::NoAnswer(e.to_string()),
            e => e,
        })?;
        if close {
            self.stream = None;
            self.buf.clear();
        }
        Ok(answer)
    }
}

/// Reads one answer from `stream` into `buf` (empty at the start, as
/// requests are not pipelined). Also says whether the server closes the
/// connection after it. `received` is set once any byte of it arrived.
async fn read_answer(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    received: &mut bool,
) -> Result<(Answer, bool), HttpError> {
    let head = loop {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut parsed = httparse::Response::new(&mut headers);
        match parsed.parse(buf) {
            Ok(httparse::Status::Complete(n)) => {
                let head = Head::read(&parsed)?;
                buf.drain(..n);
                // An interim answer (100 Continue, 103 Early Hints): the
                // final one follows.
                if (100..200).contains(&head.status) {
                    if head.status == 101 {
                        return Err(HttpError::Malformed("101 Switching Protocols".into()));
                    }
                    continue;
                }
                break head;
            }
            Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => {
                fill(stream, buf).await?;
                *received = true;
            }
            Ok(httparse::Status::Partial) => {
                return Err(HttpError::Malformed(format!(
                    "headers longer than {MAX_HEAD} bytes"
                )))
            }
            Err(e) => return Err(HttpError::Malformed(e.to_string())),
        }
    };
    let mut to_end = false;
    let body = if matches!(head.status, 204 | 304) {
        Vec::new()
    } else if head.chunked {
        read_chunked(stream, buf).await?
    } else if let Some(n) = head.length {
        if n > MAX_BODY {
            return Err(HttpError::Malformed(format!("a body of {n} bytes")));
        }
        while buf.len() < n {
            fill(stream, buf).await?;
        }
        buf.drain(..n).collect()
    } else {
        // No length: the body runs to the end of the connection.
        to_end = true;
        while stream.read_buf(buf).await? > 0 {
            if buf.len() > MAX_BODY {
                return Err(HttpError::Malformed(format!(
                    "a body over {MAX_BODY} bytes"
                )));
            }
        }
        std::mem::take(buf)
    };
    // Bytes past the answer's end, with no request pipelined: the two
    // sides are out of step, and the next answer could not be trusted.
    if !buf.is_empty() {
        return Err(HttpError::Malformed(format!(
            "{} bytes after the answer",
            buf.len()
        )));
    }
    Ok((
        Answer {
            status: head.status,
            body,
        },
        head.close || to_end,
    ))
}

/// What an answer's head says about its body and its connection.
struct Head {
    status: u16,
    length: Option<usize>,
    chunked: bool,
    close: bool,
}

impl Head {
    fn read(parsed: &httparse::Response<'_, '_>) -> Result<Head, HttpError> {
        let tokens = |v: &str| -> Vec<String> {
            v.split(',')
                .map(|t| t.trim().to_ascii_lowercase())
                .collect()
        };
        let mut head = Head {
            status: parsed.code.unwrap_or(0),
            length: None,
            chunked: false,
            // HTTP/1.0 closes unless it says keep-alive.
            close: parsed.version == Some(0),
        };
        for h in parsed.headers.iter() {
            let value = std::str::from_utf8(h.value).unwrap_or("").trim();
            if h.name.eq_ignore_ascii_case("content-length") {
                let n = value
                    .parse::<usize>()
                    .map_err(|_| HttpError::Malformed(format!("Content-Length {value:?}")))?;
                if head.length.is_some_and(|m| m != n) {
                    return Err(HttpError::Malformed("two different Content-Lengths".into()));
                }
                head.length = Some(n);
            } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                // Chunked when it is the last coding; any other runs to
                // the end of the connection.
                head.chunked = tokens(value).last().is_some_and(|t| t == "chunked");
                if !head.chunked {
                    head.length = None;
                }
            } else if h.name.eq_ignore_ascii_case("connection") {
                let t = tokens(value);
                if t.iter().any(|t| t == "close") {
                    head.close = true;
                } else if t.iter().any(|t| t == "keep-alive") {
                    head.close = false;
                }
            }
        }
        Ok(head)
    }
}

/// A chunked body, from `buf` and then `stream`.
async fn read_chunked(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Result<Vec<u8>, HttpError> {
    let mut body = Vec::new();
    loop {
        let (start, size) = loop {
            match httparse::parse_chunk_size(buf) {
                Ok(httparse::Status::Complete((start, size))) => break (start, size),
                Ok(httparse::Status::Partial) => fill(stream, buf).await?,
                Err(_) => return Err(HttpError::Malformed("a chunk's size".into())),
            }
        };
        let too_big = || HttpError::Malformed(format!("a chunk of {size} bytes"));
        let size = usize::try_from(size).map_err(|_| too_big())?;
        if body.len().saturating_add(size) > MAX_BODY {
            return Err(too_big());
        }
        // The chunk, then its CRLF (after the last, empty chunk: no
        // trailers, as the server sends none).
        let end = start + size + 2;
        while buf.len() < end {
            fill(stream, buf).await?;
        }
        if &buf[end - 2..end] != b"\r\n" {
            return Err(HttpError::Malformed("a chunk not ended by CRLF".into()));
        }
        body.extend_from_slice(&buf[start..start + size]);
        buf.drain(..end);
        if size == 0 {
            return Ok(body);
        }
    }
}

/// Reads more of the answer into `buf`; the end of the connection here is
/// an error.
async fn fill(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Result<(), HttpError> {
    buf.reserve(8 * 1024);
    match stream.read_buf(buf).await? {
        0 => Err(HttpError::Closed),
        _ => Ok(()),
    }
}

/// The client a load generator's task uses: the lean one for `http://`,
/// reqwest for anything else.
pub(crate) enum Client {
    Lean(Conn),
    Reqwest(reqwest::Client, String),
}

impl Client {
    /// A client for the log at `url` (`reqwest` is used for other schemes
    /// than `http://`).
    pub fn new(url: &str, reqwest: &reqwest::Client) -> Client {
        match Conn::for_url(url) {
            Some(c) => Client::Lean(c),
            None => Client::Reqwest(reqwest.clone(), url.trim_end_matches('/').to_owned()),
        }
    }

    /// `GET path`; errors are strings, as the generators only count them.
    pub async fn get(&mut self, path: &str) -> Result<Answer, String> {
        match self {
            Client::Lean(c) => c.get(path).await.map_err(|e| e.to_string()),
            Client::Reqwest(c, base) => answer(c.get(format!("{base}{path}")).send().await).await,
        }
    }

    /// `POST path` with a JSON `body`.
    pub async fn post_json(&mut self, path: &str, body: &[u8]) -> Result<Answer, String> {
        match self {
            Client::Lean(c) => c
                .post(path, "application/json", body)
                .await
                .map_err(|e| e.to_string()),
            Client::Reqwest(c, base) => {
                let sent = c
                    .post(format!("{base}{path}"))
                    .header("content-type", "application/json")
                    .body(body.to_vec())
                    .send()
                    .await;
                answer(sent).await
            }
        }
    }
}

async fn answer(sent: reqwest::Result<reqwest::Response>) -> Result<Answer, String> {
    let r = sent.map_err(|e| e.to_string())?;
    let status = r.status().as_u16();
    let body = r.bytes().await.map_err(|e| e.to_string())?.to_vec();
    Ok(Answer { status, body })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    /// A server that accepts one connection and answers each request it
    /// reads there with the next of `answers` (raw bytes), then closes it.
    async fn serve(answers: Vec<&'static [u8]>) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            // One connection only: later ones are refused.
            drop(listener);
            answer_each(&mut s, &answers).await;
        });
        format!("http://{addr}")
    }

    /// Answers each request read on `s` with the next of `answers`; stops
    /// early if the client closes.
    async fn answer_each(s: &mut TcpStream, answers: &[&[u8]]) {
        let mut buf = vec![0u8; 4096];
        for a in answers {
            let mut got = Vec::new();
            // Reads one request's head (and a short body, if any).
            while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = s.read(&mut buf).await.unwrap();
                if n == 0 {
                    return;
                }
                got.extend_from_slice(&buf[..n]);
            }
            s.write_all(a).await.unwrap();
        }
    }

    #[tokio::test]
    async fn reads_answers_by_length_and_by_chunks_on_one_connection() {
        let url = serve(vec![
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
            b"HTTP/1.1 404 Not Found\r\ncontent-length: 2\r\n\r\n{}",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
        ])
        .await;
        let mut c = Conn::for_url(&url).unwrap();
        let a = c.get("/a").await.unwrap();
        assert_eq!(
            (a.status, a.body.as_slice(), a.ok()),
            (200, &b"hello"[..], true)
        );
        let b = c.post("/b", "application/json", b"{}").await.unwrap();
        assert_eq!(
            (b.status, b.body.as_slice(), b.ok()),
            (404, &b"{}"[..], false)
        );
        let d = c.get("/d").await.unwrap();
        assert_eq!(d.body, b"abcde");
    }

    #[tokio::test]
    async fn a_get_on_a_connection_the_server_closed_is_sent_again_on_a_new_one() {
        // Each connection answers one request and is then closed, without
        // saying so (as a server's idle timeout would).
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            for a in [
                &b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na"[..],
                b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nb",
                b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nc",
            ] {
                let (mut s, _) = listener.accept().await.unwrap();
                answer_each(&mut s, &[a]).await;
            }
        });
        let mut c = Conn::for_url(&url).unwrap();
        assert_eq!(c.get("/").await.unwrap().body, b"a");
        // Give the server's close time to arrive.
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(c.get("/").await.unwrap().body, b"b", "sent again");
        tokio::time::sleep(Duration::from_millis(50)).await;
        // A POST is not repeated: the close is its error.
        assert!(c.post("/", "application/json", b"{}").await.is_err());
    }

    #[tokio::test]
    async fn interim_answers_are_skipped_and_closing_answers_close() {
        let url = serve(vec![
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n1\r\nz\r\n0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nConnection: keep-alive, close\r\nContent-Length: 1\r\n\r\nc",
        ])
        .await;
        let mut c = Conn::for_url(&url).unwrap();
        let a = c.get("/").await.unwrap();
        assert_eq!((a.status, a.body.as_slice()), (200, &b"ok"[..]));
        assert_eq!(c.get("/").await.unwrap().body, b"z");
        assert_eq!(c.get("/").await.unwrap().body, b"c");
        assert!(c.stream.is_none(), "Connection: close is honoured");
        let url = serve(vec![b"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nd"]).await;
        let mut c = Conn::for_url(&url).unwrap();
        assert_eq!(c.get("/").await.unwrap().body, b"d");
        assert!(
            c.stream.is_none(),
            "HTTP/1.0 closes unless it says keep-alive"
        );
    }

    #[tokio::test]
    async fn a_short_answer_is_an_error_and_the_next_request_reconnects() {
        let url = serve(vec![b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf"]).await;
        let mut c = Conn::for_url(&url).unwrap();
        assert!(matches!(c.get("/").await, Err(HttpError::Closed)));
        assert!(c.stream.is_none(), "the broken connection is dropped");
        // The test server took its one connection: a new one is refused,
        // an error, never a made-up answer.
        assert!(matches!(c.get("/").await, Err(HttpError::Connect(..))));
    }

    #[tokio::test]
    async fn malformed_answers_are_errors() {
        for bad in [
            &b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n"[..],
            &b"NOT HTTP\r\n\r\n"[..],
            &b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"[..],
            // Bytes past the answer: the sides are out of step.
            &b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nab"[..],
            &b"HTTP/1.1 101 Switching Protocols\r\n\r\n"[..],
            &b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFF\r\n"[..],
            &b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n"[..],
            &b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab"[..],
        ] {
            let url = serve(vec![bad]).await;
            let mut c = Conn::for_url(&url).unwrap();
            assert!(
                matches!(c.get("/").await, Err(HttpError::Malformed(_))),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn only_plain_http_urls_get_a_lean_connection() {
        assert_eq!(
            Conn::for_url("http://127.0.0.1:8080").unwrap().host,
            "127.0.0.1:8080"
        );
        assert_eq!(
            Conn::for_url("http://127.0.0.1:8080/").unwrap().host,
            "127.0.0.1:8080"
        );
        assert_eq!(
            Conn::for_url("http://log.example").unwrap().addr,
            "log.example:80"
        );
        assert_eq!(Conn::for_url("http://[::1]").unwrap().addr, "[::1]:80");
        assert_eq!(
            Conn::for_url("http://[::1]:8080").unwrap().addr,
            "[::1]:8080"
        );
        assert!(Conn::for_url("https://log.example").is_none());
        assert!(Conn::for_url("http://log.example/prefix").is_none());
        assert!(Conn::for_url("http://").is_none());
    }
}
