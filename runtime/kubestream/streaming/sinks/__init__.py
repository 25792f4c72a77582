"""Output operations that write batches to external stores (sources that also write,
such as Kafka, keep their sink beside their stream under streaming/sources/)."""
