#!/usr/bin/env python3
"""`make demo`: alertops end to end on a laptop, with no cloud and no cluster.

Starts the AWS emulator (moto_server, with the tests' CloudWatch CBOR translator in front of it)
and a local Slack stand-in, runs `alertops local` on examples/, then plays the users' scenarios:
an EMR cluster fails, an ELB alarm fires, a log alarm fires with its log lines, someone presses
Retry, the twice-daily digest goes out.
Everything it starts is stopped on exit.
"""

import argparse
import hashlib
import hmac
import html
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3

REGION = "ap-southeast-2"  # the region of the per-environment topics in examples/
ACCOUNT = "123456789012"   # the emulator's account
NAMESPACE = "alerting"
SIGNING_SECRET = "demo-signing-secret-not-for-production"
CLOUDWATCH_CBOR = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir,
                               "tests", "integration", "harness", "cloudwatch_cbor.py")
ACTION_KEY = "demo-action-key-0123456789abcdef0123456789abcdef"
FEED_LOG_GROUP = "/aws/lambda/add-to-feed"  # examples/serverless-api's log alarm
RETRY_USER = "U0ALICE01"    # on the recommendations team's allow-list in examples/
BOLD, DIM, GREEN, YELLOW, RESET = "\033[1m", "\033[2m", "\033[32m", "\033[33m", "\033[0m"
if not sys.stdout.isatty():
    BOLD = DIM = GREEN = YELLOW = RESET = ""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what, predicate, timeout=60.0, interval=0.2):
    """Polls `predicate` until it returns something truthy; fails the demo after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise SystemExit(f"demo: timed out waiting for {what}")


def http(method, url, body=None, headers=None, timeout=10):
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except (urllib.error.URLError, ConnectionError, socket.timeout):
        return None, ""


def section(title):
    print(f"\n{BOLD}== {title} =={RESET}")


class FailedClusterProxy:
    """EMR in front of the emulator, reporting the clusters in `failed` as TERMINATED_WITH_ERRORS.

    The emulator cannot put a cluster in that state (terminating gives TERMINATED), and alertops
    retries only a cluster whose live state says it failed, so the demo's failed cluster is
    described the way AWS would describe it. Every other call passes through unchanged."""

    def __init__(self, upstream):
        self.failed = set()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                request = urllib.request.Request(upstream + self.path, data=body, headers=headers, method="POST")
                try:
                    with urllib.request.urlopen(request, timeout=30) as response:
                        status, payload, reply_headers = response.status, response.read(), response.headers
                except urllib.error.HTTPError as error:
                    status, payload, reply_headers = error.code, error.read(), error.headers
                if self.headers.get("x-amz-target", "").endswith(".DescribeCluster") and status == 200:
                    described = json.loads(payload)
                    cluster = described.get("Cluster", {})
                    if cluster.get("Id") in proxy.failed:
                        cluster.setdefault("Status", {})["State"] = "TERMINATED_WITH_ERRORS"
                        cluster["Status"]["StateChangeReason"] = {
                            "Code": "STEP_FAILURE", "Message": "Step train failed: Container killed on request. Exit code is 137"}
                        payload = json.dumps(described).encode()
                self.send_response(status)
                self.send_header("content-type", reply_headers.get("content-type", "application/x-amz-json-1.1"))
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


class SlackStandIn:
    """Answers like Slack's Web API, incoming webhooks and response URLs; records everything."""

    def __init__(self):
        self.requests = []
        self.lock = threading.Lock()
        self.ts = 0
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                length = int(self.headers.get("content-length", 0))
                raw = self.rfile.read(length).decode()
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = dict(urllib.parse.parse_qsl(raw))
                answer = stand_in.answer(self.path, body)
                # A subclass may answer (status, headers, answer): an outage, a 429 with Retry-After.
                status, headers = 200, {}
                if isinstance(answer, tuple):
                    status, headers, answer = answer
                data = json.dumps(answer).encode() if isinstance(answer, dict) else answer.encode()
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("content-type", "application/json" if isinstance(answer, dict) else "text/plain")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def answer(self, path, body):
        with self.lock:
            self.requests.append((path, body))
            if path.endswith("/chat.postMessage"):
                self.ts += 1
                return {"ok": True, "channel": body.get("channel", "C0"), "ts": f"1700000000.{self.ts:06d}"}
            if path.startswith("/api/"):
                return {"ok": True, "users": []}
            return "ok"

    def received(self, prefix=""):
        with self.lock:
            return [(p, b) for p, b in self.requests if p.startswith(prefix)]

    def stop(self):
        self.server.shutdown()


def plain(text):
    """Slack's mrkdwn, as a terminal shows it: dates and links by their text."""
    text = re.sub(r"<!date\^\d+\^[^|>]*\|([^>]*)>", r"\1", text)
    text = re.sub(r"<(https?://[^|>]+)\|([^>]+)>", r"\2", text)
    text = re.sub(r"<@(\w+)>", r"@\1", text)
    return html.unescape(text)


def render_message(path, body):
    """A Slack message as a person would read it, in the terminal."""
    if path.startswith("/hooks/"):
        where = "incoming webhook"
    elif path.startswith("/response/"):
        where = "update through the interaction's response_url"
    else:
        where = f"#{body.get('channel')} via {path.rsplit('/', 1)[-1]}"
    lines = [f"{BOLD}[{where}]{RESET}"]
    for block in body.get("blocks") or []:
        kind = block.get("type")
        if kind == "header":
            lines.append(f"  {BOLD}{plain(block['text']['text'])}{RESET}")
        elif kind == "section":
            if block.get("text"):
                lines.extend("  " + plain(line) for line in block["text"]["text"].splitlines())
            fields = [plain(f["text"]).replace("*", "").replace("\n", ": ") for f in block.get("fields") or []]
            if fields:
                lines.append("  " + " | ".join(fields))
        elif kind == "context":
            lines.append("  " + DIM + plain(" · ".join(e.get("text", "") for e in block.get("elements", []))) + RESET)
        elif kind == "actions":
            buttons = [f"[ {e['text']['text']} ]" for e in block.get("elements", []) if e.get("type") == "button"]
            lines.append("  " + GREEN + "  ".join(buttons) + RESET)
    if len(lines) == 1:
        lines.append("  " + plain(body.get("text", "")))
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--alertops", required=True)
    parser.add_argument("--moto-server", required=True)
    parser.add_argument("--examples", default="examples")
    parser.add_argument("--workdir", default=".demo")
    args = parser.parse_args()
    os.makedirs(args.workdir, exist_ok=True)

    processes = []

    def stop_all():
        for process in reversed(processes):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in reversed(processes):
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    slack = SlackStandIn()
    try:
        run(args, processes, slack)
    finally:
        stop_all()
        slack.stop()
    print(f"\n{GREEN}Demo finished; nothing is left running.{RESET} Logs are in {args.workdir}/.")


def start_emulator(moto_server, workdir, processes):
    """Starts moto_server and the CloudWatch CBOR translator in front of it; returns both endpoints."""
    moto_port = free_port()
    moto_log = open(os.path.join(workdir, "moto.log"), "w")
    processes.append(subprocess.Popen([moto_server, "-H", "127.0.0.1", "-p", str(moto_port)],
                                      stdout=moto_log, stderr=subprocess.STDOUT))
    endpoint = f"http://127.0.0.1:{moto_port}"
    wait_for("the AWS emulator", lambda: http("GET", endpoint + "/moto-api/")[0] == 200)
    # moto speaks CloudWatch's Query protocol, the SDK only RPC-v2 CBOR: the tests' translator
    # serves CloudWatch on its own port, which the SDK reads from AWS_ENDPOINT_URL_CLOUDWATCH.
    cloudwatch_port = free_port()
    cloudwatch_log = open(os.path.join(workdir, "cloudwatch-cbor.log"), "w")
    python = os.path.join(os.path.dirname(moto_server), "python")
    processes.append(subprocess.Popen(
        [python if os.path.isfile(python) else sys.executable, CLOUDWATCH_CBOR,
         "--port", str(cloudwatch_port), "--upstream", endpoint],
        stdout=cloudwatch_log, stderr=subprocess.STDOUT))
    cloudwatch_endpoint = f"http://127.0.0.1:{cloudwatch_port}"
    wait_for("CloudWatch over CBOR", lambda: http("GET", cloudwatch_endpoint + "/ping")[0] == 200)
    return endpoint, cloudwatch_endpoint


def sent_emails(endpoint):
    """The emails the emulator's SES accepted."""
    data = json.loads(http("GET", endpoint + "/moto-api/data.json")[1] or "{}")
    sent = [m for account in data.get("ses", {}).get("Message", {}).values() for m in (account if isinstance(account, list) else [account])] \
        if isinstance(data.get("ses", {}).get("Message"), dict) else data.get("ses", {}).get("Message", [])
    return sent


def run(args, processes, slack):
    section("Starting the AWS emulator and a Slack stand-in")
    endpoint, cloudwatch_endpoint = start_emulator(args.moto_server, args.workdir, processes)
    emr_proxy = FailedClusterProxy(endpoint)
    print(f"AWS emulator at {endpoint}; Slack stand-in at http://127.0.0.1:{slack.port}")
    aws = dict(endpoint_url=endpoint, region_name=REGION, aws_access_key_id="test", aws_secret_access_key="test")
    sns, sqs, emr, sesv2 = (boto3.client(s, **aws) for s in ("sns", "sqs", "emr", "sesv2"))

    # The per-environment "alarms" and "notifications" topics teams already have.
    for env in ("production", "staging", "ci", "scratch"):
        for kind in ("alarms", "notifications"):
            sns.create_topic(Name=f"{env}-{kind}")
    sesv2.create_email_identity(EmailIdentity="alertops@example.com")
    # The log group of the feed API's function, which its log alarm's metric filter reads.
    logs = boto3.client("logs", **aws)
    logs.create_log_group(logGroupName=FEED_LOG_GROUP)
    logs.create_log_stream(logGroupName=FEED_LOG_GROUP, logStreamName="2026/11/28/[$LATEST]demo")

    section("Running `alertops local` on examples/")
    listen_port = free_port()
    base = f"http://127.0.0.1:{listen_port}"
    env = dict(os.environ, AWS_ENDPOINT_URL=endpoint, AWS_ENDPOINT_URL_CLOUDWATCH=cloudwatch_endpoint,
               AWS_ENDPOINT_URL_EMR=f"http://127.0.0.1:{emr_proxy.port}",
               AWS_REGION=REGION, AWS_ACCESS_KEY_ID="test",
               AWS_SECRET_ACCESS_KEY="test", ALERTOPS_SLACK_SIGNING_SECRET=SIGNING_SECRET,
               ALERTOPS_ACTION_TOKEN_KEY=ACTION_KEY, RUST_LOG=os.environ.get("RUST_LOG", "info"))
    alertops_log = open(os.path.join(args.workdir, "alertops.log"), "w")
    processes.append(subprocess.Popen(
        [args.alertops, "local", "--manifests", args.examples, "--listen", f"127.0.0.1:{listen_port}",
         "--slack-api-base", f"http://127.0.0.1:{slack.port}/api/",
         "--slack-webhook-base", f"http://127.0.0.1:{slack.port}/hooks/"],
        env=env, stdout=alertops_log, stderr=subprocess.STDOUT))
    wait_for("alertops local to reconcile the examples",
             lambda: processes[-1].poll() is None and http("GET", base + "/readyz")[0] == 200
             or (processes[-1].poll() is not None and sys.exit(f"alertops local exited; see {args.workdir}/alertops.log")),
             timeout=120)

    topics = {t["TopicArn"].rsplit(":", 1)[-1]: t["TopicArn"] for t in sns.list_topics()["Topics"]}
    emr_topic = next(arn for name, arn in topics.items() if "_alerting_emr-failures_" in name)
    elb_topic = next(arn for name, arn in topics.items() if "_alerting_elk-broker_" in name)
    wait_for("the route queues to subscribe to the EMR topic",
             lambda: len(sns.list_subscriptions_by_topic(TopicArn=emr_topic)["Subscriptions"]) >= 4)
    queues = sqs.list_queues().get("QueueUrls", [])
    print(f"Created {len(topics) - 8} SNS topics, {len(queues)} SQS queues (with dead-letter queues), "
          "EventBridge rules and CloudWatch alarms — all tagged, all owned.")

    section("An EMR cluster of the recommendations team fails")
    cluster = emr.run_job_flow(
        Name="nightly-recommendations", ReleaseLabel="emr-6.15.0",
        Instances={"MasterInstanceType": "m5.xlarge", "SlaveInstanceType": "m5.xlarge", "InstanceCount": 3,
                   "KeepJobFlowAliveWhenNoSteps": False},
        Applications=[{"Name": "Spark"}], JobFlowRole="EMR_EC2_DefaultRole", ServiceRole="EMR_DefaultRole",
        Steps=[{"Name": "train", "ActionOnFailure": "TERMINATE_CLUSTER",
                "HadoopJarStep": {"Jar": "command-runner.jar", "Args": ["spark-submit", "s3://models/train.py"]}}],
        BootstrapActions=[{"Name": "deps", "ScriptBootstrapAction": {"Path": "s3://models/bootstrap.sh"}}],
        Tags=[{"Key": "Team", "Value": "recommendations"}, {"Key": "Feature", "Value": "nightly-training"}],
    )["JobFlowId"]
    # As AWS would describe it once its step failed (see FailedClusterProxy).
    emr_proxy.failed.add(cluster)
    event = {
        "version": "0", "id": "6f3c2a1e-demo", "detail-type": "EMR Cluster State Change", "source": "aws.emr",
        "account": ACCOUNT, "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "region": REGION,
        "resources": [], "detail": {
            "severity": "CRITICAL", "stateChangeReason": json.dumps({
                "code": "STEP_FAILURE", "message": "Step train failed: Container killed on request. Exit code is 137"}),
            "name": "nightly-recommendations", "clusterId": cluster, "state": "TERMINATED_WITH_ERRORS",
            "message": f"Amazon EMR Cluster {cluster} (nightly-recommendations) has terminated with errors"}}
    # What the EventBridge rule would deliver (the emulator does not run EventBridge targets).
    sns.publish(TopicArn=emr_topic, Message=json.dumps(event))
    print(f"Published the EventBridge event for {cluster} to the policy's topic.")

    section("An ELB alarm fires")
    alarm_name = f"alertops/local/{NAMESPACE}/elk-broker/broker-backend-connection-errors"
    notification = {
        "AlarmName": alarm_name, "AlarmDescription": "Connections from the Broker load balancer are failing",
        "AWSAccountId": ACCOUNT, "NewStateValue": "ALARM",
        "NewStateReason": "Threshold Crossed: 3 out of the last 5 datapoints [412.0, 388.0, 501.0] were greater than the threshold (100.0).",
        "StateChangeTime": time.strftime("%Y-%m-%dT%H:%M:%S.000+0000", time.gmtime()), "Region": "Asia Pacific (Sydney)",
        "AlarmArn": f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{alarm_name}", "OldStateValue": "OK",
        "Trigger": {"MetricName": "BackendConnectionErrors", "Namespace": "AWS/ELB", "StatisticType": "Statistic",
                    "Statistic": "SUM", "Unit": None, "Dimensions": [{"value": "elk-broker-production", "name": "LoadBalancerName"}],
                    "Period": 60, "EvaluationPeriods": 5, "DatapointsToAlarm": 3,
                    "ComparisonOperator": "GreaterThanThreshold", "Threshold": 100.0,
                    "TreatMissingData": "notBreaching", "EvaluateLowSampleCountPercentile": ""}}
    sns.publish(TopicArn=elb_topic, Subject=f'ALARM: "{alarm_name}" in Asia Pacific (Sydney)'[:99], Message=json.dumps(notification))
    print("Published the CloudWatch alarm notification to the ELB policy's topic.")

    section("A log alarm fires: checkout errors in the feed API's logs")
    feed_topic = next(arn for name, arn in topics.items() if "_alerting_feed-api_" in name)
    now_ms = int(time.time() * 1000)
    lines = [
        {"level": "ERROR", "service": "checkout", "correlation_id": "c-7f3a", "msg": "payment declined: card <expired> & retried"},
        {"level": "ERROR", "service": "checkout", "correlation_id": "c-7f3b", "msg": "timeout calling inventory after 3000 ms"},
        {"level": "ERROR", "service": "checkout", "correlation_id": "c-7f3c", "msg": "DynamoDB ProvisionedThroughputExceededException"},
    ]
    logs = boto3.client("logs", **aws)
    logs.put_log_events(logGroupName=FEED_LOG_GROUP, logStreamName="2026/11/28/[$LATEST]demo", logEvents=[
        {"timestamp": now_ms - 60_000 + i * 10_000, "message": json.dumps(line)} for i, line in enumerate(lines)])
    log_alarm = f"alertops/local/{NAMESPACE}/feed-api/checkout-errors"
    sns.publish(TopicArn=feed_topic, Subject=f'ALARM: "{log_alarm}" in Asia Pacific (Sydney)'[:99], Message=json.dumps({
        "AlarmName": log_alarm, "AlarmDescription": "add-to-feed logs errors for checkout requests.",
        "AWSAccountId": ACCOUNT, "NewStateValue": "ALARM",
        "NewStateReason": "Threshold Crossed: 3 out of the last 5 datapoints [14.0, 12.0, 17.0] were greater than the threshold (10.0).",
        "StateChangeTime": time.strftime("%Y-%m-%dT%H:%M:%S.000+0000", time.gmtime()), "Region": "Asia Pacific (Sydney)",
        "AlarmArn": f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{log_alarm}", "OldStateValue": "OK",
        "Trigger": {"MetricName": "CheckoutErrors", "Namespace": "Feed/Logs", "StatisticType": "Statistic",
                    "Statistic": "SUM", "Unit": None, "Dimensions": [], "Period": 60, "EvaluationPeriods": 5,
                    "DatapointsToAlarm": 3, "ComparisonOperator": "GreaterThanThreshold", "Threshold": 10.0,
                    "TreatMissingData": "notBreaching", "EvaluateLowSampleCountPercentile": ""}}))
    print("Wrote 3 checkout ERROR lines to the function's log group and published the log alarm's notification.")
    print(DIM + "(The emulator matches JSON selectors as 'every line', so only matching lines were written.)" + RESET)

    section("What each team's Slack channel received")
    posts = wait_for("the three alerts in Slack", lambda: (
        lambda got: got if any("C0RECOMMEND" == b.get("channel") for _, b in got)
        and any(p.startswith("/hooks/") for p, _ in got)
        and any("c-7f3c" in json.dumps(b) for _, b in got) else None)(
        slack.received("/api/chat.postMessage") + slack.received("/hooks/")), timeout=60)
    for path, body in posts:
        print(render_message(path, body) + "\n")

    section("Alice presses Retry")
    path, message = next((p, b) for p, b in posts if b.get("channel") == "C0RECOMMEND")
    button = next(e for block in message["blocks"] if block.get("type") == "actions"
                  for e in block["elements"] if e.get("action_id", "").startswith("alertops_retry:"))
    payload = {
        "type": "block_actions", "user": {"id": RETRY_USER, "username": "alice", "name": "alice"},
        "team": {"id": "T0DEMO"}, "channel": {"id": "C0RECOMMEND"},
        "container": {"type": "message", "channel_id": "C0RECOMMEND", "message_ts": "1700000000.000001"},
        "message": {"text": message["text"], "blocks": message["blocks"], "ts": "1700000000.000001"},
        "response_url": f"http://127.0.0.1:{slack.port}/response/retry",
        "actions": [{"type": "button", "action_id": button["action_id"], "value": button["value"],
                     "block_id": "actions", "action_ts": str(time.time())}],
    }
    body = urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()
    timestamp = str(int(time.time()))
    signature = "v0=" + hmac.new(SIGNING_SECRET.encode(), f"v0:{timestamp}:".encode() + body, hashlib.sha256).hexdigest()
    started = time.monotonic()
    status, _ = http("POST", base + "/slack/interactions", body, {
        "content-type": "application/x-www-form-urlencoded", "x-slack-request-timestamp": timestamp,
        "x-slack-signature": signature})
    print(f"Slack's request (signed) was answered {status} in {time.monotonic() - started:.2f} s.")

    def new_cluster():
        for c in emr.list_clusters()["Clusters"]:
            if c["Id"] != cluster:
                tags = {t["Key"]: t["Value"] for t in emr.describe_cluster(ClusterId=c["Id"])["Cluster"].get("Tags", [])}
                if tags.get("alertops.dev/original-cluster-id") == cluster:
                    return c["Id"], tags
        return None

    new_id, tags = wait_for("the retried cluster in the emulator", new_cluster, timeout=60)
    print(f"{GREEN}New cluster {new_id}{RESET} submitted with the original definition, tagged "
          f"attempt {tags.get('alertops.dev/retry-attempt')} of cluster {tags.get('alertops.dev/original-cluster-id')}.")
    wait_for("the retry report in Slack", lambda: any(new_id in json.dumps(b) for _, b in slack.received()), timeout=30)
    for path, body in slack.received("/response/") + [r for r in slack.received("/api/chat.postMessage") if new_id in json.dumps(r[1])]:
        print(render_message(path, body) + "\n")

    section("The twice-daily digest (run now instead of at 8pm Pacific)")
    status, answer = http("POST", base + f"/local/digests/{NAMESPACE}/emr-twice-daily", b"", timeout=60)
    result = json.loads(answer) if answer else {}
    if status != 200:
        raise SystemExit(f"demo: the digest failed: {answer}")
    print(f"Digest: {result.get('alerts')} alert(s), sent={result.get('sent')}, subject: {result.get('subject')}")
    sent = sent_emails(endpoint)
    mail = next((m for m in sent if isinstance(m, dict) and m.get("subject") == result.get("subject")), None)
    if mail:
        text = re.sub(r"<(br|/p|/tr|/h\d)[^>]*>", "\n", mail.get("body", ""))
        text = html.unescape(re.sub(r"<[^>]+>", " ", text))
        text = "\n".join(re.sub(r"[ \t]+", " ", line).strip() for line in text.splitlines() if line.strip())
        print(f"{BOLD}To:{RESET} {', '.join(mail.get('destinations', {}).get('ToAddresses', []))}")
        print(f"{BOLD}Subject:{RESET} {mail.get('subject')}\n")
        print("\n".join("  " + line for line in text.splitlines()[:40]))

    section("What the metrics say (GET /metrics of alertops local)")
    metrics = http("GET", base + "/metrics")[1]
    delivered = sorted(line for line in metrics.splitlines() if line.startswith("alertops_consumer_alerts_delivered_total"))
    calls = []
    for line in metrics.splitlines():
        match = re.match(r'alertops_aws_calls_total\{service="(\w+)",operation="(\w+)",outcome="success"\} (\d+)', line)
        if match:
            calls.append((int(match.group(3)), f"{match.group(1)}:{match.group(2)}"))
    print("Alerts delivered per route:")
    for line in delivered:
        print("  " + line)
    print("AWS calls per operation (busiest first):")
    for count, operation in sorted(calls, reverse=True)[:12]:
        print(f"  {operation:<40} {count}")
    routes = {re.search(r'route="([^"]+)"', line).group(1) for line in delivered}
    missing = {f"{NAMESPACE}/emr-recommendations-team", f"{NAMESPACE}/elk-broker-alarms"} - routes
    if missing or not calls:
        raise SystemExit(f"demo: expected delivery counters for {missing} and AWS call counters")


if __name__ == "__main__":
    main()
