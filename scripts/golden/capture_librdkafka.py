"""Captures the first requests librdkafka sends (through kcat) as golden vectors.

Listens on a loopback port, runs `kcat -L` against it, and records each request frame
the client sends. It answers ApiVersions (encoded with kafka-python's protocol classes)
so that librdkafka goes on to send a Metadata request, which is captured too. Writes
tests/golden/librdkafka/<MessageName>.hex, one `v<version> <hex>` line per frame.
"""

import os
import socket
import struct
import subprocess
import sys

from kafka.protocol.metadata import ApiVersionsResponse

API_NAMES = {18: 'ApiVersionsRequest', 3: 'MetadataRequest'}
ADVERTISED = [(18, 0, 4), (3, 0, 12)]


def read_frame(conn):
    def read_exact(n):
        data = b''
        while len(data) < n:
            chunk = conn.recv(n - len(data))
            if not chunk:
                return None
            data += chunk
        return data
    prefix = read_exact(4)
    if prefix is None:
        return None
    body = read_exact(struct.unpack('>i', prefix)[0])
    return None if body is None else prefix + body


def main():
    out_dir = sys.argv[1]
    os.makedirs(out_dir, exist_ok=True)
    listener = socket.socket()
    listener.bind(('127.0.0.1', 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    kcat = subprocess.Popen(
        ['kcat', '-b', '127.0.0.1:%d' % port, '-L', '-m', '3'],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    listener.settimeout(10)
    conn, _ = listener.accept()
    conn.settimeout(5)
    captured = {}
    try:
        while len(captured) < len(API_NAMES):
            frame = read_frame(conn)
            if frame is None:
                break
            api_key, version, correlation_id = struct.unpack('>hhi', frame[4:12])
            name = API_NAMES.get(api_key)
            if name is None or name in captured:
                break
            captured[name] = (version, frame)
            if api_key != 18:
                break
            keys = [ApiVersionsResponse.ApiVersion(api_key=k, min_version=lo, max_version=hi)
                    for k, lo, hi in ADVERTISED]
            response = ApiVersionsResponse[version](error_code=0, api_keys=keys, throttle_time_ms=0)
            response.with_header(correlation_id=correlation_id)
            conn.sendall(response.encode(header=True, framed=True))
    finally:
        conn.close()
        kcat.kill()
        kcat.wait()
    for name, (version, frame) in captured.items():
        with open(os.path.join(out_dir, name + '.hex'), 'w') as f:
            f.write('v%d %s\n' % (version, frame.hex()))
    print('librdkafka vectors: %s' % ', '.join('%s v%d' % (n, v) for n, (v, _) in sorted(captured.items())))


if __name__ == '__main__':
    main()
