//! How long an uploaded audio file plays, for pricing transcriptions per second of audio when
//! the upstream's answer does not say (LiteLLM reads the file with `soundfile` then). Pure
//! functions of the file's bytes: nothing is decoded, only headers are read.
//!
//! Read: WAV (RIFF; the data size over the byte rate), FLAC (STREAMINFO's sample count) and
//! MP3 (a Xing/Info header's frame count, else every frame header walked); an ID3v2 tag
//! before FLAC or MP3 is skipped. Anything else (Ogg, M4A, WebM, ...) has no length here, and
//! neither has a file whose headers do not add up: the call then costs what the answer's own
//! duration says, or nothing, as in LiteLLM without a readable file.

/// Seconds of audio in `data`, when its format is one read here.
pub fn seconds(data: &[u8]) -> Option<f64> {
    if data.starts_with(b"RIFF") {
        return wav(data);
    }
    let data = skip_id3v2(data);
    if data.starts_with(b"fLaC") {
        return flac(data);
    }
    mp3(data)
}

/// The end of the last timestamp of an SRT or WebVTT transcript (`00:01:02,500` or
/// `00:01:02.500`), in seconds: how LiteLLM reads the length of a subtitle answer.
pub fn subtitle_seconds(text: &str) -> Option<f64> {
    let b = text.as_bytes();
    let digits = |s: &[u8]| -> Option<u64> {
        s.iter()
            .all(u8::is_ascii_digit)
            .then(|| s.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0')))
    };
    let mut latest: Option<f64> = None;
    // `hh:mm:ss,mmm` is twelve bytes.
    for i in 0..b.len().saturating_sub(11) {
        let w = &b[i..i + 12];
        if w[2] != b':' || w[5] != b':' || !matches!(w[8], b',' | b'.') {
            continue;
        }
        let (Some(h), Some(m), Some(s), Some(ms)) = (
            digits(&w[0..2]),
            digits(&w[3..5]),
            digits(&w[6..8]),
            digits(&w[9..12]),
        ) else {
            continue;
        };
        let t = (h * 3600 + m * 60 + s) as f64 + ms as f64 / 1000.0;
        latest = Some(latest.map_or(t, |l: f64| l.max(t)));
    }
    latest
}

fn u32_le(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn u32_be(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// RIFF/WAVE: the `data` chunk's size over `fmt`'s byte rate. A streamed WAV whose sizes
/// were never filled in (0 or all ones) counts the bytes that follow its `data` header.
fn wav(b: &[u8]) -> Option<f64> {
    if b.get(8..12)? != b"WAVE" {
        return None;
    }
    let mut at = 12usize;
    let mut byte_rate = None;
    while at + 8 <= b.len() {
        let id = &b[at..at + 4];
        let size = u32_le(b, at + 4)? as usize;
        let body = at + 8;
        if id == b"fmt " {
            byte_rate = Some(u32_le(b, body + 8)?).filter(|r| *r > 0);
        } else if id == b"data" {
            let left = b.len() - body;
            let size = if size == 0 || size == u32::MAX as usize || size > left {
                left
            } else {
                size
            };
            return Some(size as f64 / f64::from(byte_rate?));
        }
        // Chunks are padded to an even length.
        at = body.checked_add(size)?.checked_add(size & 1)?;
    }
    None
}

/// An ID3v2 tag's length (header, body and footer) at the start of `b`, skipped.
fn skip_id3v2(b: &[u8]) -> &[u8] {
    let Some(h) = b.get(..10).filter(|h| h.starts_with(b"ID3")) else {
        return b;
    };
    // The size is "syncsafe": four bytes of seven bits each.
    if h[6..10].iter().any(|x| x & 0x80 != 0) {
        return b;
    }
    let size = h[6..10]
        .iter()
        .fold(0usize, |n, x| (n << 7) | usize::from(*x));
    let footer = if h[5] & 0x10 != 0 { 10 } else { 0 };
    b.get(10 + size + footer..).unwrap_or_default()
}

/// FLAC: the sample count and rate of the STREAMINFO block, which comes first.
fn flac(b: &[u8]) -> Option<f64> {
    let header = b.get(4..8)?;
    if header[0] & 0x7f != 0 {
        return None;
    }
    let info = b.get(8..8 + 34)?;
    // Bits 80..100: sample rate (20 bits); 108..144: total samples (36 bits).
    let rate = (u32::from(info[10]) << 12) | (u32::from(info[11]) << 4) | u32::from(info[12] >> 4);
    let samples = (u64::from(info[13] & 0x0f) << 32) | u64::from(u32_be(info, 14)?);
    (rate > 0 && samples > 0).then(|| samples as f64 / f64::from(rate))
}

/// One MPEG audio frame header.
#[derive(Debug, Clone, Copy)]
struct Frame {
    len: usize,
    samples: u32,
    rate: u32,
    /// MPEG-1 (else 2 or 2.5).
    mpeg1: bool,
    mono: bool,
}

/// Bit rates in kbit/s by index 1..=14: MPEG-1 layers I, II, III; MPEG-2/2.5 layer I;
/// MPEG-2/2.5 layers II and III.
const BITRATES: [[u16; 14]; 5] = [
    [
        32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448,
    ],
    [
        32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384,
    ],
    [
        32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320,
    ],
    [
        32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256,
    ],
    [8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160],
];

fn frame_at(b: &[u8], at: usize) -> Option<Frame> {
    let h = b.get(at..at + 4)?;
    if h[0] != 0xff || h[1] & 0xe0 != 0xe0 {
        return None;
    }
    // Version: 0 = MPEG-2.5, 2 = MPEG-2, 3 = MPEG-1; layer: 1 = III, 2 = II, 3 = I.
    let version = (h[1] >> 3) & 3;
    let layer = (h[1] >> 1) & 3;
    let bitrate_index = usize::from(h[2] >> 4);
    let rate_index = usize::from((h[2] >> 2) & 3);
    if version == 1 || layer == 0 || bitrate_index == 0 || bitrate_index == 15 || rate_index == 3 {
        return None;
    }
    let mpeg1 = version == 3;
    let table = match (mpeg1, layer) {
        (true, 3) => 0,
        (true, 2) => 1,
        (true, _) => 2,
        (false, 3) => 3,
        (false, _) => 4,
    };
    let bitrate = u32::from(BITRATES[table][bitrate_index - 1]) * 1000;
    let rate = [44100u32, 48000, 32000][rate_index]
        / match version {
            3 => 1,
            2 => 2,
            _ => 4,
        };
    let padding = u32::from((h[2] >> 1) & 1);
    let (samples, len) = match layer {
        3 => (384, (12 * bitrate / rate + padding) * 4),
        2 => (1152, 144 * bitrate / rate + padding),
        _ if mpeg1 => (1152, 144 * bitrate / rate + padding),
        _ => (576, 72 * bitrate / rate + padding),
    };
    Some(Frame {
        len: len as usize,
        samples,
        rate,
        mpeg1,
        mono: h[3] >> 6 == 3,
    })
}

/// MP3 (any MPEG audio layer): the frame count of a Xing/Info header in the first frame when
/// there is one, else the frames walked until the headers stop (an ID3v1 tag, the end). The
/// first frame must be followed by another or by the end, so stray sync bytes in something
/// that is not MPEG audio are not taken for it.
fn mp3(b: &[u8]) -> Option<f64> {
    let first = frame_at(b, 0)?;
    if first.len < 4 || (first.len < b.len() && frame_at(b, first.len).is_none()) {
        return None;
    }
    let side_info = match (first.mpeg1, first.mono) {
        (true, false) => 32,
        (true, true) | (false, false) => 17,
        (false, true) => 9,
    };
    let tag = 4 + side_info;
    if matches!(b.get(tag..tag + 4), Some(b"Xing" | b"Info")) {
        let flags = u32_be(b, tag + 4)?;
        if flags & 1 != 0 {
            let frames = u32_be(b, tag + 8)?;
            return Some(f64::from(frames) * f64::from(first.samples) / f64::from(first.rate));
        }
    }
    let mut at = 0usize;
    let mut seconds = 0.0;
    while let Some(f) = frame_at(b, at).filter(|f| f.len >= 4) {
        seconds += f64::from(f.samples) / f64::from(f.rate);
        at += f.len;
    }
    Some(seconds)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A PCM WAV of `secs` seconds at `rate` Hz, mono, 16-bit, with a `LIST` chunk before
    /// the data (odd-sized, so padded).
    fn wav_file(rate: u32, secs: f64) -> Vec<u8> {
        let data_len = (f64::from(rate) * secs) as u32 * 2;
        let mut b = Vec::new();
        b.extend_from_slice(b"RIFF");
        b.extend_from_slice(&(36 + 8 + 4 + data_len).to_le_bytes());
        b.extend_from_slice(b"WAVEfmt ");
        b.extend_from_slice(&16u32.to_le_bytes());
        b.extend_from_slice(&1u16.to_le_bytes()); // PCM
        b.extend_from_slice(&1u16.to_le_bytes()); // mono
        b.extend_from_slice(&rate.to_le_bytes());
        b.extend_from_slice(&(rate * 2).to_le_bytes());
        b.extend_from_slice(&2u16.to_le_bytes());
        b.extend_from_slice(&16u16.to_le_bytes());
        b.extend_from_slice(b"LIST");
        b.extend_from_slice(&3u32.to_le_bytes());
        b.extend_from_slice(b"abc\0");
        b.extend_from_slice(b"data");
        b.extend_from_slice(&data_len.to_le_bytes());
        b.resize(b.len() + data_len as usize, 0);
        b
    }

    #[test]
    fn wav_length_is_its_data_over_its_byte_rate() {
        let w = wav_file(16000, 2.5);
        assert_eq!(seconds(&w), Some(2.5));
        // A streamed WAV with no sizes filled in: the bytes that follow.
        let mut streamed = w.clone();
        let at = streamed.len() - 2 * 40000 - 4;
        streamed[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(seconds(&streamed), Some(2.5));
        // Truncated: what is there.
        assert_eq!(seconds(&w[..w.len() - 16000]), Some(2.0));
        assert_eq!(seconds(b"RIFF\0\0\0\0WAVE"), None);
        assert_eq!(seconds(b"RIFF\0\0\0\0AVI "), None);
    }

    #[test]
    fn flac_length_is_streaminfos_samples_over_its_rate() {
        let mut b = b"fLaC".to_vec();
        b.extend_from_slice(&[0x80, 0, 0, 34]);
        let mut info = [0u8; 34];
        // 44100 Hz (20 bits), 2 channels, 16 bits, 441000 samples (36 bits).
        let rate: u32 = 44100;
        info[10] = (rate >> 12) as u8;
        info[11] = (rate >> 4) as u8;
        info[12] = ((rate & 0xf) as u8) << 4 | (1 << 1);
        info[13] = 0xf0;
        info[14..18].copy_from_slice(&441_000u32.to_be_bytes());
        b.extend_from_slice(&info);
        assert_eq!(seconds(&b), Some(10.0));
        // Behind an ID3v2 tag.
        let mut tagged = b"ID3\x04\0\0\0\0\0\x05hello".to_vec();
        tagged.extend_from_slice(&b);
        assert_eq!(seconds(&tagged), Some(10.0));
        assert_eq!(seconds(&b[..20]), None);
    }

    fn mp3_frame() -> Vec<u8> {
        // MPEG-1 layer III, 128 kbit/s, 44.1 kHz, no padding, mono: 417 bytes.
        let mut f = vec![0u8; 417];
        f[..4].copy_from_slice(&[0xff, 0xfb, 0x90, 0xc4]);
        f
    }

    #[test]
    fn mp3_length_walks_frames_or_reads_the_xing_count() {
        let frames = mp3_frame().repeat(100);
        let secs = seconds(&frames).unwrap();
        assert!((secs - 100.0 * 1152.0 / 44100.0).abs() < 1e-9, "{secs}");
        // An ID3v1 tag at the end stops the walk.
        let mut tagged = frames.clone();
        tagged.extend_from_slice(b"TAG");
        tagged.resize(tagged.len() + 125, 0);
        assert_eq!(seconds(&tagged), Some(secs));
        // A Xing header's frame count wins (mono MPEG-1: after 17 bytes of side info).
        let mut xing = mp3_frame();
        xing[21..25].copy_from_slice(b"Xing");
        xing[25..29].copy_from_slice(&1u32.to_be_bytes());
        xing[29..33].copy_from_slice(&1000u32.to_be_bytes());
        xing.extend_from_slice(&mp3_frame());
        let secs = seconds(&xing).unwrap();
        assert!((secs - 1000.0 * 1152.0 / 44100.0).abs() < 1e-9, "{secs}");
        // Sync bytes in something else are not taken for MP3.
        let mut noise = vec![0xffu8, 0xfb, 0x90, 0xc4];
        noise.resize(1000, 7);
        assert_eq!(seconds(&noise), None);
        assert_eq!(seconds(b"OggS\0\x02"), None);
        assert_eq!(seconds(b""), None);
    }

    #[test]
    fn subtitle_length_is_the_last_timestamp() {
        let srt =
            "1\n00:00:00,000 --> 00:00:02,500\nHello\n\n2\n00:00:02,500 --> 00:01:03,250\nworld\n";
        assert_eq!(subtitle_seconds(srt), Some(63.25));
        let vtt = "WEBVTT\n\n00:00:00.000 --> 00:00:04.120\nHi\n";
        assert_eq!(subtitle_seconds(vtt), Some(4.12));
        assert_eq!(subtitle_seconds("just text"), None);
    }
}
