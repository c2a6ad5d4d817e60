#!/usr/bin/env python3
"""tests/fakes/resetfake.py - a loopback server that reads a few bytes of each request
and resets the connection (RST, not FIN), so a client still sending a large body gets
EPIPE/ECONNRESET mid-upload. Port to --port-file."""
import argparse
import os
import socket
import struct

ap = argparse.ArgumentParser()
ap.add_argument("--port-file", required=True)
a = ap.parse_args()
srv = socket.socket()
srv.bind(("127.0.0.1", 0))
srv.listen(16)
with open(a.port_file + ".tmp", "w") as f:
    f.write(str(srv.getsockname()[1]))
os.rename(a.port_file + ".tmp", a.port_file)
while True:
    c, _ = srv.accept()
    c.recv(100)
    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    c.close()
