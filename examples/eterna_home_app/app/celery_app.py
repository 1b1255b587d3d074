"""Celery on RabbitMQ (amqps:// verified against TLS_CA_FILE), results not stored: task state lives in
the database rows the tasks update."""

from __future__ import annotations

import ssl

from celery import Celery
from celery.signals import setup_logging

from app.config import get_settings
from app.logging_setup import configure_logging

settings = get_settings()
celery_app = Celery("eterna", broker=settings.CELERY_BROKER_URL, include=["app.tasks"])
celery_app.conf.update(
    task_ignore_result=True,
    task_acks_late=True,
    worker_prefetch_multiplier=1,
    task_reject_on_worker_lost=True,
    # Time limits below RabbitMQ's consumer_timeout (one variable sets both): a task that outruns the soft limit
    # gets SoftTimeLimitExceeded and records its failure; the hard limit kills it. Either way the message is
    # acknowledged, never redelivered to run the task a second time.
    task_soft_time_limit=settings.CELERY_TASK_SOFT_TIME_LIMIT,
    task_time_limit=settings.CELERY_TASK_TIME_LIMIT,
    task_acks_on_failure_or_timeout=True,
    broker_connection_retry_on_startup=True,
    broker_heartbeat=30,
    # The rabbitmq role makes durable queues quorum queues (replicated). Declare them so, which also
    # makes the worker use per-consumer prefetch: quorum queues refuse global QoS.
    task_default_queue_type="quorum",
    # Publisher confirms: a task is only "sent" once the broker has it.
    broker_transport_options={"confirm_publish": True},
    timezone="UTC",
    beat_schedule={
        "requeue-stale-bim-conversions": {"task": "app.tasks.requeue_stale_conversions", "schedule": 300.0},
    },
)
if settings.CELERY_BROKER_URL.startswith("amqps://"):
    celery_app.conf.broker_use_ssl = {"ca_certs": settings.TLS_CA_FILE, "cert_reqs": ssl.CERT_REQUIRED}


@setup_logging.connect
def _logging(**_: object) -> None:
    configure_logging(settings.LOG_LEVEL)
