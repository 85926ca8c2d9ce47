"""Small, real-looking media files: the first bytes of each format, as the sniffer reads them."""

from __future__ import annotations

import struct

from kling_mcp.emulator import placeholder_mp4, placeholder_png


def png(width: int = 4, height: int = 4) -> bytes:
    return placeholder_png(width, height)


JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + b"\x00" * 100 + b"\xff\xd9"
GIF = b"GIF89a\x01\x00\x01\x00\x80\x00\x00" + b"\x00" * 40
WEBP = b"RIFF\x24\x00\x00\x00WEBPVP8 \x18\x00\x00\x00" + b"\x00" * 60
BMP = b"BM" + struct.pack("<I", 90) + b"\0\0\0\0" + struct.pack("<I", 54) + struct.pack("<I", 40) + b"\0" * 60
HEIC = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 40
MP4 = placeholder_mp4()
MOV = b"\x00\x00\x00\x14ftypqt  \x00\x00\x02\x00qt  " + b"\x00" * 60
WEBM = b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\xf7\x81\x01\x42\xf2\x81\x04\x42\xf3\x81\x08\x42\x82\x84webm" + b"\0" * 40
MKV = WEBM.replace(b"\x84webm", b"\x88matroska")
AVI = b"RIFF\x24\x00\x00\x00AVI LIST" + b"\x00" * 60
WAV = b"RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00" + b"\x00" * 60
MP3_ID3 = b"ID3\x04\x00\x00\x00\x00\x00\x00" + b"\xff\xfb\x90\x64" + b"\x00" * 60
MP3_FRAME = b"\xff\xfb\x90\x64" + b"\x00" * 60
M4A = b"\x00\x00\x00\x20ftypM4A \x00\x00\x00\x00M4A mp42isom" + b"\x00" * 40
AAC = b"\xff\xf1\x50\x80\x02\x1f\xfc" + b"\x00" * 60
OGG = b"OggS\x00\x02" + b"\x00" * 60
FLAC = b"fLaC\x00\x00\x00\x22" + b"\x00" * 60

DOTENV = b"RUNWARE_API_KEY=rw-live-0123456789abcdef\nDATABASE_URL=postgres://u:p@db/prod\n"
SSH_KEY = b"-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n"
HTML = b"<!doctype html><html><body>Access denied</body></html>"
