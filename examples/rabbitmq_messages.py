"""Every message of a RabbitMQ queue, once, saved per batch; resumable from a checkpoint.

    kubestream run examples/rabbitmq_messages.py --checkpoint /tmp/ckpt --write-ahead-log -- \\
        --port 5672 --queue events --out /tmp/out [--receivers 2]

Messages carry an AMQP message_id; a redelivery (the broker sends again what a
receiver stored but had not acknowledged when its executor, the driver or the
connection died) is dropped by id. Each batch's bodies go to OUT/messages-<ms>/.
The password is read on the executors from RABBITMQ_PASSWORD (set from the
StreamingJob's secretRefs) or from the file RABBITMQ_PASSWORD_FILE names (a
mounted Secret); TLS is on when RABBITMQ_CA_FILE names a CA bundle.
"""

from __future__ import annotations

import argparse
import os

from kubestream import StreamingContext


def build(ssc: StreamingContext, args: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="rabbitmq_messages")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--queue", required=True)
    parser.add_argument("--out", required=True, help="directory for per-batch outputs")
    parser.add_argument("--receivers", type=int, default=1)
    parser.add_argument("--block-size", type=int, default=200)
    parser.add_argument(
        "--id-header", default="message_id", help='"none": keep redeliveries (at-least-once)'
    )
    options = parser.parse_args(args)

    messages = ssc.rabbitmq_stream(
        options.host,
        options.port,
        options.queue,
        username=os.environ.get("RABBITMQ_USERNAME", "guest"),
        password_file=os.environ.get("RABBITMQ_PASSWORD_FILE"),
        # On Kubernetes: spec.secretRefs [{env: RABBITMQ_PASSWORD, secretName: ..., key: ...}].
        password_env="RABBITMQ_PASSWORD" if "RABBITMQ_PASSWORD" in os.environ else None,
        ca_file=os.environ.get("RABBITMQ_CA_FILE"),
        receivers=options.receivers,
        block_size=options.block_size,
        id_header=None if options.id_header == "none" else options.id_header,
    )
    messages.save_as_text_files(os.path.join(options.out, "messages"))
