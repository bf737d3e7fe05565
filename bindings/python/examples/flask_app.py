"""Flask on sessync: run it under gunicorn with 4 worker processes sharing sessions
through sessyncd (see README.md beside this file)."""
import os

from flask import Flask, session

from sessync.flask import SessyncSessionInterface

app = Flask(__name__)
app.session_interface = SessyncSessionInterface(os.environ.get("SESSYNC_URL", "mem://"))


@app.get("/")
def index():
    visits = session.incr("visits")  # an atomic increment at commit
    return f"process {os.getpid()} served you; visits: {visits}\n"


@app.get("/cart/add/<item>")
def add(item):
    session.setdefault("cart", []).append(item)  # noticed at commit, sent as one key
    return f"cart: {session['cart']}\n"


@app.get("/logout")
def logout():
    session.destroy()
    return "bye\n"
