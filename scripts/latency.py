"""Times release_tool as whole processes against the emulator and prints a
table: median wall time of `prepare`, `deploy` with one service changed and
`deploy` with every service changed, for each number of services, and the
AWS calls each run made (counted by the emulator under the run's own access
key). Each command is timed with the emulator's delay per call, then with
none: the difference is the time the round trips add, apart from the
emulator's own work (moto is far slower per call than AWS).

Run by scripts/latency.sh, which installs and starts the emulator (with its
per-call delay) and builds the binaries; this script only seeds data, runs
the binaries and reports. Needs boto3 (installed with moto in .venv).

Every run of a command gets fresh state where it needs it without a reset
between runs: each `deploy` run deploys a new release that differs from the
environment's in one service (k=1) or in every service (k=N), made untimed
just before, so each run changes what its name says and each release is
deployed once, as in use (moto slows down as a record grows, which
DynamoDB does not). Binaries are run in turn (A B A B ...), so a drift in the machine's
speed affects both alike.
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor

import boto3
from botocore.config import Config

# One region per project timed: the emulator scans every parameter of a
# region to read a label, so each project gets a region of its own and is not
# slowed by the ones timed before it.
REGIONS = ["eu-west-1", "eu-west-2", "eu-west-3", "eu-central-1", "eu-north-1",
           "us-east-1", "us-east-2", "us-west-1", "us-west-2", "ap-south-1"]
SEED_KEY = "LATENCYSEED"
# Services per GetParametersByPath page (the most SSM returns).
PAGE = 10
# GetParameters calls a deploy has in flight (src/aws/ssm.rs).
READS_IN_FLIGHT = 10


def parse_arguments():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    p.add_argument("--endpoint", required=True, help="the emulator's URL")
    p.add_argument("--delay-ms", type=float, required=True,
                   help="the emulator's per-call delay (for the report)")
    p.add_argument("--tool", action="append", required=True, metavar="NAME=PATH",
                   help="a release_tool binary to time (repeat to compare)")
    p.add_argument("--sizes", default="10,95,300",
                   help="numbers of services, comma-separated")
    p.add_argument("--runs", type=int, default=5, help="counted runs per command")
    p.add_argument("--warmup", type=int, default=1, help="runs not counted, first")
    p.add_argument("--releases", default="",
                   help="also time N=--releases-at services with this many releases "
                        "already in the table (comma-separated, e.g. 1000,10000)")
    p.add_argument("--releases-at", type=int, default=95,
                   help="the number of services for --releases and --write-quota")
    p.add_argument("--write-quota", type=float, default=0,
                   help="also time `deploy` k=N of --releases-at services with the "
                        "emulator throttling writes beyond this many per second")
    args = p.parse_args()
    args.tools = []
    for spec in args.tool:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            p.error(f"--tool {spec!r}: expected NAME=PATH")
        if not os.access(path, os.X_OK):
            p.error(f"--tool {spec!r}: {path} is not an executable file")
        args.tools.append((name, path))
    args.sizes = [int(n) for n in args.sizes.split(",") if n]
    args.releases = [int(n) for n in args.releases.split(",") if n]
    if args.runs < 1 or args.warmup < 0 or any(n < 1 for n in args.sizes):
        p.error("--runs and --sizes must be 1 or more, --warmup 0 or more")
    return args


def client(service, endpoint, region):
    return boto3.client(
        service, endpoint_url=endpoint, region_name=region,
        aws_access_key_id=SEED_KEY, aws_secret_access_key="seed",
        config=Config(max_pool_connections=32,
                      retries={"mode": "standard", "max_attempts": 5}))


def counts(endpoint, key):
    with urllib.request.urlopen(f"{endpoint}/__counts/{key}", timeout=10) as r:
        return json.load(r)


def access_key():
    return "LAT" + uuid.uuid4().hex[:16].upper()


class Bench:
    """One project in the emulator, its manifest and the binaries to run."""

    def __init__(self, args, region, services, releases=0):
        self.args = args
        self.region = region
        self.endpoint = args.endpoint
        self.n = services
        self.project = f"lat{services}-{uuid.uuid4().hex[:10]}"
        self.dir = tempfile.mkdtemp(prefix="release-tracking-latency.")
        self.manifest = os.path.join(self.dir, ".wellcome_project")
        with open(self.manifest, "w") as f:
            json.dump({self.project: {
                "name": "Latency", "aws_region_name": region,
                "environments": [{"id": "stage", "name": "Staging"}]}}, f)
        self.ssm = client("ssm", self.endpoint, region)
        self.dynamodb = client("dynamodb", self.endpoint, region)
        self.services = [f"service-{i:03d}" for i in range(services)]
        first = args.tools[0][1]
        self.run(first, ["provision"])
        if releases:
            self.seed_releases(releases)
        self.publish({s: self.image(s, "a") for s in self.services})
        self.run(first, ["deploy", self.prepare(first, "seed"), "stage"])
        # A fresh release for every timed deploy (below): each release is
        # deployed once, as in use, so its record does not grow with the
        # runs (moto slows with a record's size; DynamoDB does not).
        self.fresh = 0

    def image(self, service, tag):
        return f"760097843905.dkr.ecr.eu-west-1.amazonaws.com/uk.ac.wellcome/{service}:{tag}"

    def publish(self, images):
        def put(item):
            service, image = item
            self.ssm.put_parameter(Name=f"/{self.project}/images/latest/{service}",
                                   Value=image, Type="String", Overwrite=True)
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(put, images.items()))

    def seed_releases(self, count):
        """`count` older releases of every service, as weco-deploy 4 writes
        them, 25 to a BatchWriteItem."""
        table = f"wellcome-releases-{self.project}"
        images = {s: {"S": self.image(s, "old")} for s in self.services}

        def item(i):
            return {"PutRequest": {"Item": {
                "release_id": {"S": str(uuid.uuid4())},
                "project_id": {"S": self.project},
                "project_name": {"S": "Latency"},
                "date_created": {"S": f"2020-01-01T00:00:00.{i:06d}"},
                "requested_by": {"S": "arn:aws:sts::123456789012:assumed-role/ci/bench"},
                "description": {"S": "seeded"},
                "images": {"M": images},
                "deployments": {"L": []},
            }}}

        def write(start):
            batch = [item(i) for i in range(start, min(start + 25, count))]
            pending = {table: batch}
            while pending:
                pending = self.dynamodb.batch_write_item(
                    RequestItems=pending).get("UnprocessedItems") or None

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(write, range(0, count, 25)))

    def run(self, binary, command, key=None, may_fail=False):
        """Runs the binary; returns (seconds, stdout), stdout None if it
        failed and `may_fail`. Fails loudly otherwise."""
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("AWS_") and not k.startswith("RELEASE_TRACKING_")}
        env.update(AWS_ACCESS_KEY_ID=key or SEED_KEY, AWS_SECRET_ACCESS_KEY="latency",
                   AWS_REGION=self.region, AWS_EC2_METADATA_DISABLED="true")
        argv = [binary, "--manifest", self.manifest, "--endpoint-url", self.endpoint,
                *command]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        done = subprocess.run(argv, env=env, capture_output=True, text=True)
        seconds = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        if done.returncode != 0:
            if may_fail:
                return seconds, None
            sys.exit(f"error: {' '.join(argv)} exited {done.returncode}:\n"
                     f"{done.stderr}{done.stdout}")
        return seconds, done.stdout

    def prepare(self, binary, description):
        _, out = self.run(binary, ["--json", "prepare", "--description", description])
        return json.loads(out)["release"]["release_id"]

    def case(self, name):
        """The command line of the next run of case `name`. `latest` and
        the environment hold the same images between runs; a deploy case
        first changes one service (k=1) or every service (k=N) at `latest`
        and makes a release of it, untimed, then deploys that release."""
        if name == "prepare":
            return ["prepare", "--description", "timed"]
        self.fresh += 1
        tag = f"r{self.fresh}"
        changed = self.services[:1] if name == "deploy k=1" else self.services
        self.publish({s: self.image(s, tag) for s in changed})
        release = self.prepare(self.args.tools[0][1], tag)
        return ["deploy", release, "stage"]


def set_delay(endpoint, ms):
    request = urllib.request.Request(f"{endpoint}/__delay?ms={ms}", method="PUT")
    with urllib.request.urlopen(request, timeout=10):
        pass


def measure(args, bench, cases):
    """{(case, tool, delay): (times, CPU times, calls of the last run)}:
    each case at the delay, then with none, which leaves the emulator's own
    time."""
    results = {}
    for case in cases:
        for delay in (args.delay_ms, 0):
            set_delay(args.endpoint, delay)
            for run in range(args.warmup + args.runs):
                for name, binary in args.tools:
                    key = access_key()
                    seconds, _ = bench.run(binary, bench.case(case), key)
                    calls = counts(args.endpoint, key)
                    if run >= args.warmup:
                        times, cpu, _ = results.setdefault((case, name, delay),
                                                           ([], [], None))
                        times.append(seconds)
                        cpu.append(bench.cpu)
                        results[(case, name, delay)] = (times, cpu, calls)
    set_delay(args.endpoint, 0)
    return results


def measure_quota(args, bench):
    """`deploy` k=N with writes throttled beyond --write-quota per second:
    {tool: (times of the runs that completed, failed runs, calls of the last
    run)}. A failed run leaves the label part-written; it is completed
    untimed before the next."""
    results = {}
    set_delay(args.endpoint, args.delay_ms)
    for _ in range(args.runs):
        for name, binary in args.tools:
            key = access_key()
            request = urllib.request.Request(
                f"{args.endpoint}/__throttle/{key}?rate={args.write_quota}"
                "&operation=ssm:PutParameter", method="POST")
            with urllib.request.urlopen(request, timeout=10):
                pass
            command = bench.case("deploy k=N")
            seconds, out = bench.run(binary, command, key, may_fail=True)
            times, failed, _ = results.get(name, ([], 0, None))
            if out is None:
                failed += 1
                bench.run(args.tools[-1][1], command)
            else:
                times.append(seconds)
            results[name] = (times, failed, counts(args.endpoint, key))
    set_delay(args.endpoint, 0)
    return results


def short(calls):
    # PutItem creates a release (prepare) or takes a lease (deploy);
    # DeleteItem gives the lease back.
    names = {"GetParametersByPath": "pages", "GetParameters": "by name",
             "PutParameter": "put", "GetItem": "get", "UpdateItem": "update",
             "PutItem": "put item", "DeleteItem": "delete item", "Query": "query",
             "GetCallerIdentity": "sts"}
    order = list(names)
    parts = sorted(((k.split(":")[1], n) for k, n in calls.items()),
                   key=lambda p: order.index(p[0]) if p[0] in order else len(order))
    text = ", ".join(f"{n} {names.get(op, op)}" for op, n in parts)
    return f"{sum(calls.values())}: {text}"


def chain(case, calls):
    """Dependent calls no client can overlap: the label read (its pages
    one after another, each needing the previous page's token; or, read by
    name, the release and then its services' `GetParameters` side by side,
    10 in flight), the environment's lease (taken, then the freeze and block
    reads, given back at the end) when the run held one, the write, the
    record."""
    by_name = calls.get("ssm:GetParameters", 0)
    if by_name:
        label = 1 + -(-by_name // READS_IN_FLIGHT)
    else:
        label = calls.get("ssm:GetParametersByPath", 0)
    lease = 3 if calls.get("dynamodb:DeleteItem", 0) else 0
    if case == "prepare":
        return label + 1
    if case == "deploy k=1":
        return label + lease + 2
    return None


def main():
    args = parse_arguments()
    delay = args.delay_ms
    names = [name for name, _ in args.tools]
    cases = ["prepare", "deploy k=1", "deploy k=N"]
    setups = [(n, 0) for n in args.sizes] + [(args.releases_at, m) for m in args.releases]
    if len(setups) + 1 > len(REGIONS):
        sys.exit(f"error: at most {len(REGIONS)} sizes and release counts in one run")
    print(f"release_tool as whole processes against the emulator, each call answered "
          f"{delay:g} ms late, then at once; median (min-max) of {args.runs} runs after "
          f"{args.warmup} warm-up, binaries in turn", flush=True)
    header = ["services", "releases", "command", "binary", f"{delay:g} ms: s",
              "0 ms: s", "latency added", "chain", "tool CPU s", "calls"]
    if len(names) == 2:
        header.insert(5, f"vs {names[0]}")
    rows = []
    set_delay(args.endpoint, 0)
    for region, (n, releases) in zip(REGIONS, setups):
        started = time.perf_counter()
        bench = Bench(args, region, n, releases)
        results = measure(args, bench, cases)
        for case in cases:
            first = None
            for name in names:
                slow, cpu, calls = results[(case, name, delay)]
                fast, _, _ = results[(case, name, 0)]
                median = statistics.median(slow)
                added = median - statistics.median(fast)
                links = chain(case, calls)
                row = [str(n), str(releases), case, name,
                       f"{median:.3f} ({min(slow):.3f}-{max(slow):.3f})",
                       f"{statistics.median(fast):.3f}",
                       f"{added:.3f} = {added * 1000 / delay:.1f} RTT" if delay else "",
                       "" if links is None else f"{links} RTT = {links * delay / 1000:.2f}",
                       f"{statistics.median(cpu):.3f}", short(calls)]
                if len(names) == 2:
                    row.insert(5, "" if first is None else f"{first / median:.1f}x faster")
                first = median if first is None else first
                rows.append(row)
        print(f"  ({n} services, {releases} releases: "
              f"{time.perf_counter() - started:.0f} s)", file=sys.stderr, flush=True)
    if args.write_quota:
        region = REGIONS[len(setups)]
        n = args.releases_at
        bench = Bench(args, region, n)
        results = measure_quota(args, bench)
        for name in names:
            times, failed, calls = results[name]
            done = (f"{statistics.median(times):.3f} ({min(times):.3f}-{max(times):.3f})"
                    if times else "none completed")
            row = [str(n), "0", f"deploy k=N, writes over {args.write_quota:g}/s throttled",
                   name, done, "", f"failed {failed} of {args.runs}", "", "", short(calls)]
            if len(names) == 2:
                row.insert(5, "")
            rows.append(row)
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(len(header))]
    for row in [header, ["-" * w for w in widths]] + rows:
        print("| " + " | ".join(cell.ljust(w) for cell, w in zip(row, widths)) + " |")
    print(f"latency added: the median at {delay:g} ms less the median at 0 ms (the "
          f"emulator's and the tool's own time), in round trips (RTT) of {delay:g} ms. "
          f"chain: the calls that wait for each other's answers (the label's pages, "
          f"or the release then its services by name; the lease, freeze and block "
          f"reads and the lease given back when held; the write; the record), the "
          f"least this design can add. tool CPU: "
          f"user and system time of the release_tool process at {delay:g} ms.")


if __name__ == "__main__":
    main()
