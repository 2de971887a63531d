"""pitchlab for medical staff: the coach's pages plus menstrual-cycle and injury detail of their teams (every view audited).

Served like dashboards/app.py (see its docstring).
"""

import panel as pn

from pitchlab.dash.app import serve_app

if pn.state.served:
    serve_app(roles=("medical",), title="pitchlab: medical").servable(
        title="pitchlab: medical", location=False
    )  # no URL sync (pitchlab reads no query): one model fewer
