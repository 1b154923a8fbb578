//! AWS plumbing for AWS-hosted providers (Bedrock): Signature Version 4 request signing and
//! the `application/vnd.amazon.eventstream` binary framing used by streaming responses.
//!
//! Everything here is pure: no I/O, no clock (the signing time is a parameter), no environment.
//! HMAC-SHA256 and CRC32 are implemented locally on top of `sha2` so no further crates are
//! needed.
//!
//! Signing follows the non-S3 rules: the URL path is taken exactly as it appears in the URL and
//! each segment is percent-encoded once more (so `%3A` in a Bedrock model id is signed as
//! `%253A`); the query string is decoded and re-encoded, sorted by name then value.
//!
//! The event-stream decoder is incremental and linear: complete frames are split off the front
//! of one buffer, and bytes are never re-scanned while waiting for the rest of a frame.

use bytes::{Buf, Bytes, BytesMut};
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

// ---------------------------------------------------------------------------------------------
// Credentials and SigV4
// ---------------------------------------------------------------------------------------------

/// AWS credentials used to sign a request.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// Headers that [`sign`] computes itself; caller-supplied copies are ignored.
const RESERVED_HEADERS: &[&str] = &["authorization", "x-amz-date", "x-amz-security-token"];

/// A canonical request (SigV4 task 1) and the `SignedHeaders` list it commits to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CanonicalRequest {
    /// The full canonical request text.
    pub text: String,
    /// Lowercase header names, sorted, joined with `;`.
    pub signed_headers: String,
}

/// Signs a request with AWS Signature Version 4 and returns the headers to add to it:
/// `x-amz-date`, `x-amz-security-token` (when the credentials carry a session token) and
/// `authorization`.
///
/// Every header in `headers` is signed, plus `host` (taken from `url` unless `headers` has one)
/// and the added `x-amz-date` / `x-amz-security-token`. Caller-supplied `authorization`,
/// `x-amz-date` and `x-amz-security-token` headers are ignored (they are replaced), so the
/// caller must not send them alongside the returned ones.
#[allow(clippy::too_many_arguments)]
pub fn sign(
    method: &str,
    url: &str,
    headers: &[(String, String)],
    body: &[u8],
    creds: &Credentials,
    region: &str,
    service: &str,
    now: DateTime<Utc>,
) -> Vec<(String, String)> {
    let amz_date = now.format("%Y%m%dT%H%M%SZ").to_string();
    let date = now.format("%Y%m%d").to_string();

    let mut added: Vec<(String, String)> = vec![("x-amz-date".to_string(), amz_date.clone())];
    if let Some(token) = &creds.session_token {
        added.push(("x-amz-security-token".to_string(), token.clone()));
    }

    let mut all: Vec<(String, String)> = headers
        .iter()
        .filter(|(k, _)| {
            !RESERVED_HEADERS
                .iter()
                .any(|r| k.trim().eq_ignore_ascii_case(r))
        })
        .cloned()
        .collect();
    all.extend(added.iter().cloned());

    let creq = canonical_request(method, url, &all, body);
    let scope = credential_scope(&date, region, service);
    let sts = string_to_sign(&amz_date, &scope, &creq.text);
    let key = signing_key(&creds.secret_access_key, &date, region, service);
    let signature = hex::encode(hmac_sha256(&key, sts.as_bytes()));

    added.push((
        "authorization".to_string(),
        format!(
            "{ALGORITHM} Credential={}/{scope}, SignedHeaders={}, Signature={signature}",
            creds.access_key_id, creq.signed_headers
        ),
    ));
    added
}

/// `{date}/{region}/{service}/aws4_request`.
pub fn credential_scope(date: &str, region: &str, service: &str) -> String {
    format!("{date}/{region}/{service}/aws4_request")
}

/// Builds the canonical request over exactly `headers` (plus `host` from `url` when absent).
/// Unlike [`sign`], nothing is added or filtered: pass `x-amz-date` yourself.
pub fn canonical_request(
    method: &str,
    url: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> CanonicalRequest {
    let parts = split_url(url);

    // Lowercased name -> values in order of appearance.
    let mut canon: Vec<(String, Vec<String>)> = Vec::new();
    for (name, value) in headers {
        let name = name.trim().to_ascii_lowercase();
        let value = normalize_header_value(value);
        match canon.iter_mut().find(|(n, _)| *n == name) {
            Some((_, values)) => values.push(value),
            None => canon.push((name, vec![value])),
        }
    }
    if !canon.iter().any(|(n, _)| n == "host") {
        canon.push(("host".to_string(), vec![parts.host.clone()]));
    }
    canon.sort_by(|a, b| a.0.cmp(&b.0));

    let mut canonical_headers = String::new();
    for (name, values) in &canon {
        canonical_headers.push_str(name);
        canonical_headers.push(':');
        canonical_headers.push_str(&values.join(","));
        canonical_headers.push('\n');
    }
    let signed_headers = canon
        .iter()
        .map(|(n, _)| n.as_str())
        .collect::<Vec<_>>()
        .join(";");

    let text = format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        method.to_ascii_uppercase(),
        canonical_uri(parts.path),
        canonical_query(parts.query),
        canonical_headers,
        signed_headers,
        hex::encode(Sha256::digest(body)),
    );
    CanonicalRequest {
        text,
        signed_headers,
    }
}

/// SigV4 task 2: `AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{hex(sha256(canonical_request))}`.
pub fn string_to_sign(amz_date: &str, scope: &str, canonical_request: &str) -> String {
    format!(
        "{ALGORITHM}\n{amz_date}\n{scope}\n{}",
        hex::encode(Sha256::digest(canonical_request.as_bytes()))
    )
}

/// SigV4 task 3: the derived signing key for `date` (`YYYYMMDD`), region and service.
pub fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> [u8; 32] {
    let k_date = hmac_sha256(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k_region = hmac_sha256(&k_date, region.as_bytes());
    let k_service = hmac_sha256(&k_region, service.as_bytes());
    hmac_sha256(&k_service, b"aws4_request")
}

/// HMAC-SHA256 (RFC 2104) over a 64-byte block.
pub fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut block = [0u8; BLOCK];
    if key.len() > BLOCK {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let mut ipad = [0u8; BLOCK];
    let mut opad = [0u8; BLOCK];
    for (i, b) in block.iter().enumerate() {
        ipad[i] = b ^ 0x36;
        opad[i] = b ^ 0x5c;
    }
    let inner = Sha256::new()
        .chain_update(ipad)
        .chain_update(data)
        .finalize();
    Sha256::new()
        .chain_update(opad)
        .chain_update(inner)
        .finalize()
        .into()
}

struct UrlParts<'a> {
    host: String,
    path: &'a str,
    query: &'a str,
}

/// Splits an absolute (or scheme-less) URL into host (userinfo and default port removed),
/// raw path and raw query; the fragment is dropped.
fn split_url(url: &str) -> UrlParts<'_> {
    let (scheme, rest) = match url.find("://") {
        Some(i) => (&url[..i], &url[i + 3..]),
        None => ("", url),
    };
    let rest = rest.split('#').next().unwrap_or("");
    let auth_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = &rest[..auth_end];
    let after = &rest[auth_end..];
    let (path, query) = match after.find('?') {
        Some(i) => (&after[..i], &after[i + 1..]),
        None => (after, ""),
    };
    let mut host = authority.rsplit('@').next().unwrap_or("");
    let default_port = if scheme.eq_ignore_ascii_case("https") {
        Some(":443")
    } else if scheme.eq_ignore_ascii_case("http") {
        Some(":80")
    } else {
        None
    };
    if let Some(port) = default_port {
        host = host.strip_suffix(port).unwrap_or(host);
    }
    UrlParts {
        host: host.to_ascii_lowercase(),
        path,
        query,
    }
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// Percent-encodes every byte except the unreserved set, with uppercase hex.
fn uri_encode(bytes: &[u8], out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in bytes {
        if is_unreserved(b) {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
    }
}

/// The path as it appears in the URL, each segment encoded once more (non-S3 rules).
fn canonical_uri(path: &str) -> String {
    if path.is_empty() {
        return "/".to_string();
    }
    let mut out = String::with_capacity(path.len() + 8);
    for (i, segment) in path.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        uri_encode(segment.as_bytes(), &mut out);
    }
    out
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Decodes `%XY` escapes; malformed escapes are kept literally. `+` is not a space.
fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex_val(b[i + 1]), hex_val(b[i + 2])) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

/// Query parameters decoded, re-encoded, sorted by name then value, joined with `&`.
fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let mut ek = String::new();
            let mut ev = String::new();
            uri_encode(&percent_decode(k), &mut ek);
            uri_encode(&percent_decode(v), &mut ev);
            (ek, ev)
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// Trims and collapses inner runs of whitespace to one space.
fn normalize_header_value(v: &str) -> String {
    v.split_ascii_whitespace().collect::<Vec<_>>().join(" ")
}

// ---------------------------------------------------------------------------------------------
// CRC32
// ---------------------------------------------------------------------------------------------

const fn crc32_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
}

static CRC32_TABLE: [u32; 256] = crc32_table();

/// CRC-32 (IEEE 802.3 / gzip: reflected polynomial `0xEDB88320`, init and xor-out `!0`).
pub fn crc32(data: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in data {
        c = CRC32_TABLE[usize::from((c as u8) ^ b)] ^ (c >> 8);
    }
    !c
}

// ---------------------------------------------------------------------------------------------
// Event-stream framing
// ---------------------------------------------------------------------------------------------

/// Prelude: total length, headers length, prelude CRC.
const PRELUDE_LEN: usize = 12;
/// Prelude plus trailing message CRC.
const MIN_FRAME_LEN: usize = 16;
/// Largest frame accepted (the spec's maximum message size).
const MAX_FRAME_LEN: usize = 16 * 1024 * 1024;

/// A typed event-stream header value (type tags 0..=9 of the spec).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderValue {
    /// Types 0 (true) and 1 (false); no value bytes.
    Bool(bool),
    /// Type 2.
    Byte(i8),
    /// Type 3.
    Short(i16),
    /// Type 4.
    Int(i32),
    /// Type 5.
    Long(i64),
    /// Type 6: 2-byte length prefix.
    Bytes(Bytes),
    /// Type 7: 2-byte length prefix, UTF-8.
    String(String),
    /// Type 8: milliseconds since the Unix epoch.
    Timestamp(i64),
    /// Type 9: 16 raw bytes.
    Uuid([u8; 16]),
}

impl HeaderValue {
    /// The value if it is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::String(s) => Some(s),
            _ => None,
        }
    }

    fn write(&self, out: &mut Vec<u8>) {
        match self {
            Self::Bool(true) => out.push(0),
            Self::Bool(false) => out.push(1),
            Self::Byte(v) => {
                out.push(2);
                out.extend_from_slice(&v.to_be_bytes());
            }
            Self::Short(v) => {
                out.push(3);
                out.extend_from_slice(&v.to_be_bytes());
            }
            Self::Int(v) => {
                out.push(4);
                out.extend_from_slice(&v.to_be_bytes());
            }
            Self::Long(v) => {
                out.push(5);
                out.extend_from_slice(&v.to_be_bytes());
            }
            Self::Bytes(b) => {
                out.push(6);
                write_short_bytes(b, out);
            }
            Self::String(s) => {
                out.push(7);
                write_short_bytes(s.as_bytes(), out);
            }
            Self::Timestamp(v) => {
                out.push(8);
                out.extend_from_slice(&v.to_be_bytes());
            }
            Self::Uuid(u) => {
                out.push(9);
                out.extend_from_slice(u);
            }
        }
    }
}

/// Writes a 2-byte big-endian length and the data (truncated to 65535 bytes).
fn write_short_bytes(data: &[u8], out: &mut Vec<u8>) {
    let len = data.len().min(usize::from(u16::MAX));
    out.extend_from_slice(&(len as u16).to_be_bytes());
    out.extend_from_slice(&data[..len]);
}

/// One decoded event-stream message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub headers: Vec<(String, HeaderValue)>,
    pub payload: Bytes,
}

impl Message {
    /// The first header named `name`, if it is a string (`:event-type`, `:message-type`, ...).
    pub fn header_str(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| v.as_str())
    }

    /// Encodes the message as one frame. Header names longer than 255 bytes and string or
    /// bytes values longer than 65535 bytes are truncated.
    pub fn encode(&self) -> Vec<u8> {
        let mut headers = Vec::new();
        for (name, value) in &self.headers {
            write_header_name(name, &mut headers);
            value.write(&mut headers);
        }
        frame(&headers, &self.payload)
    }
}

fn write_header_name(name: &str, out: &mut Vec<u8>) {
    let len = name.len().min(usize::from(u8::MAX));
    out.push(len as u8);
    out.extend_from_slice(&name.as_bytes()[..len]);
}

/// Wraps encoded headers and a payload in prelude and CRCs.
fn frame(headers: &[u8], payload: &[u8]) -> Vec<u8> {
    let total = MIN_FRAME_LEN + headers.len() + payload.len();
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&(total as u32).to_be_bytes());
    out.extend_from_slice(&(headers.len() as u32).to_be_bytes());
    let prelude_crc = crc32(&out);
    out.extend_from_slice(&prelude_crc.to_be_bytes());
    out.extend_from_slice(headers);
    out.extend_from_slice(payload);
    let message_crc = crc32(&out);
    out.extend_from_slice(&message_crc.to_be_bytes());
    out
}

/// Encodes one frame with string headers only (for tests and mock upstreams). Names longer
/// than 255 bytes and values longer than 65535 bytes are truncated.
pub fn encode_message(headers: &[(&str, &str)], payload: &[u8]) -> Vec<u8> {
    let mut encoded = Vec::new();
    for (name, value) in headers {
        write_header_name(name, &mut encoded);
        encoded.push(7);
        write_short_bytes(value.as_bytes(), &mut encoded);
    }
    frame(&encoded, payload)
}

/// Why an event stream could not be decoded. The stream cannot be resynchronised after one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error(
        "event-stream prelude CRC mismatch (expected {expected:#010x}, computed {computed:#010x})"
    )]
    PreludeCrc { expected: u32, computed: u32 },
    #[error(
        "event-stream message CRC mismatch (expected {expected:#010x}, computed {computed:#010x})"
    )]
    MessageCrc { expected: u32, computed: u32 },
    #[error("event-stream frame length {0} is out of range")]
    TotalLength(u32),
    #[error("event-stream headers length {headers} does not fit in a frame of {total} bytes")]
    HeadersLength { headers: u32, total: u32 },
    #[error("malformed event-stream header: {0}")]
    Header(&'static str),
}

/// Incremental event-stream decoder: [`push`](Self::push) bytes as they arrive, then drain
/// [`next_message`](Self::next_message) until it returns `None`.
#[derive(Debug, Default)]
pub struct EventStreamDecoder {
    /// Undecoded bytes; complete frames are split off the front (O(1), no copying).
    buf: BytesMut,
    /// Set after an error: the rest of the stream is not decodable.
    failed: bool,
}

impl EventStreamDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        if !self.failed {
            self.buf.extend_from_slice(bytes);
        }
    }

    /// Bytes received but not yet part of a complete frame. Non-zero at end of stream means
    /// the stream was truncated.
    pub fn pending_len(&self) -> usize {
        self.buf.len()
    }

    /// The next complete message, `None` if more bytes are needed, or an error if the stream is
    /// corrupt. After an error the decoder discards its input and only returns `None`.
    pub fn next_message(&mut self) -> Option<Result<Message, FrameError>> {
        if self.failed {
            return None;
        }
        let result = self.try_next()?;
        if result.is_err() {
            self.failed = true;
            self.buf = BytesMut::new();
        }
        Some(result)
    }

    fn try_next(&mut self) -> Option<Result<Message, FrameError>> {
        if self.buf.len() < PRELUDE_LEN {
            return None;
        }
        let total = read_u32(&self.buf[0..4]);
        let headers_len = read_u32(&self.buf[4..8]);
        let expected = read_u32(&self.buf[8..12]);
        let computed = crc32(&self.buf[0..8]);
        if expected != computed {
            return Some(Err(FrameError::PreludeCrc { expected, computed }));
        }
        let total_len = total as usize;
        if !(MIN_FRAME_LEN..=MAX_FRAME_LEN).contains(&total_len) {
            return Some(Err(FrameError::TotalLength(total)));
        }
        let headers_len_usize = headers_len as usize;
        if headers_len_usize > total_len - MIN_FRAME_LEN {
            return Some(Err(FrameError::HeadersLength {
                headers: headers_len,
                total,
            }));
        }
        if self.buf.len() < total_len {
            // Make room once for the rest of the frame rather than growing repeatedly.
            self.buf.reserve(total_len - self.buf.len());
            return None;
        }
        let expected = read_u32(&self.buf[total_len - 4..total_len]);
        let computed = crc32(&self.buf[..total_len - 4]);
        if expected != computed {
            return Some(Err(FrameError::MessageCrc { expected, computed }));
        }
        let mut frame = self.buf.split_to(total_len).freeze();
        frame.truncate(total_len - 4);
        frame.advance(PRELUDE_LEN);
        let payload = frame.split_off(headers_len_usize);
        Some(parse_headers(frame).map(|headers| Message { headers, payload }))
    }
}

fn read_u32(b: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[..4]);
    u32::from_be_bytes(a)
}

/// Takes `n` bytes off the front of `b`.
fn take(b: &mut Bytes, n: usize) -> Result<Bytes, FrameError> {
    if b.len() < n {
        return Err(FrameError::Header("truncated header"));
    }
    Ok(b.split_to(n))
}

fn take_array<const N: usize>(b: &mut Bytes) -> Result<[u8; N], FrameError> {
    let bytes = take(b, N)?;
    let mut a = [0u8; N];
    a.copy_from_slice(&bytes);
    Ok(a)
}

fn parse_headers(mut b: Bytes) -> Result<Vec<(String, HeaderValue)>, FrameError> {
    let mut headers = Vec::new();
    while !b.is_empty() {
        let [name_len] = take_array::<1>(&mut b)?;
        if name_len == 0 {
            return Err(FrameError::Header("empty header name"));
        }
        let name = take(&mut b, usize::from(name_len))?;
        let name = String::from_utf8(name.to_vec())
            .map_err(|_| FrameError::Header("header name is not UTF-8"))?;
        let [tag] = take_array::<1>(&mut b)?;
        let value = match tag {
            0 => HeaderValue::Bool(true),
            1 => HeaderValue::Bool(false),
            2 => HeaderValue::Byte(i8::from_be_bytes(take_array(&mut b)?)),
            3 => HeaderValue::Short(i16::from_be_bytes(take_array(&mut b)?)),
            4 => HeaderValue::Int(i32::from_be_bytes(take_array(&mut b)?)),
            5 => HeaderValue::Long(i64::from_be_bytes(take_array(&mut b)?)),
            6 | 7 => {
                let len = u16::from_be_bytes(take_array(&mut b)?);
                let data = take(&mut b, usize::from(len))?;
                if tag == 6 {
                    HeaderValue::Bytes(data)
                } else {
                    HeaderValue::String(
                        String::from_utf8(data.to_vec())
                            .map_err(|_| FrameError::Header("string header is not UTF-8"))?,
                    )
                }
            }
            8 => HeaderValue::Timestamp(i64::from_be_bytes(take_array(&mut b)?)),
            9 => HeaderValue::Uuid(take_array(&mut b)?),
            _ => return Err(FrameError::Header("unknown header value type")),
        };
        headers.push((name, value));
    }
    Ok(headers)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    // AWS SigV4 test suite (docs.aws.amazon.com/general/latest/gr/signature-v4-test-suite.html).
    const STS_TOKEN: &str = "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA==";

    fn creds(token: Option<&str>) -> Credentials {
        Credentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
            session_token: token.map(str::to_string),
        }
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2015, 8, 30, 12, 36, 0).unwrap()
    }

    fn hdrs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// Signs a test-suite request and returns the `authorization` header.
    fn suite_auth(
        method: &str,
        path_and_query: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        token: Option<&str>,
    ) -> String {
        let url = format!("https://example.amazonaws.com{path_and_query}");
        let added = sign(
            method,
            &url,
            &hdrs(headers),
            body,
            &creds(token),
            "us-east-1",
            "service",
            now(),
        );
        assert_eq!(added[0], ("x-amz-date".into(), "20150830T123600Z".into()));
        added
            .iter()
            .find(|(k, _)| k == "authorization")
            .unwrap()
            .1
            .clone()
    }

    fn expect(auth: &str, signed_headers: &str, signature: &str) {
        assert_eq!(
            auth,
            format!(
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
                 SignedHeaders={signed_headers}, Signature={signature}"
            )
        );
    }

    #[test]
    fn hmac_rfc4231_case_2() {
        assert_eq!(
            hex::encode(hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // Case 6: a key longer than the block size is hashed first.
        assert_eq!(
            hex::encode(hmac_sha256(
                &[0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            )),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn get_vanilla_canonical_request_and_signature() {
        let creq = canonical_request(
            "GET",
            "https://example.amazonaws.com/",
            &hdrs(&[("X-Amz-Date", "20150830T123600Z")]),
            b"",
        );
        assert_eq!(
            creq.text,
            "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\n\
             host;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let sts = string_to_sign(
            "20150830T123600Z",
            &credential_scope("20150830", "us-east-1", "service"),
            &creq.text,
        );
        assert_eq!(
            sts,
            "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n\
             bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63"
        );
        expect(
            &suite_auth("GET", "/", &[], b"", None),
            "host;x-amz-date",
            "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
        );
    }

    #[test]
    fn query_vectors() {
        expect(
            &suite_auth("GET", "/?Param2=value2&Param1=value1", &[], b"", None),
            "host;x-amz-date",
            "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
        );
        expect(
            &suite_auth("GET", "/?Param1=value2&Param1=value1", &[], b"", None),
            "host;x-amz-date",
            "5772eed61e12b33fae39ee5e7012498b51d56abc0abb7c60486157bd471c4694",
        );
        let unreserved = "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
        expect(
            &suite_auth(
                "GET",
                &format!("/?{unreserved}={unreserved}"),
                &[],
                b"",
                None,
            ),
            "host;x-amz-date",
            "9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197",
        );
        expect(
            &suite_auth("GET", "/?\u{1234}=bar", &[], b"", None),
            "host;x-amz-date",
            "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04",
        );
        // Already-encoded query parameters are not encoded twice.
        expect(
            &suite_auth("GET", "/?%E1%88%B4=bar", &[], b"", None),
            "host;x-amz-date",
            "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04",
        );
    }

    #[test]
    fn path_vectors() {
        expect(
            &suite_auth("GET", "/\u{1234}", &[], b"", None),
            "host;x-amz-date",
            "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85",
        );
        expect(
            &suite_auth("GET", "/example space/", &[], b"", None),
            "host;x-amz-date",
            "652487583200325589f1fba4c7e578f72c47cb61beeca81406b39ddec1366741",
        );
    }

    #[test]
    fn header_vectors() {
        expect(
            &suite_auth(
                "GET",
                "/",
                &[
                    ("My-Header1", "value2"),
                    ("My-Header1", "value2"),
                    ("My-Header1", "value1"),
                ],
                b"",
                None,
            ),
            "host;my-header1;x-amz-date",
            "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea",
        );
        expect(
            &suite_auth(
                "GET",
                "/",
                &[("My-Header1", " value1"), ("My-Header2", " \"a   b   c\"")],
                b"",
                None,
            ),
            "host;my-header1;my-header2;x-amz-date",
            "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736",
        );
    }

    #[test]
    fn post_vectors() {
        expect(
            &suite_auth("POST", "/", &[], b"", None),
            "host;x-amz-date",
            "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b",
        );
        expect(
            &suite_auth(
                "POST",
                "/",
                &[("Content-Type", "application/x-www-form-urlencoded")],
                b"Param1=value1",
                None,
            ),
            "content-type;host;x-amz-date",
            "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a",
        );
    }

    #[test]
    fn post_sts_header_before() {
        let url = "https://example.amazonaws.com/";
        let added = sign(
            "POST",
            url,
            &[],
            b"",
            &creds(Some(STS_TOKEN)),
            "us-east-1",
            "service",
            now(),
        );
        let names: Vec<&str> = added.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            names,
            ["x-amz-date", "x-amz-security-token", "authorization"]
        );
        assert_eq!(added[1].1, STS_TOKEN);
        expect(
            &added[2].1,
            "host;x-amz-date;x-amz-security-token",
            "85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead",
        );
    }

    #[test]
    fn caller_supplied_reserved_headers_are_replaced() {
        let with_stale = suite_auth(
            "GET",
            "/",
            &[("X-Amz-Date", "19990101T000000Z"), ("Authorization", "x")],
            b"",
            None,
        );
        assert_eq!(with_stale, suite_auth("GET", "/", &[], b"", None));
    }

    #[test]
    fn bedrock_paths_are_encoded_again() {
        let creq = |url: &str| canonical_request("POST", url, &[], b"{}").text;
        let encoded = creq(
            "https://bedrock-runtime.us-east-1.amazonaws.com/model/anthropic.claude-3%3A0/converse",
        );
        assert!(encoded.starts_with("POST\n/model/anthropic.claude-3%253A0/converse\n\n"));
        assert!(encoded.contains("host:bedrock-runtime.us-east-1.amazonaws.com\n"));
        let raw = creq(
            "https://bedrock-runtime.us-east-1.amazonaws.com/model/anthropic.claude-3:0/converse",
        );
        assert!(raw.starts_with("POST\n/model/anthropic.claude-3%3A0/converse\n\n"));
    }

    #[test]
    fn url_host_handling() {
        let host = |url: &str| split_url(url).host;
        assert_eq!(host("https://Example.com:443/x"), "example.com");
        assert_eq!(host("http://localhost:8080?a=1"), "localhost:8080");
        assert_eq!(host("https://user:pw@h.example:8443"), "h.example:8443");
        let parts = split_url("https://h/a/b?x=1#frag");
        assert_eq!((parts.path, parts.query), ("/a/b", "x=1"));
        assert_eq!(canonical_uri(""), "/");
        assert_eq!(canonical_query("b=2&a&&a=1"), "a=&a=1&b=2");
        assert_eq!(canonical_query("k=a+b%2"), "k=a%2Bb%252");
    }

    #[test]
    fn credentials_debug_redacts_secrets() {
        let s = format!("{:?}", creds(Some(STS_TOKEN)));
        assert!(s.contains("AKIDEXAMPLE"));
        assert!(!s.contains("EXAMPLEKEY"));
        assert!(!s.contains("AQoDYXdz"));
    }

    // ---- CRC32 and event stream ----

    #[test]
    fn crc32_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    fn decode_all(bytes: &[u8]) -> Vec<Message> {
        let mut d = EventStreamDecoder::new();
        d.push(bytes);
        let mut out = Vec::new();
        while let Some(m) = d.next_message() {
            out.push(m.unwrap());
        }
        assert_eq!(d.pending_len(), 0);
        out
    }

    // Vectors from AWS's event-stream test suite (as shipped in aws-sdk-js-v3).
    #[test]
    fn aws_test_vectors() {
        let empty = [0, 0, 0, 16, 0, 0, 0, 0, 5, 194, 72, 235, 125, 152, 200, 255];
        let m = decode_all(&empty);
        assert_eq!(m.len(), 1);
        assert!(m[0].headers.is_empty() && m[0].payload.is_empty());
        assert_eq!(encode_message(&[], b""), empty);

        let body = b"{'foo':'bar'}";
        let int32_header = [
            0, 0, 0, 45, 0, 0, 0, 16, 65, 196, 36, 184, 10, 101, 118, 101, 110, 116, 45, 116, 121,
            112, 101, 4, 0, 0, 160, 12, 123, 39, 102, 111, 111, 39, 58, 39, 98, 97, 114, 39, 125,
            54, 244, 128, 160,
        ];
        let m = decode_all(&int32_header);
        assert_eq!(
            m[0].headers,
            vec![("event-type".to_string(), HeaderValue::Int(40972))]
        );
        assert_eq!(&m[0].payload[..], body);
        assert_eq!(m[0].encode(), int32_header);

        let one_str_header = [
            0, 0, 0, 61, 0, 0, 0, 32, 7, 253, 131, 150, 12, 99, 111, 110, 116, 101, 110, 116, 45,
            116, 121, 112, 101, 7, 0, 16, 97, 112, 112, 108, 105, 99, 97, 116, 105, 111, 110, 47,
            106, 115, 111, 110, 123, 39, 102, 111, 111, 39, 58, 39, 98, 97, 114, 39, 125, 141, 156,
            8, 177,
        ];
        let m = decode_all(&one_str_header);
        assert_eq!(m[0].header_str("content-type"), Some("application/json"));
        assert_eq!(&m[0].payload[..], body);
        assert_eq!(
            encode_message(&[("content-type", "application/json")], body),
            one_str_header
        );
    }

    fn sample_frames() -> Vec<Vec<u8>> {
        vec![
            encode_message(
                &[
                    (":event-type", "contentBlockDelta"),
                    (":content-type", "application/json"),
                    (":message-type", "event"),
                ],
                br#"{"delta":{"text":"Hello"},"contentBlockIndex":0}"#,
            ),
            encode_message(&[(":message-type", "event")], b""),
            encode_message(&[], b"no headers at all"),
        ]
    }

    #[test]
    fn round_trip_and_two_frames_in_one_push() {
        let frames = sample_frames();
        let m = decode_all(&frames[0]);
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].header_str(":event-type"), Some("contentBlockDelta"));
        assert_eq!(m[0].header_str(":message-type"), Some("event"));
        assert_eq!(m[0].header_str(":missing"), None);
        assert_eq!(
            &m[0].payload[..],
            br#"{"delta":{"text":"Hello"},"contentBlockIndex":0}"#
        );
        assert_eq!(m[0].encode(), frames[0]);

        let joined: Vec<u8> = frames.concat();
        let all = decode_all(&joined);
        assert_eq!(all.len(), 3);
        assert_eq!(all[1].payload.len(), 0);
        assert_eq!(&all[2].payload[..], b"no headers at all");
    }

    #[test]
    fn one_byte_at_a_time() {
        let joined: Vec<u8> = sample_frames().concat();
        let expected = decode_all(&joined);
        let mut d = EventStreamDecoder::new();
        let mut got = Vec::new();
        for b in &joined {
            d.push(std::slice::from_ref(b));
            while let Some(m) = d.next_message() {
                got.push(m.unwrap());
            }
        }
        assert_eq!(got, expected);
        assert_eq!(d.pending_len(), 0);
    }

    #[test]
    fn split_at_every_boundary() {
        let joined: Vec<u8> = sample_frames().concat();
        let expected = decode_all(&joined);
        for cut in 0..=joined.len() {
            let mut d = EventStreamDecoder::new();
            let mut got = Vec::new();
            for part in [&joined[..cut], &joined[cut..]] {
                d.push(part);
                while let Some(m) = d.next_message() {
                    got.push(m.unwrap());
                }
            }
            assert_eq!(got, expected, "cut at {cut}");
        }
    }

    #[test]
    fn all_header_types_round_trip() {
        let msg = Message {
            headers: vec![
                ("t".into(), HeaderValue::Bool(true)),
                ("f".into(), HeaderValue::Bool(false)),
                ("byte".into(), HeaderValue::Byte(-3)),
                ("short".into(), HeaderValue::Short(-300)),
                ("int".into(), HeaderValue::Int(70_000)),
                ("long".into(), HeaderValue::Long(-5_000_000_000)),
                (
                    "bytes".into(),
                    HeaderValue::Bytes(Bytes::from_static(&[0, 1, 255])),
                ),
                ("string".into(), HeaderValue::String("héllo".into())),
                ("ts".into(), HeaderValue::Timestamp(1_700_000_000_000)),
                ("uuid".into(), HeaderValue::Uuid([7; 16])),
            ],
            payload: Bytes::from_static(b"payload"),
        };
        let m = decode_all(&msg.encode());
        assert_eq!(m, vec![msg]);
        assert_eq!(m[0].header_str("int"), None);
        assert_eq!(m[0].header_str("string"), Some("héllo"));
    }

    fn first_error(bytes: &[u8]) -> FrameError {
        let mut d = EventStreamDecoder::new();
        d.push(bytes);
        let err = d.next_message().unwrap().unwrap_err();
        // The decoder gives up on the stream after an error.
        assert!(d.next_message().is_none());
        d.push(&encode_message(&[], b"later"));
        assert!(d.next_message().is_none());
        err
    }

    #[test]
    fn corrupted_prelude_crc() {
        let mut f = encode_message(&[("a", "b")], b"x");
        f[9] ^= 0x01;
        assert!(matches!(first_error(&f), FrameError::PreludeCrc { .. }));
        // A corrupted length is caught by the prelude CRC before waiting for 4 GiB.
        let mut f = encode_message(&[("a", "b")], b"x");
        f[0] = 0xff;
        assert!(matches!(
            first_error(&f[..12]),
            FrameError::PreludeCrc { .. }
        ));
    }

    #[test]
    fn corrupted_message_crc() {
        let mut f = encode_message(&[("a", "b")], b"payload");
        let n = f.len();
        f[n - 6] ^= 0x20; // a payload byte
        let err = first_error(&f);
        assert!(matches!(err, FrameError::MessageCrc { .. }));
        assert!(err.to_string().contains("message CRC"));
        let mut f = encode_message(&[], b"payload");
        let n = f.len();
        f[n - 1] ^= 0x01; // the CRC itself
        assert!(matches!(first_error(&f), FrameError::MessageCrc { .. }));
    }

    /// A prelude with a valid CRC but the given lengths.
    fn prelude(total: u32, headers: u32) -> Vec<u8> {
        let mut p = Vec::new();
        p.extend_from_slice(&total.to_be_bytes());
        p.extend_from_slice(&headers.to_be_bytes());
        let crc = crc32(&p);
        p.extend_from_slice(&crc.to_be_bytes());
        p
    }

    #[test]
    fn absurd_lengths() {
        assert_eq!(first_error(&prelude(15, 0)), FrameError::TotalLength(15));
        let huge = 16 * 1024 * 1024 + 1;
        assert_eq!(
            first_error(&prelude(huge, 0)),
            FrameError::TotalLength(huge)
        );
        assert_eq!(
            first_error(&prelude(20, 5)),
            FrameError::HeadersLength {
                headers: 5,
                total: 20
            }
        );
    }

    #[test]
    fn malformed_headers() {
        // Header claims a 5-byte name but the headers section is 3 bytes long.
        let bad = frame(&[5, b'a', b'b'], b"");
        assert_eq!(first_error(&bad), FrameError::Header("truncated header"));
        let bad = frame(&[1, b'a', 42], b"");
        assert_eq!(
            first_error(&bad),
            FrameError::Header("unknown header value type")
        );
        let bad = frame(&[1, b'a', 7, 0, 2, 0xff, 0xfe], b"");
        assert_eq!(
            first_error(&bad),
            FrameError::Header("string header is not UTF-8")
        );
    }

    #[test]
    fn incomplete_frame_waits() {
        let f = encode_message(&[("a", "b")], b"payload");
        let mut d = EventStreamDecoder::new();
        d.push(&f[..f.len() - 1]);
        assert!(d.next_message().is_none());
        assert_eq!(d.pending_len(), f.len() - 1);
        d.push(&f[f.len() - 1..]);
        assert_eq!(
            d.next_message().unwrap().unwrap().header_str("a"),
            Some("b")
        );
        assert!(d.next_message().is_none());
    }
}
