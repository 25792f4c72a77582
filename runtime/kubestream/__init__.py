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
from kubestream.state import State, StateSpec

__all__ = [
    "RDD",
    "BatchInfo",
    "ConfigError",
    "DStream",
    "JobFailedError",
    "KubestreamError",
    "Receiver",
    "State",
    "StateSpec",
    "StreamingContext",
    "StreamingListener",
]
