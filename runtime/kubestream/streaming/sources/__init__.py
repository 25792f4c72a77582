"""Input DStreams: direct (files, queue, rate) and receiver-based (socket, any Receiver)."""
