"""Flask on sessync, for tests/test_servers.py (gunicorn with 4 workers)."""
import os
import time

from flask import Flask, jsonify, session

from sessync.flask import SessyncSessionInterface

app = Flask(__name__)
app.session_interface = SessyncSessionInterface(os.environ["SESSYNC_URL"])


@app.get("/health")
def health():
    return "ok"


@app.get("/start")
def start():
    session["started"] = True
    return jsonify(pid=os.getpid())


@app.get("/hit/<int:i>")
def hit(i):
    # Keeps this worker busy a little, so that the burst spreads over the workers; the
    # result must not depend on it.
    time.sleep(0.05)
    n = session.incr("count")
    session[f"a{i}"] = i
    session[f"b{i}"] = f"v{i}"
    return jsonify(pid=os.getpid(), count=n)


@app.get("/state")
def state():
    return jsonify(session.to_dict())
