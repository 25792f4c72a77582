"""kubestream: Spark-Streaming-style micro-batch stream processing in Python.

from kubestream import StreamingContext
"""

from kubestream.core.rdd import RDD
from kubestream.errors import ConfigError, JobFailedError, KubestreamError
from kubestream.executor.receiver import Receiver
from kubestream.streaming.batch import BatchInfo
from kubestream.streaming.context import StreamingContext
from kubestream.streaming.dstream import DStream
from kubestream.streaming.listener import StreamingListener
from kubestream.streaming.sources.kafka.client import KafkaMessage
from kubestream.streaming.sources.kafka.offsets import OffsetRange
from kubestream.streaming.sources.kafka.starting import FromTimestamp
from kubestream.streaming.state import State, StateSpec

__all__ = [
    "RDD",
    "BatchInfo",
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
]
