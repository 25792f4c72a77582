"""kubestream: Spark-Streaming-style micro-batch stream processing in Python.

    from kubestream import StreamingContext

This module is the user's facade. The packages beneath it are layers; each imports
only the ones below it (docs/architecture.md has the whole map and one batch's path):

- ``cli``, ``testing``: the ``kubestream`` command; test helpers.
- ``driver``: the driver process: application loading, the executors' endpoint,
  the HTTP API and UI, status, metrics, decommissioning.
- ``streaming``: StreamingContext, DStreams, windows, state, checkpoints; its
  ``sources`` and its ``scheduler`` (JobGenerator, JobScheduler, ReceiverTracker).
- ``executor``: the executor process: tasks, blocks, receivers.
- ``core``: the engine, RDDs, the DAG and task schedulers, driver-executor messages.
- ``storage``, ``transport``: blocks and checkpoint files; CURVE ZeroMQ sockets.
- ``settings``, ``errors``, ``clock``, ``logs``, ``metrics``: basics.
"""

from kubestream.core.rdd import RDD
from kubestream.errors import ConfigError, JobFailedError, KubestreamError
from kubestream.executor.receiver import BlockNotRecordedError, Receiver
from kubestream.streaming.batch import BatchInfo
from kubestream.streaming.context import StreamingContext
from kubestream.streaming.dstream import DStream
from kubestream.streaming.listener import StreamingListener
from kubestream.streaming.sinks.cassandra.config import CassandraConnection
from kubestream.streaming.sources.files import default_path_filter
from kubestream.streaming.sources.kafka.client import KafkaMessage
from kubestream.streaming.sources.kafka.offsets import OffsetRange
from kubestream.streaming.sources.kafka.starting import FromTimestamp
from kubestream.streaming.state import State, StateSpec

__all__ = [
    "RDD",
    "BatchInfo",
    "BlockNotRecordedError",
    "CassandraConnection",
    "ConfigError",
    "DStream",
    "FromTimestamp",
    "JobFailedError",
    "KafkaMessage",
    "KubestreamError",
    "OffsetRange",
    "Receiver",
    "State",
    "StateSpec",
    "StreamingContext",
    "StreamingListener",
    "default_path_filter",
]
