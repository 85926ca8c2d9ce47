"""A local Runware emulator: a real HTTP server on loopback that speaks the
Runware task API for videoInference, getResponse, getTaskDetails and mediaStorage,
with Runware's own error codes.

The test suite and ``--simulate`` mode use it in place of Runware. Jobs finish
on a (scalable) clock, results download as real clips that follow the request
(size, length, format, sound, first and last frames; see ``_render``), and faults
(HTTP errors, slow, trickling or dropped connections before or after the request
is processed, broken JSON, odd answer shapes, errors naming no task, the key
echoed into errors, failed jobs, results without a video, webhook calls dropped,
sent twice or late) can be injected from Python or over HTTP. A task sent with a
``webhookURL`` has each result POSTed there as it finishes, with retries (``_webhooks``). Everything received is recorded in ``Emulator.stats``, and
``Emulator.billed()`` says what each task has been charged.
"""

from ._emulator import Emulator, EmulatorStats, Outcome
from ._faults import FAULT_KINDS, Fault, FaultKind
from ._mp4 import placeholder_mp4
from ._png import placeholder_png
from ._server import run_emulator, run_emulator_in_thread, serve
from ._store import EmulatorStore

__all__ = [
    "FAULT_KINDS",
    "Emulator",
    "EmulatorStats",
    "EmulatorStore",
    "Fault",
    "FaultKind",
    "Outcome",
    "placeholder_mp4",
    "placeholder_png",
    "run_emulator",
    "run_emulator_in_thread",
    "serve",
]
