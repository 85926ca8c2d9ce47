"""The reading sandbox, content sniffing and local-path recognition, without a server."""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import pytest

from kling_mcp.files import FileRefused, Sandbox, SizeLimits, local_path, sniff
from kling_mcp.files._sandbox import MB

from . import media_samples as m

FORMATS = [
    ("png", m.png(), "image", "image/png", True), ("jpeg", m.JPEG, "image", "image/jpeg", True),
    ("gif", m.GIF, "image", "image/gif", True), ("webp", m.WEBP, "image", "image/webp", True),
    ("bmp", m.BMP, "image", "image/bmp", True), ("heic", m.HEIC, "image", "image/heic", False),
    ("mp4", m.MP4, "video", "video/mp4", True), ("mov", m.MOV, "video", "video/quicktime", True),
    ("webm", m.WEBM, "video", "video/webm", True), ("mkv", m.MKV, "video", "video/x-matroska", False),
    ("avi", m.AVI, "video", "video/x-msvideo", False), ("wav", m.WAV, "audio", "audio/wav", True),
    ("mp3-id3", m.MP3_ID3, "audio", "audio/mpeg", True), ("mp3-frame", m.MP3_FRAME, "audio", "audio/mpeg", True),
    ("m4a", m.M4A, "audio", "audio/mp4", True), ("aac", m.AAC, "audio", "audio/aac", True),
    ("ogg", m.OGG, "audio", "audio/ogg", False), ("flac", m.FLAC, "audio", "audio/flac", False),
]  # fmt: skip


@pytest.mark.parametrize(("name", "content", "kind", "mime", "supported"), FORMATS, ids=[f[0] for f in FORMATS])
def test_sniff_names_each_format_by_its_bytes(name: str, content: bytes, kind: str, mime: str, supported: bool) -> None:
    found = sniff(content[:64])
    assert found is not None and (found.kind, found.mime, found.supported) == (kind, mime, supported)


@pytest.mark.parametrize("content", [m.DOTENV, m.SSH_KEY, m.HTML, b"", b"\x89PNG", b"RIFF\0\0\0\0JUNKJUNK" + b"\0" * 8,
                                     b"\xff\xd8", os.urandom(0) + bytes(range(64))])  # fmt: skip
def test_sniff_refuses_what_is_not_media(content: bytes) -> None:
    assert sniff(content[:64]) is None


JPEG_B64 = "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAgGBgcGBQgHBwcJCQgKDBQNDAsLDBkSEw8UHRofHh0aHBwgJC4nICIsIxwcKDcpLDAxNDQ0Hyc5PTgyPC4zNDL/"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("/home/ana/Pictures/cat.png", "/home/ana/Pictures/cat.png"),
        ("~/Pictures/cat.png", "~/Pictures/cat.png"),
        ("file:///home/ana/My%20Pictures/cat.png", "/home/ana/My Pictures/cat.png"),
        ("file://localhost/tmp/a.png", "/tmp/a.png"),
        ("./cat.png", "./cat.png"),
        ("../../etc/passwd", "../../etc/passwd"),
        ("C:\\Users\\ana\\cat.png", "C:\\Users\\ana\\cat.png"),
        ("/9j/4AAQ", "/9j/4AAQ"),  # short: a path, not an image
        (JPEG_B64, None),  # raw base64 of a JPEG starts with '/' too
        ("https://example.com/cat.png", None),
        ("c64351d5-4c59-42f7-95e1-eace013eddab", None),
        ("data:image/png;base64,iVBORw0KGgo=", None),
        ("file://server/share/cat.png", None),
        ("cat.png", "cat.png"),  # meant as a file: the sandbox explains that it needs an absolute path
        ("Pictures/my cat.png", "Pictures/my cat.png"),
        ("a cat", None),
        ("iVBORw0KGgo=", None),
    ],
)
def test_local_path_recognises_paths_and_nothing_else(value: str, expected: str | None) -> None:
    assert local_path(value) == expected


@pytest.fixture
def root(tmp_path: Path) -> Path:
    folder = tmp_path / "media"
    folder.mkdir()
    return folder


def refused(sandbox: Sandbox, source: str, kind: str | None = "image") -> FileRefused:
    with pytest.raises(FileRefused) as caught:
        sandbox.check(source, kind)  # type: ignore[arg-type]
    return caught.value


def test_a_file_inside_a_root_is_read_whole_and_hashed(root: Path) -> None:
    content = m.png(64, 64)
    (root / "cat.png").write_bytes(content)
    local = Sandbox([root]).check(str(root / "cat.png"), "image")
    assert local.sha256 == hashlib.sha256(content).hexdigest() and local.size == len(content)
    assert local.media_type.mime == "image/png" and local.path == (root / "cat.png").resolve()
    with local.open() as handle:
        assert handle.read() == content


def test_the_name_never_decides_the_format(root: Path) -> None:
    (root / "photo.txt").write_bytes(m.JPEG)
    assert Sandbox([root]).check(str(root / "photo.txt"), "image").media_type.mime == "image/jpeg"


def test_dot_dot_cannot_climb_out_of_a_root(root: Path) -> None:
    (root.parent / "secret.png").write_bytes(m.png())
    problem = refused(Sandbox([root]), str(root / ".." / "secret.png"))
    assert problem.reason == "outside_roots" and str(root) in problem.message + problem.fix


def test_relative_paths_are_refused_not_guessed(root: Path) -> None:
    for source in ("../../etc/passwd", "./cat.png"):
        assert refused(Sandbox([root]), source).reason == "relative_path"


def test_a_symlink_out_of_a_root_is_refused(root: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside.png"
    outside.write_bytes(m.png())
    (root / "innocent.png").symlink_to(outside)
    problem = refused(Sandbox([root]), str(root / "innocent.png"))
    assert problem.reason == "outside_roots" and str(outside) in problem.message


def test_a_symlink_within_a_root_is_followed(root: Path) -> None:
    (root / "real.png").write_bytes(m.png())
    (root / "alias.png").symlink_to(root / "real.png")
    assert Sandbox([root]).check(str(root / "alias.png"), "image").path == (root / "real.png").resolve()


def test_etc_passwd_is_refused_without_being_read(root: Path) -> None:
    assert refused(Sandbox([root]), "/etc/passwd").reason == "outside_roots"


def test_a_dotenv_renamed_png_is_refused_for_its_content(root: Path) -> None:
    (root / "holiday.png").write_bytes(m.DOTENV)
    problem = refused(Sandbox([root]), str(root / "holiday.png"))
    assert problem.reason == "not_media" and "JPEG, PNG" in problem.fix
    assert "rw-live" not in problem.message + problem.fix  # the content is never echoed


def test_hidden_files_and_folders_are_never_read(root: Path) -> None:
    (root / ".ssh").mkdir()
    (root / ".ssh" / "key.png").write_bytes(m.png())
    (root / ".hidden.png").write_bytes(m.png())
    for path in (root / ".ssh" / "key.png", root / ".hidden.png"):
        assert refused(Sandbox([root]), str(path)).reason == "hidden_path"


def test_files_over_the_limit_are_refused_before_reading(root: Path) -> None:
    big = root / "big.png"
    with big.open("wb") as handle:
        handle.write(m.png())
        handle.truncate(11 * MB)  # sparse: cheap to make
    problem = refused(Sandbox([root], SizeLimits(image=10 * MB)), str(big))
    assert problem.reason == "too_large" and "10 MB" in problem.message and "KLING_MCP_MAX_IMAGE_MB" in problem.fix


def test_a_fifo_is_refused_without_blocking(root: Path) -> None:
    fifo = root / "frame.png"
    os.mkfifo(fifo)
    result: list[FileRefused] = []
    worker = threading.Thread(target=lambda: result.append(refused(Sandbox([root]), str(fifo))), daemon=True)
    worker.start()
    worker.join(5)
    assert not worker.is_alive(), "checking a FIFO blocked"
    assert result[0].reason == "not_regular_file"


def test_a_device_file_is_refused() -> None:
    assert refused(Sandbox([Path("/dev")]), "/dev/zero").reason == "not_regular_file"


def test_folders_missing_files_and_empty_files_are_refused(root: Path) -> None:
    (root / "empty.png").write_bytes(b"")
    assert refused(Sandbox([root]), str(root)).reason == "not_regular_file"
    assert refused(Sandbox([root]), str(root / "nope.png")).reason == "not_found"
    assert refused(Sandbox([root]), str(root / "empty.png")).reason == "empty"


def test_a_file_of_the_wrong_kind_or_an_unsupported_format_is_refused(root: Path) -> None:
    (root / "clip.mp4").write_bytes(m.MP4)
    (root / "photo.heic").write_bytes(m.HEIC)
    wrong = refused(Sandbox([root]), str(root / "clip.mp4"), "image")
    assert wrong.reason == "wrong_kind" and "MP4" in wrong.message
    unsupported = refused(Sandbox([root]), str(root / "photo.heic"), "image")
    assert unsupported.reason == "unsupported_format" and "HEIC" in unsupported.message


def test_with_no_kind_the_content_decides_and_its_limit_applies(root: Path) -> None:
    (root / "voice.wav").write_bytes(m.WAV + b"\0" * 2000)
    assert Sandbox([root]).check(str(root / "voice.wav"), None).media_type.kind == "audio"
    assert refused(Sandbox([root], SizeLimits(audio=1000)), str(root / "voice.wav"), None).reason == "too_large"


def test_client_roots_narrow_the_sandbox_but_never_widen_it(root: Path, tmp_path: Path) -> None:
    (root / "project").mkdir()
    (root / "project" / "a.png").write_bytes(m.png())
    (root / "b.png").write_bytes(m.png())
    (tmp_path / "c.png").write_bytes(m.png())
    sandbox = Sandbox([root])
    narrowed = sandbox.narrowed([(root / "project").as_uri(), tmp_path.parent.as_uri()])
    assert narrowed.describe() == [str((root / "project").resolve()), str(root.resolve())]
    assert sandbox.narrowed([(root / "project").as_uri()]).check(str(root / "project" / "a.png"), "image")
    assert refused(sandbox.narrowed([(root / "project").as_uri()]), str(root / "b.png")).reason == "outside_roots"
    assert refused(sandbox.narrowed([tmp_path.as_uri()]), str(tmp_path / "c.png")).reason == "outside_roots"
    disjoint = refused(sandbox.narrowed([Path("/opt").as_uri()]), str(root / "b.png"))
    assert "outside the MCP client's roots (/opt)" in disjoint.message and "client's roots" in disjoint.fix
    assert sandbox.narrowed(["https://example.com/x"]).roots == sandbox.roots  # no file roots: no narrowing


def test_the_output_folder_stays_readable_whatever_the_client_roots(root: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "saved.mp4").write_bytes(m.MP4)
    narrowed = Sandbox([root], always=[out]).narrowed([(root / "project").as_uri()])
    assert narrowed.check(str(out / "saved.mp4"), "video").media_type.label == "MP4"
    assert str(out.resolve()) in narrowed.describe()


def test_a_file_swapped_after_its_check_is_not_uploaded(root: Path) -> None:
    path = root / "cat.png"
    path.write_bytes(m.png())
    local = Sandbox([root]).check(str(path), "image")
    path.unlink()
    path.write_bytes(m.png(8, 8))
    with pytest.raises(FileRefused) as caught:
        local.open()
    assert caught.value.reason == "changed"


def test_a_clip_length_is_read_from_its_header_wherever_moov_sits(root: Path) -> None:
    (root / "faststart.mp4").write_bytes(m.MP4)
    # moov after a large mdat-like box: the length is still found, without reading the box between
    filler = b"\x00\x00\x00\x08free" + (8 + 5 * MB).to_bytes(4, "big") + b"mdat" + b"\0" * (5 * MB)
    ftyp_size = int.from_bytes(m.MP4[:4], "big")
    (root / "moov-last.mp4").write_bytes(m.MP4[:ftyp_size] + filler + m.MP4[ftyp_size:])
    (root / "no-moov.mp4").write_bytes(m.MP4[:ftyp_size] + b"\0" * 100)
    sandbox = Sandbox([root])
    assert sandbox.check(str(root / "faststart.mp4"), "video").seconds == 1.0
    assert sandbox.check(str(root / "moov-last.mp4"), "video").seconds == 1.0
    assert sandbox.check(str(root / "no-moov.mp4"), "video").seconds is None
