"""Local media in and out: the reading sandbox, content sniffing, uploads and downloads."""

from ._downloads import DownloadProblem, SavedVideo, VideoDownloads
from ._refs import local_path
from ._sandbox import FileRefused, LocalFile, Sandbox, SizeLimits
from ._sniff import SUPPORTED, MediaKind, MediaType, sniff
from ._uploads import MediaUploads, StoredMedia

__all__ = [
    "SUPPORTED", "DownloadProblem", "FileRefused", "LocalFile", "MediaKind", "MediaType", "MediaUploads", "Sandbox",
    "SavedVideo", "SizeLimits", "StoredMedia", "VideoDownloads", "local_path", "sniff",
]  # fmt: skip
