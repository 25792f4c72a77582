"""Word count per batch, from a directory of text files or a TCP socket.

kubestream run examples/wordcount.py -- --dir /tmp/words [--out /tmp/counts]
kubestream run examples/wordcount.py -- --socket localhost:9999
"""

from __future__ import annotations

import argparse
import operator

from kubestream import StreamingContext


def build(ssc: StreamingContext, args: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="wordcount")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--dir", help="directory to watch for new text files")
    source.add_argument("--socket", help="HOST:PORT of a server sending lines")
    parser.add_argument("--out", help="prefix of per-batch output directories")
    options = parser.parse_args(args)

    if options.dir:
        lines = ssc.text_file_stream(options.dir)
    else:
        host, _, port = options.socket.rpartition(":")
        lines = ssc.socket_text_stream(host, int(port))

    counts = lines.flat_map(str.split).map(lambda word: (word, 1)).reduce_by_key(operator.add)
    counts.pprint()
    if options.out:
        counts.save_as_text_files(options.out)
