"""Is an audio file whole? Decoders read what is there and say nothing about what is missing
(libsndfile takes a WAV cut at 3 kB as a short file), so `verify` asks each container what
it promised: a WAV's chunk sizes, FLAC's sample count, an MP3's frame lengths and LAME/Xing
count, an Ogg stream's pages up to its end-of-stream page."""

from __future__ import annotations

import struct
from pathlib import Path

UNKNOWN_SIZES = (0, 0xFFFFFFFF)
"""WAV sizes a streaming writer leaves open (ours, sox, ffmpeg): the length is not promised."""


def truncation(path: Path, declared: int, held: int) -> str | None:
    """Why `path` is not whole, or None. `declared`/`held`: frames the decoder was promised
    (header, Xing count, granule) and frames it actually decoded."""
    data = Path(path).read_bytes()
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        reason = _wav(data)
    elif data[:4] == b"fLaC":
        reason = _flac(data, held)
    elif data[:4] == b"OggS":
        reason = _ogg(data)
    else:
        reason = _mp3(data)
    if reason is None and declared > held:
        reason = f"truncated: header says {declared:,} frames, file holds {held:,}"
    return reason


def _wav(data: bytes) -> str | None:
    riff = struct.unpack_from("<I", data, 4)[0]
    pos, align = 12, None
    while pos + 8 <= len(data):
        cid, size = data[pos : pos + 4], struct.unpack_from("<I", data, pos + 4)[0]
        body = pos + 8
        if cid == b"fmt " and body + 14 <= len(data):
            align = struct.unpack_from("<H", data, body + 12)[0] or None
        if cid == b"data":
            if size in UNKNOWN_SIZES:
                return None
            if body + size > len(data):
                if align is None:
                    return f"truncated: data chunk promises {size:,} bytes"
                have = (len(data) - body) // align
                return f"truncated: header says {size // align:,} frames, file holds {have:,}"
        elif body + size > len(data):
            return f"truncated inside its {cid.decode('latin-1').strip()!r} chunk"
        pos = body + size + (size & 1)
    if riff not in UNKNOWN_SIZES and riff + 8 > len(data):
        return f"truncated: header says {riff + 8:,} bytes, file holds {len(data):,}"
    return None


def _flac(data: bytes, held: int) -> str | None:
    if len(data) < 26:
        return "truncated: no complete FLAC header"
    total = int.from_bytes(data[18:26], "big") & ((1 << 36) - 1)
    if total and held < total:  # 0: unknown (a stream)
        return f"truncated: header says {total:,} frames, file holds {held:,}"
    return None


def _ogg(data: bytes) -> str | None:
    pos, last_flags = 0, 0
    while pos < len(data):
        if data[pos : pos + 4] != b"OggS":
            return f"damaged: no Ogg page at byte {pos:,}"
        if pos + 27 > len(data):
            return "truncated inside an Ogg page header"
        last_flags, segments = data[pos + 5], data[pos + 26]
        table = data[pos + 27 : pos + 27 + segments]
        end = pos + 27 + segments + sum(table)
        if len(table) < segments or end > len(data):
            return f"truncated inside the Ogg page at byte {pos:,}"
        pos = end
    if not last_flags & 0x04:
        return "truncated: the Ogg stream ends without its end-of-stream page"
    return None


MP3_KBPS = {
    1: (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    2: (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
"""Layer III bitrates by MPEG version (1; 2 and 2.5), index 0 = free format."""
MP3_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}
"""Sample rates by the header's version bits (3: MPEG-1, 2: MPEG-2, 0: MPEG-2.5)."""
MP3_TAGS = (b"TAG", b"APETAGEX", b"LYRICS")


def _mp3(data: bytes) -> str | None:
    """Walk Layer III frames after any ID3v2 tag; a frame longer than what is left is a cut.
    Other layers and free-format streams are left to the decoder's own count."""
    pos = 0
    if data[:3] == b"ID3" and len(data) >= 10:
        size = sum((b & 0x7F) << (7 * (3 - i)) for i, b in enumerate(data[6:10]))
        pos = 10 + size + (10 if data[5] & 0x10 else 0)
    frames = 0
    while pos + 4 <= len(data):
        if data.startswith(b"TAG", pos) and len(data) - pos < 128:
            return "truncated inside its ID3v1 tag"
        if data[pos:].startswith(MP3_TAGS):
            return None
        b1, b2 = data[pos + 1], data[pos + 2]
        version, layer = (b1 >> 3) & 3, (b1 >> 1) & 3
        if data[pos] != 0xFF or b1 & 0xE0 != 0xE0 or version == 1:
            return None  # not a Layer III frame: left to the decoder's count
        if layer != 1:
            return None
        kbps = MP3_KBPS[1 if version == 3 else 2][b2 >> 4] if b2 >> 4 < 15 else 0
        rate_index = (b2 >> 2) & 3
        if not kbps or rate_index == 3:
            return None
        rate = MP3_RATES[version][rate_index]
        length = (144 if version == 3 else 72) * kbps * 1000 // rate + ((b2 >> 1) & 1)
        if pos + length > len(data):
            return f"truncated inside MP3 frame {frames + 1:,}"
        pos += length
        frames += 1
    if frames and pos < len(data) and data[pos] == 0xFF:
        return f"truncated inside MP3 frame {frames + 1:,}"
    return None
