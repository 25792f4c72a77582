# Broker targets: the real servers the integration tests start themselves
# (tests/brokers.py), here for trying things by hand. Each runs from its own
# directory under the cache and is stopped by the PID its script recorded.
BROKERS_DIR ?= $(or $(KUBESTREAM_CACHE),$(HOME)/.cache/kubestream)/brokers

.PHONY: kafka-up kafka-down

## Start a single-node Kafka (KRaft) on 127.0.0.1; last line: KAFKA_BOOTSTRAP_SERVERS=<host:port>.
kafka-up: setup
	@PYTHON=$(PY) hack/brokers/kafka.sh up $(BROKERS_DIR)/kafka

## Stop the broker started by `make kafka-up`.
kafka-down:
	@hack/brokers/kafka.sh down $(BROKERS_DIR)/kafka

.PHONY: rabbitmq-up rabbitmq-down

## Start a RabbitMQ node on 127.0.0.1 (Debian's package); last line: RABBITMQ_ADDRESS=<host:port>.
rabbitmq-up: setup
	@PYTHON=$(PY) hack/brokers/rabbitmq.sh up $(BROKERS_DIR)/rabbitmq

## Stop the node (and its epmd) started by `make rabbitmq-up`.
rabbitmq-down:
	@hack/brokers/rabbitmq.sh down $(BROKERS_DIR)/rabbitmq
