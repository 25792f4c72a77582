"""kubestream: Spark-Streaming-style micro-batch stream processing in Python.

from kubestream import StreamingContext
"""

from kubestream.batch import BatchInfo
from kubestream.context import StreamingContext
from kubestream.dstream import DStream
from kubestream.errors import ConfigError, JobFailedError, KubestreamError
from kubestream.listener import StreamingListener
from kubestream.rdd import RDD
from kubestream.receiver import Receiver
from kubestream.sources.kafka.client import KafkaMessage
from kubestream.sources.kafka.offsets import OffsetRange
from kubestream.sources.kafka.starting import FromTimestamp
from kubestream.state import State, StateSpec

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
