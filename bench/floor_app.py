"""The floor for the throughput benchmark: a bare Flask app that parses the same body and answers.

It does what any CDS service must do at the least (read the body, parse the JSON, answer JSON) and
nothing else, so the service's figures can be read as a fraction of it. `bench/bench_scaling.py`
runs it under the same gunicorn settings as `ivig-cds serve`.
"""

from __future__ import annotations

import json

from flask import Flask, Response, jsonify, request

app = Flask(__name__)


@app.get("/healthz")
def healthz() -> Response:
    return jsonify({"status": "alive"})


@app.post("/cds-services/<service_id>")
def invoke(service_id: str) -> Response:
    body = json.loads(request.get_data())
    return jsonify({"cards": [], "hook": body.get("hook"), "service": service_id})
