"""Kafka adapters on one client library (confluent-kafka): producer, topics, lag, readers.

``options`` validates the connection settings once; ``partitioning`` is Kafka's murmur2
partitioner as a pure function; ``producer`` sends validated, keyed messages; ``topics``
creates the topics; ``lag`` is the one place consumer lag is computed; ``reader`` and
``records`` read topics without joining a group (``recloop tail``, ``recloop dlq``);
``asyncapi`` generates the AsyncAPI document of the topics.
"""
