#!/usr/bin/env python3
"""Seconds from sending a GET to receiving the first byte of the response *body*.

curl's time_starttransfer stops at the first byte of the headers, which a streaming server
sends before any converted audio exists; this waits for real content.
Usage: ttfb.py URL [Range]"""
import http.client
import sys
import time
import urllib.parse

url = urllib.parse.urlsplit(sys.argv[1])
headers = {"Range": sys.argv[2]} if len(sys.argv) > 2 else {}
conn = http.client.HTTPConnection(url.hostname, url.port)
start = time.perf_counter()
conn.request("GET", url.path + ("?" + url.query if url.query else ""), headers=headers)
resp = conn.getresponse()
first = resp.read(1)
elapsed = time.perf_counter() - start
assert first, f"empty body, status {resp.status}"
print(f"{elapsed:.6f}")
