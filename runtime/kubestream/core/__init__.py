"""The core engine (Spark's SparkContext and RDDs): RDDs and their operations, the DAG and task
schedulers and the messages between driver and executors. The engine runs in the driver; tasks,
functions and partitions it defines run in executors.
"""
