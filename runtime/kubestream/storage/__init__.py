"""Storage used by both processes: executor block stores and the checkpoint files (atomic,
checksummed) that the driver's checkpoints and the receivers' write-ahead log are made of.
"""
