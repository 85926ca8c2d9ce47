"""What a file's first bytes say it is. Pure: the content decides, never the file name.

Which formats count as accepted is a reading, since neither the seed pages nor Runware's
media-storage docs list them for video and audio:

- images: JPEG, PNG, WEBP, BMP and GIF, the formats Runware's image-upload page lists;
- videos: MP4 (and M4V) and MOV, the containers Kling takes, plus WEBM, one of Runware's own
  output formats, so a clip made here can be edited here;
- audio (element voices): MP3, WAV, and AAC alone or in an M4A.

Other formats that are recognised (HEIC, AVIF, MKV, AVI, 3GP, OGG, FLAC) are named in the
refusal, so the user knows what to convert; anything unrecognised is refused as unknown.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

MediaKind = Literal["image", "video", "audio"]

# Enough for every signature below (the WEBM doctype sits within the first 40 bytes or so).
HEAD_BYTES = 64


@dataclass(frozen=True, slots=True)
class MediaType:
    kind: MediaKind
    mime: str
    label: str  # what a person calls the format
    supported: bool = True


EXTENSIONS = {
    "image/jpeg": "jpg", "image/png": "png", "image/webp": "webp", "image/bmp": "bmp", "image/gif": "gif",
    "video/mp4": "mp4", "video/quicktime": "mov", "video/webm": "webm",
    "audio/mpeg": "mp3", "audio/wav": "wav", "audio/mp4": "m4a", "audio/aac": "aac",
}  # fmt: skip

SUPPORTED: dict[MediaKind, str] = {
    "image": "JPEG, PNG, WEBP, BMP or GIF",
    "video": "MP4, MOV or WEBM",
    "audio": "MP3, WAV or M4A/AAC",
}

_JPEG_MARKERS = {0xDB, 0xC0, 0xC2, 0xC4, 0xDD, 0xFE, *range(0xE0, 0xF0)}
_BMP_HEADER_SIZES = {12, 40, 52, 56, 64, 108, 124}
_AUDIO_BRANDS = {b"M4A ", b"M4B ", b"F4A "}
_IMAGE_BRANDS = {b"heic": "HEIC", b"heix": "HEIC", b"mif1": "HEIF", b"msf1": "HEIF", b"avif": "AVIF", b"avis": "AVIF"}
_3GP_PREFIXES = (b"3gp", b"3g2")
_QUICKTIME_ATOMS = {b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"}


def sniff(head: bytes) -> MediaType | None:
    """The media type of a file that starts with ``head`` (at least :data:`HEAD_BYTES` of it,
    when the file is that long), or None when the bytes are no media format at all."""
    if head.startswith(b"\x89PNG\r\n\x1a\n") and head[12:16] == b"IHDR":
        return MediaType("image", "image/png", "PNG")
    if len(head) >= 4 and head[:3] == b"\xff\xd8\xff" and head[3] in _JPEG_MARKERS:
        return MediaType("image", "image/jpeg", "JPEG")
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return MediaType("image", "image/gif", "GIF")
    if head[:4] == b"RIFF" and len(head) >= 16:
        form = head[8:12]
        if form == b"WEBP" and head[12:16] in (b"VP8 ", b"VP8L", b"VP8X"):
            return MediaType("image", "image/webp", "WEBP")
        if form == b"WAVE":
            return MediaType("audio", "audio/wav", "WAV")
        if form == b"AVI ":
            return MediaType("video", "video/x-msvideo", "AVI", supported=False)
        return None
    if head[:2] == b"BM" and len(head) >= 18 and head[6:10] == b"\0\0\0\0":
        if int.from_bytes(head[14:18], "little") in _BMP_HEADER_SIZES:
            return MediaType("image", "image/bmp", "BMP")
    box = head[4:8]
    if box == b"ftyp" and len(head) >= 12:
        return _iso_media(head[8:12])
    if box in _QUICKTIME_ATOMS and int.from_bytes(head[:4], "big") >= 8:
        return MediaType("video", "video/quicktime", "MOV")
    if head[:4] == b"\x1a\x45\xdf\xa3":  # EBML: WEBM or Matroska, told apart by the doctype
        if b"webm" in head:
            return MediaType("video", "video/webm", "WEBM")
        if b"matroska" in head:
            return MediaType("video", "video/x-matroska", "MKV", supported=False)
        return None
    if head[:3] == b"ID3" and len(head) >= 10 and head[3] < 5:
        return MediaType("audio", "audio/mpeg", "MP3")
    if head[:4] == b"OggS":
        return MediaType("audio", "audio/ogg", "OGG", supported=False)
    if head[:4] == b"fLaC":
        return MediaType("audio", "audio/flac", "FLAC", supported=False)
    return _mpeg_audio(head)


def _iso_media(brand: bytes) -> MediaType:
    if brand in _AUDIO_BRANDS:
        return MediaType("audio", "audio/mp4", "M4A")
    if brand == b"qt  ":
        return MediaType("video", "video/quicktime", "MOV")
    if brand in _IMAGE_BRANDS:
        return MediaType("image", "image/heic", _IMAGE_BRANDS[brand], supported=False)
    if brand.startswith(_3GP_PREFIXES):
        return MediaType("video", "video/3gpp", "3GP", supported=False)
    return MediaType("video", "video/mp4", "MP4")


def _mpeg_audio(head: bytes) -> MediaType | None:
    """A bare MPEG audio frame header: MP3 (layer III) or AAC in ADTS."""
    if len(head) < 4 or head[0] != 0xFF or head[1] & 0xE0 != 0xE0:
        return None
    version, layer = (head[1] >> 3) & 0b11, (head[1] >> 1) & 0b11
    if head[1] & 0xF6 == 0xF0:  # ADTS: sync 0xFFF, layer 00
        return MediaType("audio", "audio/aac", "AAC") if (head[2] >> 2) & 0xF < 13 else None
    bitrate, rate = head[2] >> 4, (head[2] >> 2) & 0b11
    if version != 0b01 and layer == 0b01 and bitrate not in (0, 15) and rate != 0b11:
        return MediaType("audio", "audio/mpeg", "MP3")
    return None
