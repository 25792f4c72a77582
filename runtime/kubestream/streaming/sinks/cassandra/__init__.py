"""DStream.save_to_cassandra: idempotent writes of each batch to a Cassandra table.

config (connection and write settings, pure), rows (records to column values, bad
records, pure), writer (the only modules importing cassandra-driver: session, table
plan, executing a partition's writes) and sink (the output operation the driver runs).
"""
