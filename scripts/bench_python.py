"""The Python side of `make bench` (driven by tests/src/bin/lbgp-bench/).

What users would otherwise run, measured on the same input in the same run:

* ``collapse``: ``ipaddress.collapse_addresses`` over the prefixes the Rust
  driver wrote (one per line, fixed seed). Parsing and collapsing are timed
  separately with ``time.perf_counter``; the collapsed list is written out so
  the driver can check both sides computed the same set. One JSON line on
  stdout.
* ``coldstart``: the start-up of a Python Lambda written with boto3 (import,
  three clients), then one poll of the Lambda Runtime API named by
  ``AWS_LAMBDA_RUNTIME_API``; the driver times exec to that poll exactly as it
  times the Rust binaries, and kills the process once it has polled.
  ``--bare`` skips boto3: the interpreter's own floor.
* ``converge``: the naive script a converge from empty would otherwise be
  (section 7): for each (region, route table, destination, target) of a JSON
  file the driver wrote, one ``CreateRoute`` (VPC route table) or
  ``CreateTransitGatewayRoute`` (TGW route table), then one unconditional
  DynamoDB ``PutItem`` recording it, one route after the other, with boto3
  against ``AWS_ENDPOINT_URL``. The clients are made before the clock
  starts; one JSON line on stdout.

Standard library only, besides boto3 for ``coldstart`` and ``converge``.
"""

from __future__ import annotations

# Only what ``coldstart`` needs is imported at the top: every other import
# would be charged to Python's start-up.
import os
import sys


def collapse(args) -> None:
    import ipaddress
    import json
    import statistics
    import time

    with open(args.input, encoding="ascii") as f:
        lines = f.read().split()
    parse_s = []
    networks = []
    for _ in range(args.parse_runs):
        start = time.perf_counter()
        networks = [ipaddress.IPv4Network(line) for line in lines]
        parse_s.append(time.perf_counter() - start)
    collapse_s = []
    collapsed = []
    for _ in range(args.runs):
        start = time.perf_counter()
        collapsed = list(ipaddress.collapse_addresses(networks))
        collapse_s.append(time.perf_counter() - start)
    with open(args.output, "w", encoding="ascii") as f:
        f.write("\n".join(str(n) for n in collapsed))
        f.write("\n")
    print(
        json.dumps(
            {
                "python": sys.version.split()[0],
                "inputs": len(networks),
                "outputs": len(collapsed),
                "parse_s": parse_s,
                "collapse_s": collapse_s,
                "collapse_median_s": statistics.median(collapse_s),
            }
        ),
        flush=True,
    )


def coldstart(bare: bool) -> None:
    if not bare:
        import boto3

        boto3.client("ec2")
        boto3.client("dynamodb")
        boto3.client("sns")
    import http.client

    conn = http.client.HTTPConnection(os.environ["AWS_LAMBDA_RUNTIME_API"])
    conn.request("GET", "/2018-06-01/runtime/invocation/next")
    # Blocks until the driver kills us, like a Lambda runtime waiting for work.
    conn.getresponse().read()


def converge(args) -> None:
    import json
    import time

    import boto3

    with open(args.routes, encoding="utf-8") as f:
        routes = json.load(f)
    started = time.perf_counter()
    ec2 = {r: boto3.client("ec2", region_name=r) for r in sorted({route["region"] for route in routes})}
    ddb = boto3.client("dynamodb", region_name=args.home_region)
    setup_s = time.perf_counter() - started
    start = time.perf_counter()
    for route in routes:
        region, table = route["region"], route["route_table_id"]
        destination, target = route["destination"], route["target"]
        if table.startswith("tgw-rtb-"):
            ec2[region].create_transit_gateway_route(
                TransitGatewayRouteTableId=table,
                DestinationCidrBlock=destination,
                TransitGatewayAttachmentId=target,
            )
        else:
            if not target.startswith("tgw-"):
                raise SystemExit(f"converge: unsupported VPC route target {target}")
            family = "DestinationIpv6CidrBlock" if ":" in destination else "DestinationCidrBlock"
            ec2[region].create_route(RouteTableId=table, TransitGatewayId=target, **{family: destination})
        ddb.put_item(
            TableName=args.table,
            Item={
                "pk": {"S": f"naive#{region}#{table}"},
                "sk": {"S": destination},
                "target": {"S": target},
            },
        )
    seconds = time.perf_counter() - start
    print(
        json.dumps(
            {
                "python": sys.version.split()[0],
                "boto3": boto3.__version__,
                "routes": len(routes),
                "setup_s": setup_s,
                "seconds": seconds,
            }
        ),
        flush=True,
    )


def main() -> None:
    # The cold-start path skips argparse (and its imports) on purpose.
    if sys.argv[1:2] == ["coldstart"]:
        coldstart(bare="--bare" in sys.argv[2:])
        return
    import argparse

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("collapse", help="ipaddress.collapse_addresses on a file of prefixes")
    c.add_argument("--input", required=True)
    c.add_argument("--output", required=True)
    c.add_argument("--runs", type=int, default=3)
    c.add_argument("--parse-runs", type=int, default=1)
    c.set_defaults(func=collapse)
    s = sub.add_parser("coldstart", help="boto3 Lambda start-up, then one Runtime API poll")
    s.add_argument("--bare", action="store_true", help="no boto3: the interpreter alone")
    v = sub.add_parser("converge", help="CreateRoute / CreateTransitGatewayRoute + PutItem per route, in order")
    v.add_argument("--routes", required=True, help="JSON list of {region, route_table_id, destination, target}")
    v.add_argument("--table", required=True, help="the DynamoDB table (in --home-region)")
    v.add_argument("--home-region", required=True)
    v.set_defaults(func=converge)
    args = parser.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
