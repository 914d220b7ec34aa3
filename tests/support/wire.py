"""Clients that put exactly the given bytes on the wire: an HTTP/1.1 request line and headers,
and HTTP/2 (h2c, prior knowledge) HEADERS frames with validation off, so a test can send what
ordinary clients refuse to (non-UTF-8 pseudo-headers, raw backslashes, odd hosts).

Both return (status, headers, body); status is None when the proxy refused at the protocol level
(closed the connection or reset the stream) without an HTTP answer."""

import socket

import h2.config
import h2.connection
import h2.events


def http1(port: int, method: bytes, path: bytes, host: bytes, headers=(), timeout=10.0):
    head = b"%s %s HTTP/1.1\r\nhost: %s\r\n" % (method, path, host)
    for name, value in headers:
        head += b"%s: %s\r\n" % (name, value)
    head += b"connection: close\r\n\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(head)
        data = b""
        try:
            while chunk := s.recv(65536):
                data += chunk
        except ConnectionResetError:
            pass
    if not data.startswith(b"HTTP/1."):
        return None, {}, data
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ")[1])
    fields = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        fields[name.strip().lower().decode()] = value.strip().decode(errors="replace")
    return status, fields, body


def http2(port: int, method: bytes, path: bytes, authority: bytes, headers=(), timeout=10.0):
    config = h2.config.H2Configuration(client_side=True, validate_outbound_headers=False,
                                       normalize_outbound_headers=False, validate_inbound_headers=False,
                                       header_encoding=None)
    conn = h2.connection.H2Connection(config=config)
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        conn.initiate_connection()
        s.sendall(conn.data_to_send())
        stream = conn.get_next_available_stream_id()
        fields = [(b":method", method), (b":scheme", b"http"), (b":path", path), (b":authority", authority),
                  *headers]
        conn.send_headers(stream, fields, end_stream=True)
        s.sendall(conn.data_to_send())
        status, answer, body = None, {}, b""
        done = False
        while not done:
            try:
                data = s.recv(65536)
            except (ConnectionResetError, socket.timeout):
                break
            if not data:
                break
            for event in conn.receive_data(data):
                if isinstance(event, (h2.events.ResponseReceived, h2.events.TrailersReceived)):
                    for name, value in event.headers:
                        name = name.decode() if isinstance(name, bytes) else name
                        value = value.decode(errors="replace") if isinstance(value, bytes) else value
                        if name == ":status":
                            status = int(value)
                        else:
                            answer[name] = value
                elif isinstance(event, h2.events.DataReceived):
                    body += event.data
                    conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                elif isinstance(event, (h2.events.StreamEnded, h2.events.StreamReset,
                                        h2.events.ConnectionTerminated)):
                    done = True
            s.sendall(conn.data_to_send())
    return status, answer, body
