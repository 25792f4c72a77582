"""The streaming layer (Spark's org.apache.spark.streaming): the user's DStream API and its
sources, the batch scheduling around it and checkpoints. Runs in the driver; the functions it
builds run on executors.
"""
