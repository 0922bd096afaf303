"""A model mirror for the import tests: serves the files of DIR over HTTPS, as a web server
(`/files/NAME`) and as the Hugging Face hub does: `/ORG/REPO/resolve/REVISION/NAME` answers 302
to the file's storage (`/cdn/NAME`), with its SHA-256 in `X-Linked-Etag` and its size in
`X-Linked-Size`, as the hub does for large files.

Usage: python3 model_server.py DIR CERT KEY PORT_FILE — writes the port it listens on (on
127.0.0.1) to PORT_FILE once it serves; runs until killed.
"""
import hashlib
import http.server
import os
import ssl
import sys

root, cert, key, port_file = sys.argv[1:5]


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        parts = self.path.split("?")[0].strip("/").split("/")
        if len(parts) == 2 and parts[0] in ("files", "cdn"):
            name, hub = parts[1], False
        elif len(parts) == 5 and parts[2] == "resolve":
            name, hub = parts[4], True
        else:
            return self.send_error(404)
        path = os.path.join(root, os.path.basename(name))
        if not os.path.isfile(path):
            return self.send_error(404)
        with open(path, "rb") as f:
            data = f.read()
        if hub:
            self.send_response(302)
            self.send_header("Location", "/cdn/" + os.path.basename(name))
            self.send_header("X-Linked-Etag", '"%s"' % hashlib.sha256(data).hexdigest())
            self.send_header("X-Linked-Size", str(len(data)))
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(cert, key)
server.socket = context.wrap_socket(server.socket, server_side=True)
with open(port_file + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
os.rename(port_file + ".tmp", port_file)
server.serve_forever()
