#!/usr/bin/env python3
"""tests/fakes/fullbacklog.py - a loopback port whose accept queue is full, so a new
connection's SYN goes unanswered and the client's connect timeout is what ends it (a
server that is up but overwhelmed, without leaving the machine). Port to --port-file."""
import argparse
import os
import socket
import time

ap = argparse.ArgumentParser()
ap.add_argument("--port-file", required=True)
a = ap.parse_args()
srv = socket.socket()
srv.bind(("127.0.0.1", 0))
srv.listen(0)  # never accepted: the queue fills with the connections below
port = srv.getsockname()[1]
held = []
for _ in range(4):
    c = socket.socket()
    c.setblocking(False)
    try:
        c.connect(("127.0.0.1", port))
    except BlockingIOError:
        pass
    held.append(c)
with open(a.port_file + ".tmp", "w") as f:
    f.write(str(port))
os.rename(a.port_file + ".tmp", a.port_file)
while True:
    time.sleep(3600)
