#!/usr/bin/env python3
"""Latency of POST /api/predict against a running `tailor serve` (standard library only).

    bench/serve_latency.py URL [N]

Sends N (default 200) predictions of test image 0 (fetched from the server as a PNG) one after
another on one keep-alive connection, and N on a fresh connection each, with and without the
saliency map, and prints the median and 90th percentile in milliseconds.
"""
import http.client
import statistics
import sys
import time
from urllib.parse import urlparse


def timed(conn_factory, keep_alive, path, body, n):
    times = []
    conn = conn_factory() if keep_alive else None
    for _ in range(n):
        c = conn if keep_alive else conn_factory()
        t = time.perf_counter()
        c.request("POST", path, body=body, headers={"Content-Type": "image/png"})
        r = c.getresponse()
        r.read()
        times.append((time.perf_counter() - t) * 1000)
        if r.status != 200:
            sys.exit(f"serve_latency: {path} answered HTTP {r.status}")
        if not keep_alive:
            c.close()
    times.sort()
    return statistics.median(times), times[int(0.9 * (len(times) - 1))]


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    url = urlparse(sys.argv[1])
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    factory = lambda: http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    c = factory()
    c.request("GET", "/api/testimage/0.png?scale=4")
    image = c.getresponse().read()
    c.request("GET", "/api/runs")
    runs = c.getresponse().read().decode()
    print(f"runs: {runs[:200]}")
    print(f"{'request':44} {'median ms':>10} {'p90 ms':>8}")
    for path in ("/api/predict?runs=0", "/api/predict?runs=0&saliency=1"):
        for keep in (True, False):
            med, p90 = timed(factory, keep, path, image, n)
            label = path + (" (keep-alive)" if keep else " (new conn)")
            print(f"{label:44} {med:10.2f} {p90:8.2f}")


if __name__ == "__main__":
    main()
