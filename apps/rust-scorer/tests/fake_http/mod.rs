//! The request side of the fake Lambda Runtime APIs in this crate's tests (std only, no
//! dev-dependencies): the unit tests in src/runtime.rs and the tests in tests/ read what the client
//! sent with [`Request::read`], then answer in their own way. Test code only: src/runtime.rs includes
//! it under `#[cfg(test)]`, so the `bootstrap` binary never contains it. The rust-lambda generator
//! ships it byte-equal, as it does src/runtime.rs.

use std::io::BufRead;

/// One request as the client sent it.
pub struct Request {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    /// Reads one HTTP/1.1 request from `reader`: the request line, the headers up to the blank line,
    /// and a body of `Content-Length` bytes (none without that header). Panics, failing the test, on a
    /// request line that is not HTTP/1.1, a header line without `:`, a read error or timeout, or a
    /// connection closed before the whole body arrived.
    pub fn read(reader: &mut impl BufRead) -> Request {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        let mut parts = line.trim_end().splitn(3, ' ');
        let method = parts.next().unwrap().to_string();
        let path = parts.next().unwrap().to_string();
        assert_eq!(parts.next(), Some("HTTP/1.1"), "request line {line:?}");
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            let (n, v) = line.split_once(':').unwrap();
            headers.push((n.trim().to_string(), v.trim().to_string()));
        }
        let mut request = Request {
            method,
            path,
            headers,
            body: Vec::new(),
        };
        let length: usize = request
            .header("Content-Length")
            .map_or(0, |v| v.parse().unwrap());
        request.body = vec![0; length];
        reader.read_exact(&mut request.body).unwrap();
        request
    }

    /// The value of header `name` (any case), when the request has it.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}
