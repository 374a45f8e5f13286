#!/usr/bin/env python3
"""`make soak`: alerts through `alertops local` under compound faults, then the delivery table.

What runs (the emulator, the CloudWatch translator and the Slack stand-in come from demo/demo.py):

- an AWS fault proxy between alertops and the emulator (SNS, SQS, EventBridge, EMR, SES; no
  CloudWatch: the soak declares no AlarmPolicy, and the translator speaks CBOR, whose error
  answers the proxy does not forge): ThrottlingException when a client exceeds AWS's
  published per-API rate (token buckets, `AWS_RATES`), 5xx bursts, added latency, and dropped
  connections before and after the emulator saw the request;
- a Slack stand-in with a scripted outage (503 for every request), a 429 storm (every request
  answered 429 with Retry-After), and scattered 429s. The outage is the time-scaled 2-hour
  outage of the issue: `--time-factor F` divides both the consumers' outage tolerance (2 h) and
  the outage (90 minutes, within it) by F;
- `kill -9` of `alertops local` at random points (never while a digest request is in flight: the
  local mode keeps its state, the digest's sent record included, in memory), restarted at once;
- a publisher sending unique alerts to several routes' topics and a digest's topic.

Then the faults stop, the run waits for delivery, and it prints, per destination: alerts
published, delivered, summarised, duplicated, dead-lettered, lost, and the worst publish-to-Slack
delay. An alert listed by id in a storm summary is delivered; one only counted in a summary's
"N alerts arrived meanwhile" is summarised. Exit status 1 when anything was lost or
dead-lettered, or alertops exited other than by the soak's kills. Times are scaled down (`--scale`) so the run fits in a few
minutes; the figures go into README "Reliability".
"""

import argparse
import collections
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "demo"))
import demo  # noqa: E402  (the emulator, the translator, the Slack stand-in, small helpers)

import boto3  # noqa: E402
from botocore.config import Config  # noqa: E402

REGION = "us-east-1"
NAMESPACE = "soak"
ROUTES = ["payments", "search", "ingest"]
DIGEST = "nightly"
ALERT_ID = re.compile(r"soak-\d{6}")
# The storm summary's headline (src/slack/storm.rs): how many alerts arrived during the outage.
STORM_HEADLINE = re.compile(r"(\d+) alerts arrived (?:meanwhile|while Slack was unreachable)")
# The outage tolerance of the consumers (their default) and the outage the soak plays, before
# time scaling: the outage is within the tolerance.
TOLERANCE_SECONDS = 2 * 3600
OUTAGE_SECONDS = 90 * 60

# Requests per second AWS documents for these APIs (the default quotas of a region such as
# us-east-1); anything unlisted gets DEFAULT_RATE. SQS's message APIs have no published limit.
AWS_RATES = {
    "Subscribe": 100, "Unsubscribe": 100, "CreateTopic": 100, "DeleteTopic": 100,
    "ListSubscriptionsByTopic": 30, "ListSubscriptions": 30, "GetTopicAttributes": 100,
    "SetTopicAttributes": 100, "ListTagsForResource": 10, "TagResource": 10, "Publish": 30000,
    "GetSubscriptionAttributes": 100, "SetSubscriptionAttributes": 100,
    "PutRule": 100, "PutTargets": 100, "ListRules": 50, "ListTargetsByRule": 50,
    "DescribeCluster": 10, "ListClusters": 10, "RunJobFlow": 2,
    "SendEmail": 14,
}
DEFAULT_RATE = 50
UNLIMITED = {"ReceiveMessage", "DeleteMessageBatch", "ChangeMessageVisibilityBatch",
             "DeleteMessage", "ChangeMessageVisibility", "SendMessage", "GetQueueAttributes",
             "GetQueueUrl", "ListQueueTags"}


class QuietServer(ThreadingHTTPServer):
    """A killed client resets its connections: expected here, not worth a traceback."""

    daemon_threads = True

    def handle_error(self, request, client_address):
        pass


class TokenBucket:
    def __init__(self, rate):
        self.rate, self.tokens, self.at = rate, float(rate), time.monotonic()

    def take(self):
        now = time.monotonic()
        self.tokens = min(self.rate, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


class AwsFaultProxy:
    """Forwards AWS requests to the emulator, injecting faults while `active`."""

    def __init__(self, upstream, rng):
        self.active = False
        self.burst_until = 0.0
        self.counts = collections.Counter()
        self.lock = threading.Lock()
        self.buckets = {}
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                self.do_POST()

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                action = proxy.action_of(self.headers, body, self.path)
                fault = proxy.fault_for(action)
                if fault == "drop-before":
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if fault in ("throttle", "5xx"):
                    return proxy.answer_error(self, fault)
                if proxy.active:
                    time.sleep(rng.uniform(0, 0.15))
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                request = urllib.request.Request(upstream + self.path, data=body, headers=headers,
                                                 method=self.command)
                try:
                    with urllib.request.urlopen(request, timeout=60) as response:
                        status, payload, reply = response.status, response.read(), response.headers
                except urllib.error.HTTPError as error:
                    status, payload, reply = error.code, error.read(), error.headers
                except (urllib.error.URLError, ConnectionError, socket.timeout):
                    self.close_connection = True
                    return
                if fault == "drop-after":
                    # The emulator acted; the client never hears of it.
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self.send_response(status)
                for name, value in reply.items():
                    if name.lower() not in ("content-length", "transfer-encoding", "connection", "date", "server"):
                        self.send_header(name, value)
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.rng = rng
        self.server = QuietServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @staticmethod
    def action_of(headers, body, path):
        target = headers.get("x-amz-target", "")
        if target:
            return target.rsplit(".", 1)[-1]
        match = re.search(rb"(?:^|&)Action=([A-Za-z]+)", body)
        if match:
            return match.group(1).decode()
        return "SES:" + path.rstrip("/").rsplit("/", 1)[-1] if "/v2/email" in path else path

    def fault_for(self, action):
        if action.startswith("SES:"):
            action = "SendEmail" if action.endswith("outbound-emails") else action
        with self.lock:
            if not self.active:
                return None
            bucket = self.buckets.setdefault(action, TokenBucket(AWS_RATES.get(action, DEFAULT_RATE)))
            if action not in UNLIMITED and not bucket.take():
                fault = "throttle"
            elif time.monotonic() < self.burst_until:
                fault = "5xx"
            else:
                roll = self.rng.random()
                fault = "drop-before" if roll < 0.01 else "drop-after" if roll < 0.02 else None
            if fault:
                self.counts[fault] += 1
            return fault

    def start_burst(self, seconds):
        with self.lock:
            self.burst_until = time.monotonic() + seconds

    @staticmethod
    def answer_error(handler, fault):
        content_type = handler.headers.get("content-type", "")
        code, status = ("ThrottlingException", 400) if fault == "throttle" else ("ServiceUnavailable", 503)
        if "json" in content_type or handler.path.startswith("/v2/"):
            payload = json.dumps({"__type": code, "message": "injected by the soak"}).encode()
            headers = {"content-type": content_type or "application/json", "x-amzn-errortype": code,
                       "x-amzn-query-error": f"{code};Sender"}
        else:
            payload = (f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code>"
                       f"<Message>injected by the soak</Message></Error><RequestId>soak</RequestId>"
                       f"</ErrorResponse>").encode()
            headers = {"content-type": "text/xml"}
        handler.send_response(status)
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.send_header("content-length", str(len(payload)))
        handler.end_headers()
        handler.wfile.write(payload)


class ScriptedSlack(demo.SlackStandIn):
    """The demo's Slack stand-in, with an outage, a 429 storm and scattered 429s on demand."""

    def __init__(self, rng):
        self.mode = "up"        # "up", "outage" (503) or "storm" (429 with Retry-After)
        self.scattered_429 = 0.0
        self.rng = rng
        self.first_seen = {}    # (channel, alert id) -> [posts, first time]
        self.summaries = collections.defaultdict(list)  # channel -> [(alerts counted, ids listed)]
        self.refused = collections.Counter()
        super().__init__()

    def answer(self, path, body):
        if path.endswith("/chat.postMessage"):
            if self.mode == "outage":
                self.refused["503"] += 1
                return 503, {}, "service unavailable"
            if self.mode == "storm" or self.rng.random() < self.scattered_429:
                self.refused["429"] += 1
                return 429, {"retry-after": "2"}, {"ok": False, "error": "ratelimited"}
            now = time.time()
            channel = body.get("channel", "?")
            text = json.dumps(body, ensure_ascii=False)
            headline = STORM_HEADLINE.search(text)
            with self.lock:
                ids = set(ALERT_ID.findall(text))
                if headline:
                    self.summaries[channel].append((int(headline.group(1)), ids))
                for alert in ids:
                    seen = self.first_seen.setdefault((channel, alert), [0, now])
                    seen[0] += 1
        return super().answer(path, body)


def manifests(directory, topics, digest_topic):
    docs = [{
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "slack-bot", "namespace": NAMESPACE},
        "stringData": {"bot-token": "xoxb-soak-not-a-token"},
    }]
    for route, topic in zip(ROUTES, topics):
        docs.append({
            "apiVersion": "alertops.dev/v1alpha1", "kind": "AlertRoute",
            "metadata": {"name": route, "namespace": NAMESPACE},
            "spec": {
                "sources": [{"topicArn": topic}],
                "slack": {"botTokenSecretRef": {"name": "slack-bot", "key": "bot-token"},
                          "channel": f"C{route.upper()}"},
            },
        })
    docs.append({
        "apiVersion": "alertops.dev/v1alpha1", "kind": "DigestSchedule",
        "metadata": {"name": DIGEST, "namespace": NAMESPACE},
        "spec": {"schedule": "0 8,20 * * *", "timeZone": "UTC", "sources": [{"topicArn": digest_topic}],
                 "email": {"from": "alertops@example.com", "to": ["team@example.com"],
                           "subjectPrefix": "[soak]"}},
    })
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "soak.yaml"), "w") as out:
        out.write("\n---\n".join(json.dumps(d) for d in docs))


class Alertops:
    """`alertops local`, restartable after kill -9."""

    def __init__(self, args, env, manifest_dir, listen_port, workdir, processes):
        self.command = [args.alertops, "local", "--manifests", manifest_dir,
                        "--listen", f"127.0.0.1:{listen_port}",
                        "--slack-api-base", env["ALERTOPS_SLACK_API_BASE"], "--resync-seconds", "30",
                        "--slack-outage-tolerance-seconds", str(args.tolerance_seconds)]
        self.env, self.workdir, self.processes = env, workdir, processes
        self.base = f"http://127.0.0.1:{listen_port}"
        self.starts = 0
        self.process = None
        self.digest_busy = threading.Lock()

    def start(self):
        self.starts += 1
        log = open(os.path.join(self.workdir, f"alertops-{self.starts}.log"), "w")
        self.process = subprocess.Popen(self.command, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        self.processes.append(self.process)

    def kill9(self):
        with self.digest_busy:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()
            self.start()

    def ready(self):
        return self.process.poll() is None and demo.http("GET", self.base + "/readyz")[0] == 200

    def digest(self):
        with self.digest_busy:
            demo.wait_for("alertops local to be ready", self.ready, timeout=120)
            status, answer = demo.http("POST", self.base + f"/local/digests/{NAMESPACE}/{DIGEST}", b"", timeout=600)
            return status, json.loads(answer) if answer else {}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--alertops", required=True)
    parser.add_argument("--moto-server", required=True)
    parser.add_argument("--workdir", default=".soak")
    parser.add_argument("--load-seconds", type=int, default=300)
    parser.add_argument("--seed", type=int, default=int(time.time()))
    parser.add_argument("--time-factor", type=int, default=30,
                        help="divides the outage tolerance (2 h) and the Slack outage (90 min)")
    args = parser.parse_args()
    args.tolerance_seconds = TOLERANCE_SECONDS // args.time_factor
    args.outage_seconds = OUTAGE_SECONDS / args.time_factor
    os.makedirs(args.workdir, exist_ok=True)
    processes = []
    rng = random.Random(args.seed)
    slack = ScriptedSlack(rng)
    try:
        return soak(args, processes, slack, rng)
    finally:
        for process in reversed(processes):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        slack.stop()


def soak(args, processes, slack, rng):
    started = time.monotonic()
    print(f"soak: seed {args.seed}, load {args.load_seconds} s, time factor {args.time_factor}: "
          f"outage tolerance {args.tolerance_seconds} s, Slack outage {args.outage_seconds:.0f} s")
    endpoint, cloudwatch_endpoint = demo.start_emulator(args.moto_server, args.workdir, processes)
    proxy = AwsFaultProxy(endpoint, rng)
    aws = dict(endpoint_url=endpoint, region_name=REGION, aws_access_key_id="test",
               aws_secret_access_key="test", config=Config(retries={"max_attempts": 10}))
    sns, sqs, sesv2 = (boto3.client(s, **aws) for s in ("sns", "sqs", "sesv2"))
    topics = [sns.create_topic(Name=f"soak-{route}")["TopicArn"] for route in ROUTES]
    digest_topic = sns.create_topic(Name="soak-digest")["TopicArn"]
    sesv2.create_email_identity(EmailIdentity="alertops@example.com")
    manifest_dir = os.path.join(args.workdir, "manifests")
    manifests(manifest_dir, topics, digest_topic)

    env = dict(os.environ, AWS_ENDPOINT_URL=f"http://127.0.0.1:{proxy.port}",
               AWS_ENDPOINT_URL_CLOUDWATCH=cloudwatch_endpoint, AWS_REGION=REGION,
               AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test",
               ALERTOPS_SLACK_SIGNING_SECRET=demo.SIGNING_SECRET, ALERTOPS_ACTION_TOKEN_KEY=demo.ACTION_KEY,
               ALERTOPS_SLACK_API_BASE=f"http://127.0.0.1:{slack.port}/api/",
               RUST_LOG=os.environ.get("RUST_LOG", "info"))
    alertops = Alertops(args, env, manifest_dir, demo.free_port(), args.workdir, processes)
    alertops.start()
    demo.wait_for("alertops local to reconcile", alertops.ready, timeout=180)
    demo.wait_for("the queues to subscribe", lambda: all(
        sns.list_subscriptions_by_topic(TopicArn=t)["Subscriptions"] for t in topics + [digest_topic]), timeout=120)
    print(f"soak: ready after {time.monotonic() - started:.0f} s; faults on")

    published = {}          # alert id -> (destination, publish time)
    digest_published = 0
    stop = threading.Event()

    def publisher():
        nonlocal digest_published
        n = 0
        while not stop.is_set():
            n += 1
            alert = f"soak-{n:06d}"
            if n % 5 == 0:
                topic, destination = digest_topic, "digest"
                digest_published += 1
            else:
                index = rng.randrange(len(ROUTES))
                topic, destination = topics[index], f"C{ROUTES[index].upper()}"
            published[alert] = (destination, time.time())
            sns.publish(TopicArn=topic, Subject=alert,
                        Message=f"{alert}: disk usage above 90 % on host-{n % 17}.")
            stop.wait(rng.uniform(0.3, 1.2))

    digest_alerts = []
    digest_failures = []

    def run_digest(when):
        status, answer = alertops.digest()
        if status == 200:
            digest_alerts.append(answer.get("alerts", 0))
        else:
            digest_failures.append(f"{when}: {status} {answer}")

    proxy.active = True
    slack.scattered_429 = 0.05
    thread = threading.Thread(target=publisher, daemon=True)
    thread.start()
    load = args.load_seconds
    # (second of the load phase, what happens); kills land at random points in between.
    outage_start = 0.1 * load
    script = [(outage_start, "slack-outage"), (outage_start + args.outage_seconds, "slack-up"),
              # The 429 storm before the outage: in a run where it followed the outage, it
              # refused the storm summary as the circuit closed (see README "make soak").
              (0.02 * load, "slack-storm"), (0.08 * load, "slack-up")]
    script += [(t * load, "aws-5xx-burst") for t in (0.1, 0.35, 0.55, 0.8)]
    script += [(t * load, "digest") for t in (0.3, 0.75)]
    kills = sorted(rng.uniform(0.05, 0.95) * load for _ in range(max(2, load // 75)))
    script += [(t, "kill -9") for t in kills]
    load_start = time.monotonic()
    for at, event in sorted(script):
        time.sleep(max(0.0, load_start + at - time.monotonic()))
        print(f"soak: t+{at:5.0f} s {event}")
        if event == "slack-outage":
            slack.mode = "outage"
        elif event == "slack-storm":
            slack.mode = "storm"
        elif event == "slack-up":
            slack.mode = "up"
        elif event == "aws-5xx-burst":
            proxy.start_burst(3)
        elif event == "digest":
            threading.Thread(target=run_digest, args=(f"t+{at:.0f}",), daemon=True).start()
        elif event == "kill -9":
            alertops.kill9()
    time.sleep(max(0.0, load_start + load - time.monotonic()))
    stop.set()
    thread.join()
    proxy.active = False
    slack.mode = "up"
    slack.scattered_429 = 0.0
    print(f"soak: load over, {len(published)} alerts published; faults off, waiting for delivery")

    to_slack = {a: d for a, d in published.items() if d[0] != "digest"}

    def unaccounted():
        """Alerts neither seen by id nor covered by a summary's count, over all channels."""
        with slack.lock:
            missing = 0
            for route in ROUTES:
                channel = f"C{route.upper()}"
                unseen = sum(1 for a, (d, _) in to_slack.items()
                             if d == channel and (channel, a) not in slack.first_seen)
                counted_only = sum(n - len(ids) for n, ids in slack.summaries[channel])
                missing += max(0, unseen - counted_only)
            return missing

    def delivered_all():
        return unaccounted() == 0

    try:
        demo.wait_for("every Slack alert", delivered_all, timeout=300, interval=1)
    except SystemExit:
        print("soak: not every alert reached Slack in 300 s")
    # What the two digests left, and what they missed, goes out now.
    with alertops.digest_busy:
        pass
    run_digest("final")
    crashes = sum(1 for p in processes[2:] if p.returncode not in (None, -signal.SIGKILL))

    # Dead-lettered: what sits in the route queues' dead-letter queues.
    dead = collections.Counter()
    for url in sqs.list_queues().get("QueueUrls", []):
        if not url.endswith("-dlq"):
            continue
        while True:
            messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                           VisibilityTimeout=300).get("Messages", [])
            if not messages:
                break
            for message in messages:
                for alert in set(ALERT_ID.findall(message["Body"])):
                    dead[alert] += 1

    rows = []
    worst = 0.0
    for route in ROUTES:
        channel = f"C{route.upper()}"
        ids = [a for a, (d, _) in to_slack.items() if d == channel]
        seen = {a: slack.first_seen.get((channel, a)) for a in ids}
        delivered = sum(1 for s in seen.values() if s)
        duplicated = sum(s[0] - 1 for s in seen.values() if s)
        dead_lettered = sum(1 for a in ids if not seen[a] and dead[a])
        # Counted in a summary's headline but not listed by id: which alerts those were cannot
        # be told, so they are neither delivered nor lost, at most as many as are missing.
        counted_only = sum(n - len(listed) for n, listed in slack.summaries[channel])
        summarised = min(counted_only, len(ids) - delivered - dead_lettered)
        lost = len(ids) - delivered - summarised - dead_lettered
        delays = [s[1] - published[a][1] for a, s in seen.items() if s]
        worst = max([worst] + delays)
        rows.append((f"slack {channel}", len(ids), delivered, summarised, duplicated, dead_lettered, lost,
                     f"{max(delays):.1f}" if delays else "-"))
    reported = sum(digest_alerts)
    rows.append(("email digest", digest_published, min(reported, digest_published), "-",
                 max(0, reported - digest_published), 0, max(0, digest_published - reported), "-"))

    header = ("destination", "published", "delivered", "summarised", "duplicated", "dead-lettered", "lost",
              "worst delay s")
    print()
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join(" --- " for _ in header) + "|")
    for row in rows:
        print("| " + " | ".join(str(c) for c in row) + " |")
    total_lost = sum(r[6] for r in rows)
    total_dead = sum(r[5] for r in rows)
    print()
    print(f"faults: AWS {dict(proxy.counts)}; Slack refused {dict(slack.refused)}; "
          f"kill -9 x{len(kills)} (alertops started {alertops.starts} times, {crashes} exits other than our kills); "
          f"digest runs {digest_alerts} alerts, failed runs {digest_failures}")
    print("storm summaries: " + "; ".join(
        f"C{r.upper()} {[(n, len(ids)) for n, ids in slack.summaries[f'C{r.upper()}']]} (counted, listed by id)"
        for r in ROUTES))
    print(f"worst publish-to-Slack delay {worst:.1f} s; run took {time.monotonic() - started:.0f} s; seed {args.seed}")
    return 1 if total_lost > 0 or total_dead > 0 or crashes > 0 else 0


if __name__ == "__main__":
    sys.exit(main())
