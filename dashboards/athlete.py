"""pitchlab for athletes: my own load, wellness, cycle log and pose history, and the entry forms.

Served like dashboards/app.py (see its docstring).
"""

import panel as pn

from pitchlab.dash.app import serve_app

if pn.state.served:
    serve_app(roles=("athlete",), title="pitchlab: athlete").servable(
        title="pitchlab: athlete", location=False
    )  # no URL sync (pitchlab reads no query): one model fewer
