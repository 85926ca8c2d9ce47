"""A tiny, valid, deterministic MP4 made in pure Python.

The emulator must hand out something a downloader can save and a player can
open, without shipping a binary fixture or needing ffmpeg. The file holds one
H.264 Baseline frame whose macroblocks are all I_PCM: raw samples behind a
few header bits, so no entropy coder or transform is needed and any decoder
can show it. The frame is shown for one second.
"""

from __future__ import annotations

import struct
from functools import cache

WIDTH = 64
HEIGHT = 64
TIMESCALE = 1000
DURATION = 1000  # in TIMESCALE units: one second

_PROFILE_BASELINE = 66
_COMPATIBILITY = 0xC0  # constraint_set0 and set1: decodable by Baseline and Main decoders
_LEVEL = 10  # level 1.0 covers 99 macroblocks; 64x64 is 16
_MB_TYPE_I_PCM = 25

# A calm slate blue (BT.601 Y'CbCr); no sample is 0, which early H.264 forbade in PCM.
_LUMA, _CB, _CR = 90, 150, 110


class _Bits:
    """An MSB-first bit writer with the H.264 Exp-Golomb codes."""

    def __init__(self) -> None:
        self._bits: list[int] = []

    def u(self, n: int, value: int) -> None:
        self._bits.extend((value >> (n - 1 - i)) & 1 for i in range(n))

    def ue(self, value: int) -> None:
        code = value + 1
        length = code.bit_length()
        self.u(length - 1, 0)
        self.u(length, code)

    def se(self, value: int) -> None:
        self.ue(2 * value - 1 if value > 0 else -2 * value)

    def align_zero(self) -> None:
        while len(self._bits) % 8:
            self._bits.append(0)

    def raw(self, data: bytes) -> None:
        assert len(self._bits) % 8 == 0
        for byte in data:
            self.u(8, byte)

    def trailing(self) -> bytes:
        """rbsp_trailing_bits, then the bytes."""
        self._bits.append(1)
        self.align_zero()
        out = bytearray()
        for i in range(0, len(self._bits), 8):
            byte = 0
            for bit in self._bits[i : i + 8]:
                byte = (byte << 1) | bit
            out.append(byte)
        return bytes(out)


def _nal(header: int, rbsp: bytes) -> bytes:
    """A NAL unit with emulation prevention, so no start code can appear inside it."""
    out = bytearray([header])
    zeros = 0
    for byte in rbsp:
        if zeros >= 2 and byte <= 3:
            out.append(3)
            zeros = 0
        out.append(byte)
        zeros = zeros + 1 if byte == 0 else 0
    return bytes(out)


def _sps() -> bytes:
    b = _Bits()
    b.u(8, _PROFILE_BASELINE)
    b.u(8, _COMPATIBILITY)
    b.u(8, _LEVEL)
    b.ue(0)  # seq_parameter_set_id
    b.ue(0)  # log2_max_frame_num_minus4
    b.ue(2)  # pic_order_cnt_type 2: output order is decode order, nothing more to signal
    b.ue(1)  # max_num_ref_frames
    b.u(1, 0)  # gaps_in_frame_num_value_allowed_flag
    b.ue(WIDTH // 16 - 1)
    b.ue(HEIGHT // 16 - 1)
    b.u(1, 1)  # frame_mbs_only_flag
    b.u(1, 1)  # direct_8x8_inference_flag
    b.u(1, 0)  # frame_cropping_flag
    b.u(1, 0)  # vui_parameters_present_flag
    return _nal(0x67, b.trailing())


def _pps() -> bytes:
    b = _Bits()
    b.ue(0)  # pic_parameter_set_id
    b.ue(0)  # seq_parameter_set_id
    b.u(1, 0)  # entropy_coding_mode_flag: CAVLC
    b.u(1, 0)  # bottom_field_pic_order_in_frame_present_flag
    b.ue(0)  # num_slice_groups_minus1
    b.ue(0)  # num_ref_idx_l0_default_active_minus1
    b.ue(0)  # num_ref_idx_l1_default_active_minus1
    b.u(1, 0)  # weighted_pred_flag
    b.u(2, 0)  # weighted_bipred_idc
    b.se(0)  # pic_init_qp_minus26
    b.se(0)  # pic_init_qs_minus26
    b.se(0)  # chroma_qp_index_offset
    b.u(1, 1)  # deblocking_filter_control_present_flag, so the slice can turn it off
    b.u(1, 0)  # constrained_intra_pred_flag
    b.u(1, 0)  # redundant_pic_cnt_present_flag
    return _nal(0x68, b.trailing())


def _idr_slice() -> bytes:
    b = _Bits()
    b.ue(0)  # first_mb_in_slice
    b.ue(7)  # slice_type: I, and every slice of the picture is I
    b.ue(0)  # pic_parameter_set_id
    b.u(4, 0)  # frame_num, log2_max_frame_num bits
    b.ue(0)  # idr_pic_id
    b.u(1, 0)  # no_output_of_prior_pics_flag
    b.u(1, 0)  # long_term_reference_flag
    b.se(0)  # slice_qp_delta
    b.ue(1)  # disable_deblocking_filter_idc: PCM needs no filtering
    samples = bytes([_LUMA] * 256 + [_CB] * 64 + [_CR] * 64)
    for _ in range((WIDTH // 16) * (HEIGHT // 16)):
        b.ue(_MB_TYPE_I_PCM)
        b.align_zero()  # pcm_alignment_zero_bit
        b.raw(samples)
    return _nal(0x65, b.trailing())


def _box(kind: bytes, *payload: bytes) -> bytes:
    body = b"".join(payload)
    return struct.pack(">I4s", 8 + len(body), kind) + body


def _full_box(kind: bytes, version: int, flags: int, *payload: bytes) -> bytes:
    return _box(kind, struct.pack(">I", (version << 24) | flags), *payload)


_MATRIX = struct.pack(">9I", 0x00010000, 0, 0, 0, 0x00010000, 0, 0, 0, 0x40000000)


def _avc1(sps: bytes, pps: bytes) -> bytes:
    avcc = _box(
        b"avcC",
        bytes([1, _PROFILE_BASELINE, _COMPATIBILITY, _LEVEL, 0xFF, 0xE1]),  # 4-byte NAL lengths, 1 SPS
        struct.pack(">H", len(sps)), sps,
        bytes([1]), struct.pack(">H", len(pps)), pps,
    )  # fmt: skip
    name = b"kling-mcp emulator"
    return _box(
        b"avc1",
        bytes(6), struct.pack(">H", 1),  # reserved, data_reference_index
        bytes(16),  # pre_defined and reserved
        struct.pack(">HHII", WIDTH, HEIGHT, 0x00480000, 0x00480000),  # 72 dpi
        bytes(4), struct.pack(">H", 1),  # reserved, frame_count
        bytes([len(name)]) + name.ljust(31, b"\0"),
        struct.pack(">Hh", 0x0018, -1),  # depth, pre_defined
        avcc,
    )  # fmt: skip


def _moov(sample_size: int, chunk_offset: int, sps: bytes, pps: bytes) -> bytes:
    mvhd = _full_box(
        b"mvhd", 0, 0,
        struct.pack(">IIII", 0, 0, TIMESCALE, DURATION),
        struct.pack(">IH", 0x00010000, 0x0100), bytes(10),  # rate 1.0, volume 1.0
        _MATRIX, bytes(24),
        struct.pack(">I", 2),  # next_track_ID
    )  # fmt: skip
    tkhd = _full_box(
        b"tkhd", 0, 0x3,  # enabled, in movie
        struct.pack(">IIIII", 0, 0, 1, 0, DURATION),
        bytes(8), struct.pack(">hhhH", 0, 0, 0, 0),  # layer, alternate_group, volume (video: 0)
        _MATRIX, struct.pack(">II", WIDTH << 16, HEIGHT << 16),
    )  # fmt: skip
    mdhd = _full_box(
        b"mdhd", 0, 0,
        struct.pack(">IIII", 0, 0, TIMESCALE, DURATION),
        struct.pack(">HH", 0x55C4, 0),  # language "und"
    )  # fmt: skip
    hdlr = _full_box(b"hdlr", 0, 0, bytes(4), b"vide", bytes(12), b"VideoHandler\0")
    vmhd = _full_box(b"vmhd", 0, 1, bytes(8))
    dinf = _box(b"dinf", _full_box(b"dref", 0, 0, struct.pack(">I", 1), _full_box(b"url ", 0, 1)))
    stbl = _box(
        b"stbl",
        _full_box(b"stsd", 0, 0, struct.pack(">I", 1), _avc1(sps, pps)),
        _full_box(b"stts", 0, 0, struct.pack(">III", 1, 1, DURATION)),
        _full_box(b"stss", 0, 0, struct.pack(">II", 1, 1)),
        _full_box(b"stsc", 0, 0, struct.pack(">IIII", 1, 1, 1, 1)),
        _full_box(b"stsz", 0, 0, struct.pack(">III", 0, 1, sample_size)),
        _full_box(b"stco", 0, 0, struct.pack(">II", 1, chunk_offset)),
    )
    minf = _box(b"minf", vmhd, dinf, stbl)
    trak = _box(b"trak", tkhd, _box(b"mdia", mdhd, hdlr, minf))
    return _box(b"moov", mvhd, trak)


@cache
def placeholder_mp4() -> bytes:
    """The bytes of the emulator's video: the same for every result, on every run."""
    sps, pps, idr = _sps(), _pps(), _idr_slice()
    sample = struct.pack(">I", len(idr)) + idr
    ftyp = _box(b"ftyp", b"isom", struct.pack(">I", 0x200), b"isom", b"iso2", b"avc1", b"mp41")
    # moov's size does not depend on the offset it records, so measure it once with a dummy.
    moov_size = len(_moov(len(sample), 0, sps, pps))
    offset = len(ftyp) + moov_size + 8
    moov = _moov(len(sample), offset, sps, pps)
    return ftyp + moov + _box(b"mdat", sample)
