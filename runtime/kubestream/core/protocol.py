"""Messages between driver and executors, and between executors.

Plain frozen dataclasses, the same in local loopback and over ZeroMQ, where the
transport pickles them only after CURVE has authenticated the peer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from kubestream.core.functions import FunctionRef
from kubestream.core.input_files import InputEvent
from kubestream.core.tasks import ExecutorAddress, TaskDescription


@dataclass(frozen=True, slots=True)
class RegisterExecutor:
    executor_id: str
    block_address: str
    cores: int
    # Random per executor process: a replacement pod reuses the executor id,
    # and its pid (1 in a container) too, so neither tells the two apart.
    incarnation: int
    hash_probe: int


@dataclass(frozen=True, slots=True)
class RegistrationRefused:
    reason: str


@dataclass(frozen=True, slots=True)
class Heartbeat:
    blocks: int = 0
    block_bytes: int = 0


@dataclass(frozen=True, slots=True)
class LaunchTask:
    task: TaskDescription
    functions: dict[FunctionRef, bytes] = field(default_factory=dict)


class TaskState(Enum):
    FINISHED = "finished"
    FAILED = "failed"
    FETCH_FAILED = "fetch_failed"


@dataclass(frozen=True, slots=True)
class TaskFinished:
    task_id: int
    state: TaskState
    value: object = None
    error: str | None = None
    fetch_failure: tuple[int, int, str] | None = None
    duration: float = 0.0
    input_events: tuple[InputEvent, ...] = ()


@dataclass(frozen=True, slots=True)
class RemoveBlocks:
    prefixes: tuple[str, ...] = ()
    block_ids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class StartReceiver:
    stream_id: int
    receiver: bytes
    block_interval: float
    replicas: tuple[ExecutorAddress, ...] = ()
    wal_dir: str | None = None
    rate_limit: float | None = None


@dataclass(frozen=True, slots=True)
class StopReceiver:
    stream_id: int


@dataclass(frozen=True, slots=True)
class UpdateRateLimit:
    stream_id: int
    rate_limit: float | None


@dataclass(frozen=True, slots=True)
class BlockAdded:
    stream_id: int
    block_id: str
    records: int
    replica: str | None = None
    wal_path: str | None = None
    repeated: bool = False
    """Sent again, to a driver that may not have heard it (it restarted): not new records."""


@dataclass(frozen=True, slots=True)
class BlockRecorded:
    """The driver's answer to BlockAdded (Spark's reply to AddBlock): `recorded` True once the
    ReceiverTracker holds the block for a batch (with the write-ahead log, a restarted driver
    finds it too); False when it refused it (the stream is not received on that executor
    now), in which case it also deleted the block's log file. A reliable receiver
    acknowledges its source only after a True answer."""

    stream_id: int
    block_id: str
    recorded: bool
    reason: str = ""


@dataclass(frozen=True, slots=True)
class BlockAbandoned:
    """A receiver gave up waiting for BlockRecorded and did not acknowledge its source, which
    sends the records again: unless the driver already holds the block, it deletes its
    write-ahead log file, so a later driver does not process the records a second time."""

    stream_id: int
    block_id: str
    wal_path: str | None = None


@dataclass(frozen=True, slots=True)
class ReceiverStatus:
    stream_id: int
    state: str
    message: str = ""


@dataclass(frozen=True, slots=True)
class BadRecords:
    """Records a receiver could not store as they came (reason "too_long": dropped;
    "undecodable": kept with replacement characters) since its last report."""

    stream_id: int
    reason: str
    records: int
    detail: str = ""


@dataclass(frozen=True, slots=True)
class ExecutorLost:
    executor_id: str


@dataclass(frozen=True, slots=True)
class ExecutorDraining:
    """Peers stop choosing the executor as a replica: it is being decommissioned."""

    executor_id: str


@dataclass(frozen=True, slots=True)
class MigrateBlocks:
    """Told to a draining executor: copy every block you hold to these peers."""

    peers: tuple[ExecutorAddress, ...]


@dataclass(frozen=True, slots=True)
class BlocksMigrated:
    moves: tuple[tuple[str, str], ...]  # (block id, executor now holding it)
    failed: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Shutdown:
    reason: str = ""


@dataclass(frozen=True, slots=True)
class FetchBlocks:
    block_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class BlocksFetched:
    blobs: tuple[bytes | None, ...]


@dataclass(frozen=True, slots=True)
class PutBlock:
    block_id: str
    blob: bytes


@dataclass(frozen=True, slots=True)
class BlockStored:
    block_id: str
    stored: bool = True  # False: a state delta whose base version the peer does not hold


ToExecutor = (
    (LaunchTask | RemoveBlocks | StartReceiver | StopReceiver | UpdateRateLimit | BlockRecorded)
    | (ExecutorLost | ExecutorDraining | MigrateBlocks | Shutdown)
    | RegistrationRefused
    | Heartbeat
)
ToDriver = (
    RegisterExecutor | Heartbeat | TaskFinished | BlockAdded | ReceiverStatus | BlocksMigrated
) | (BadRecords | BlockAbandoned)
ReceiverMessage = BlockAdded | BlockAbandoned | ReceiverStatus | BadRecords
"""What an executor's receivers tell the driver's ReceiverTracker."""
