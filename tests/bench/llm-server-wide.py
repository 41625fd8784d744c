#!/usr/bin/env python3
"""tests/llm-server.py for a thousand clients at once (run.sh llm).

The same options, script and log as tests/llm-server.py, with three changes
that keep the server from measuring itself at -j 1000:

- a listen backlog of 1,024 instead of 256: a thousand clients connecting
  at once overflowed 256, and each dropped SYN waits out TCP's 1 s
  retransmit;
- over TLS, each connection's handshake in the thread that serves it, not
  in the one that accepts: there a client slow to send its hello (one of a
  thousand processes waiting for a CPU) held up every connection behind it,
  some past the client's 10 s connect timeout;
- each log entry names its connection ("connection", the name of the thread
  that served it, one per accepted connection), since on loopback a later
  connection may reuse a closed one's client port.
"""

import importlib.util
import os
import ssl
import sys
import threading

# No tests/__pycache__ in the source tree.
sys.dont_write_bytecode = True
spec = importlib.util.spec_from_file_location(
    "llm_server", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "llm-server.py"))
llm_server = importlib.util.module_from_spec(spec)
spec.loader.exec_module(llm_server)

llm_server.Server.request_queue_size = 1024

wrap_socket = ssl.SSLContext.wrap_socket


def wrap_without_handshake(self, sock, *args, **kwargs):
    # The listening socket's accept() passes this on to each connection,
    # whose handshake then happens at its handler's first read.
    kwargs["do_handshake_on_connect"] = False
    return wrap_socket(self, sock, *args, **kwargs)


ssl.SSLContext.wrap_socket = wrap_without_handshake

record = llm_server.State.record


def record_with_connection(self, entry):
    entry["connection"] = threading.current_thread().name
    record(self, entry)


llm_server.State.record = record_with_connection

if __name__ == "__main__":
    sys.exit(llm_server.main())
