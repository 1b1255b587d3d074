#!/usr/bin/env python3
"""AMQP probe run inside the test containers (python3-pika from Debian).

Usage: amqp_probe.py {connect,publish,consume} --host H [--user U] [--vhost V] [--queue Q] [--count N]
The password comes from the AMQP_PASSWORD environment variable. TLS is verified against --cafile
(the system store by default) and the host name. Prints one JSON line; exit codes: 0 success,
3 authentication or access refused, 4 TLS verification failed, 5 any other error.
"""

from __future__ import annotations

import argparse
import json
import os
import ssl
import sys

import pika
import pika.exceptions


def connect(args: argparse.Namespace) -> pika.BlockingConnection:
    context = ssl.create_default_context(cafile=args.cafile)
    params = pika.ConnectionParameters(
        host=args.host,
        port=args.port,
        virtual_host=args.vhost,
        credentials=pika.PlainCredentials(args.user, os.environ.get("AMQP_PASSWORD", "")),
        ssl_options=pika.SSLOptions(context, server_hostname=args.host) if args.port != 5672 else None,
        connection_attempts=1,
        socket_timeout=20,
        blocked_connection_timeout=60,
    )
    return pika.BlockingConnection(params)


def declare(channel, args: argparse.Namespace) -> None:
    arguments = {"x-queue-type": args.queue_type} if args.queue_type else None
    channel.queue_declare(args.queue, durable=True, arguments=arguments)


def publish(args: argparse.Namespace) -> dict:
    with connect(args) as conn:
        channel = conn.channel()
        channel.confirm_delivery()
        declare(channel, args)
        for i in range(args.count):
            # With confirms on, basic_publish returns only once the broker has taken responsibility for
            # the message and raises NackError/UnroutableError otherwise.
            channel.basic_publish(
                exchange="",
                routing_key=args.queue,
                body=f"{args.prefix}-{i}".encode(),
                properties=pika.BasicProperties(delivery_mode=2),
                mandatory=True,
            )
        return {"published": args.count, "confirmed": True}


def consume(args: argparse.Namespace) -> dict:
    bodies = []
    with connect(args) as conn:
        channel = conn.channel()
        declare(channel, args)
        while len(bodies) < args.count:
            method, _props, body = channel.basic_get(args.queue, auto_ack=False)
            if method is None:
                break
            bodies.append(body.decode())
            channel.basic_ack(method.delivery_tag)
    return {"bodies": bodies}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("action", choices=["connect", "publish", "consume"])
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, default=5671)
    parser.add_argument("--user", default="eterna")
    parser.add_argument("--vhost", default="eterna")
    parser.add_argument("--queue", default="probe")
    parser.add_argument("--queue-type", default="")
    parser.add_argument("--count", type=int, default=1)
    parser.add_argument("--prefix", default="msg")
    parser.add_argument("--cafile", default=None)
    args = parser.parse_args()
    try:
        if args.action == "connect":
            with connect(args) as conn:
                result = {"connected": conn.is_open}
        elif args.action == "publish":
            result = publish(args)
        else:
            result = consume(args)
    except ssl.SSLCertVerificationError as exc:
        print(json.dumps({"error": "tls", "detail": repr(exc)}))
        return 4
    except (
        pika.exceptions.ProbableAuthenticationError,
        pika.exceptions.AuthenticationError,
        pika.exceptions.ProbableAccessDeniedError,
    ) as exc:
        print(json.dumps({"error": "auth", "detail": repr(exc)}))
        return 3
    except pika.exceptions.ConnectionClosedByBroker as exc:
        code = 3 if exc.reply_code in (403, 530) else 5
        print(json.dumps({"error": "closed", "code": exc.reply_code, "detail": exc.reply_text}))
        return code
    except pika.exceptions.AMQPConnectionError as exc:
        detail = repr(exc)
        code = 4 if "CERTIFICATE_VERIFY_FAILED" in detail or "SSLCertVerificationError" in detail else 5
        print(json.dumps({"error": "connection", "detail": detail}))
        return code
    except Exception as exc:  # noqa: BLE001 - the probe reports every failure as JSON
        print(json.dumps({"error": type(exc).__name__, "detail": repr(exc)}))
        return 5
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
